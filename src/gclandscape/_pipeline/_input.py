"""The input of ``gclandscape run``: a file or folder gcl.io.read understands, or a built-in
dataset name."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

from .._keys import Key
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
            return share_x(io.read(path), Key.layers.counts), str(path)
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
        return share_x(datasets.load(name, **kwargs), Key.layers.counts), name
    raise GclFileNotFoundError(
        f"INPUT {spec!r} is neither an existing file or folder nor a built-in dataset "
        f"({', '.join(n for n in names() if n != 'simulate')}). Pass a path gcl.io.read can "
        "read, or a dataset name (`gclandscape datasets` lists them)."
    )


def same_matrix(a: Any, b: Any) -> bool:
    """Whether two matrices (dense or sparse of one format) hold the same values exactly."""
    import numpy as np
    import scipy.sparse as sp

    if a is b:
        return True
    if type(a) is not type(b) or a.shape != b.shape or a.dtype != b.dtype:
        return False
    if sp.issparse(a):
        return (
            a.format == b.format
            and a.nnz == b.nnz
            and all(
                np.array_equal(getattr(a, k), getattr(b, k)) for k in ("indptr", "indices", "data")
            )
        )
    return bool(np.array_equal(a, b))


def share_x(adata: AnnData, layer: str) -> AnnData:
    """``.X`` becomes ``.layers[layer]`` itself when the two hold the same values.

    The run never writes into ``.X`` in place, so one matrix is enough where two are equal:
    readers copy the counts into ``.layers["counts"]`` (so that a user's edits of ``.X``
    cannot corrupt them), and the recipe stores the log-normalised counts both as
    ``.layers["gcl_lognorm"]`` and in ``.X``; each copy is 0.6 GiB at 50,000 × 2,000 (77 %
    non-zero CSR). Only for data the run holds itself (what it read, its working copy).
    """
    shared = adata.layers.get(layer) if not adata.is_view else None
    if shared is not None and adata.X is not None and same_matrix(adata.X, shared):
        adata.X = shared
    return adata
