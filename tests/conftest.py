"""Shared test fixtures: thread limits, the shared data folder, small datasets."""

from __future__ import annotations

import os
from pathlib import Path

# numpy (OpenBLAS) and torch together oversubscribe the 2 cores of the CI machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# torch with 2 threads spin-waits on a busy machine; passive waiting keeps tests fast
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("GCL_SHARED_DATA", REPO.parent / "shared" / "data"))


def pytest_configure(config):
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ``../shared/data`` folder; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real datasets not found at {SHARED_DATA} (../shared/data beside the repository)"
        )
    return SHARED_DATA


@pytest.fixture(scope="session")
def myeloid_default():
    """The embedded default dataset (3000 cells × 311 genes), generated once per session.

    Tests must not modify it: take ``.copy()`` first.
    """
    import gclandscape as gcl

    return gcl.datasets.myeloid()


@pytest.fixture(scope="session")
def myeloid_recipe(myeloid_default):
    """The default dataset after ``gcl.pp.recipe`` (copy before modifying)."""
    import gclandscape as gcl

    adata = myeloid_default.copy()
    gcl.pp.recipe(adata, n_top_genes=500)
    return adata


@pytest.fixture(scope="session")
def myeloid_fitted(myeloid_recipe):
    """``(adata, landscape)``: the default dataset with a genome fitted on the simulation
    clock (``fit_grn(time_key="sim_time", n_bootstrap=0)``) and its landscape
    (``fit_landscape(groupby="celltype")``). Copy the AnnData before modifying it."""
    import gclandscape as gcl

    adata = myeloid_recipe.copy()
    gcl.landscape.fit_grn(adata, time_key="sim_time", n_bootstrap=0)
    land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    return adata, land
