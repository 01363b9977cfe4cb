"""The output folder of ``gclandscape run``, written all at once or not at all.

A run writes into a hidden staging folder beside ``--out`` (``.NAME.partial-XXXX``) and moves
it into place only when every step has finished: an interrupted or failed run never leaves a
folder that mixes two runs' files and looks finished, and a previous complete result in
``--out`` survives until the new one is complete. The previous result is renamed aside, the
new one renamed in, then the old one deleted (two renames in the same parent folder, so the
window without a complete ``--out`` is a few microseconds).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from pathlib import Path

from .._errors import GclError
from .._validate import listing

#: The file a finished run writes last; its ``files`` list says which files belong to it.
SUMMARY_FILE = "summary.json"


def _owned_files(folder: Path) -> set[str] | None:
    """The files a finished gclandscape result in ``folder`` lists, or None if it is none."""
    try:
        summary = json.loads((folder / SUMMARY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(summary, dict) or "gclandscape_version" not in summary:
        return None
    return {str(f) for f in summary.get("files", [])}


def check_out(out: str | Path) -> Path:
    """Check, before any work, that ``out`` can receive a run's results; return it resolved.

    ``out`` may be missing (it is created), an empty folder, or the folder of a finished
    earlier run (every file in it listed in its ``summary.json``), which a new run replaces
    when it completes. Its parent must be writable, because the run is staged beside it.

    Raises
    ------
    GclError
        ``out`` is a file, is not writable, holds files that are not an earlier result
        (they would be deleted), or no folder can be created beside it.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = check_out(pathlib.Path(tempfile.mkdtemp()) / "results")
    >>> out.name, out.exists()
    ('results', False)
    """
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise GclError(f"--out {out} is a file. Pass a folder (new or earlier results).")
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise GclError(
                f"--out {out} is not writable. Pass a folder you can write to, or change its "
                "permissions."
            )
        entries = {p.name for p in out.iterdir() if not p.name.startswith(".")}
        owned = _owned_files(out) if entries else set()
        foreign = sorted(entries - owned) if owned is not None else sorted(entries)
        if foreign:
            shown = listing(foreign, limit=10, quote=False)
            raise GclError(
                f"--out {out} holds files that are not part of an earlier gclandscape result "
                f"({shown}); a run replaces the whole folder, so they would be lost. Pass a "
                "new or empty folder, or move those files away."
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        Path(tempfile.mkdtemp(prefix=f".{out.name}.probe-", dir=out.parent)).rmdir()
    except OSError as err:
        raise GclError(
            f"--out {out} cannot be written: creating a folder in {out.parent} failed "
            f"({type(err).__name__}: {err.strerror or err}). Pass a folder on a writable "
            "disk that you have write permission for."
        ) from None
    return out


class OutputFolder:
    """A staging folder beside ``final``; :meth:`commit` moves it into place.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> final = pathlib.Path(tempfile.mkdtemp()) / "res"
    >>> folder = OutputFolder(final)
    >>> _ = (folder.staging / "a.csv").write_text("x\\n")
    >>> sorted(p.name for p in folder.commit().iterdir())
    ['a.csv']
    """

    def __init__(self, final: str | Path) -> None:
        self.final = check_out(final)
        self.staging = Path(
            tempfile.mkdtemp(prefix=f".{self.final.name}.partial-", dir=self.final.parent)
        )

    def discard(self) -> None:
        """Delete the staging folder (after a failed or interrupted run)."""
        shutil.rmtree(self.staging, ignore_errors=True)

    def commit(self) -> Path:
        """Move the finished staging folder to ``final``, replacing an earlier result."""
        final = self.final
        if not final.exists():
            os.rename(self.staging, final)
            return final
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
        try:
            os.rename(self.staging, final)
        except BaseException:
            os.rename(old, final)  # put the earlier result back
            raise
        shutil.rmtree(old, ignore_errors=True)
        return final
