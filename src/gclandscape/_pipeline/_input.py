"""The input of ``gclandscape run``: a file or folder gcl.io.read understands, or a built-in
dataset name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

from ._context import DEFAULT_INPUT


def load_input(spec: str | None, *, seed: int = 0) -> tuple[AnnData, str]:
    """Read ``spec``: an existing file/folder through gcl.io.read, or a built-in dataset name.

    Returns the AnnData and a label for the summary. Raises a :class:`~gclandscape._errors.
    GclError` subclass with the reason and the fix otherwise.
    """
    import inspect

    from .. import datasets
    from .._errors import GclError, GclFileNotFoundError, GclFormatError

    spec = DEFAULT_INPUT if spec is None else spec
    path = Path(spec).expanduser()
    if path.exists():
        from .. import io

        try:
            return io.read(path), str(path)
        except GclError:
            raise
        except Exception as exc:  # a reader deep inside a dependency failed
            raise GclFormatError(
                f"Could not read {path}: {type(exc).__name__}: {exc}. Pass a file or folder in "
                "a format gcl.io.read supports (.h5ad, 10x .h5 or Matrix Market folder, .loom, "
                ".csv/.tsv, .zarr, a BEELINE folder)."
            ) from exc
    from ..datasets._registry import names

    name = spec.strip().lower()
    if name == "simulate":
        raise GclError(
            "The 'simulate' dataset needs a network: call gcl.datasets.simulate(network, "
            "n_cells=...) in Python, write the result with gcl.io.write and run on that file."
        )
    if name in names():
        loader = getattr(datasets, name)
        kwargs = {"seed": seed} if "seed" in inspect.signature(loader).parameters else {}
        return datasets.load(name, **kwargs), name
    raise GclFileNotFoundError(
        f"INPUT {spec!r} is neither an existing file or folder nor a built-in dataset "
        f"({', '.join(n for n in names() if n != 'simulate')}). Pass a path gcl.io.read can "
        "read, or a dataset name (`gclandscape datasets` lists them)."
    )
