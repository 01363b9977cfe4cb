"""The readout: every gene outside the genome, read from the genome's state (issue 19 §1).

A genome models the regulators only, so a knockout simulated without a latent model moves
the regulators and nothing else. The readout is a ridge regression (scikit-learn
:class:`~sklearn.linear_model.Ridge`) from the genome genes' model-scale state (the
coordinates :func:`~gclandscape.landscape.fit_grn` fits in, standardised) to every other
gene's log-normalised expression, fitted on the observed cells when the genome is fitted,
and applied by :func:`gclandscape.sim.perturb` to the simulated wild-type and perturbed
states. On the Perturb-seq benchmark (``benchmarks/perturbseq.py``) a ridge readout raised
the Pearson's r of predicted vs observed log2FC over all genes from 0.148 (regulators only)
to 0.232.

Which genes are read out: the highly variable genes (``.var["highly_variable"]``) when the
data have them, else all genes; not the genome's own genes; not genes without variance in
the cells fitted on (nothing to regress). Which expression: ``.layers["gcl_lognorm"]``
(:func:`gclandscape.pp.recipe`), else ``log1p`` of the counts normalised to the median
library size, else ``.X`` (taken to be log-normalised). At most :data:`MAX_CELLS` cells
(a random subsample) are used, and a sparse matrix is densified one block of
:data:`CHUNK` genes at a time.

The ridge strength is chosen by :class:`~sklearn.linear_model.RidgeCV` (efficient
leave-one-out) over :data:`ALPHAS` × the number of cells, on the :data:`N_ALPHA_GENES` most
variable outputs, each scaled to unit variance so that every gene weighs the same.

Storage: plain arrays in ``.uns[genome_key]["readout"]`` (round-trips through h5ad, no
pickle): ``coef`` (outputs × inputs, on the standardised inputs), ``intercept``, ``genes``
(outputs), ``inputs`` (the genome's genes), ``center`` and ``scale`` (the input
standardisation), ``r2`` (in-sample R² per output), ``alpha``, ``n_cells``, ``expression``
(where the expression came from) and ``pseudocount``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import GclError, GclFormatError
from .._keys import Key
from .._utils import dense, logger, rng

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

#: Entry of ``.uns[genome_key]`` the readout is stored under.
READOUT = "readout"
#: At most this many observed cells (a random subsample) are fitted on.
MAX_CELLS = 20_000
#: Ridge strengths tried, times the number of cells (inputs standardised: ``X'X ≈ n I``, so
#: ``alpha = 0.01 n`` shrinks a lone input's coefficient by about 1 %).
ALPHAS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
#: Outputs the ridge strength is chosen on (the most variable ones).
N_ALPHA_GENES = 200
#: Output genes fitted (and, for a sparse matrix, densified) at a time.
CHUNK = 1000
#: Cells predicted at a time by :func:`readout_log2fc`.
CELL_CHUNK = 4000
#: Pseudocount of :func:`readout_log2fc`, in library-size-normalised counts: the observed
#: log2 fold change of a Perturb-seq screen is conventionally ``log2((m_ko + 0.1) /
#: (m_ctrl + 0.1))`` of mean normalised counts; for libraries of about 10,000 counts it is
#: the decoder's 0.1 per 10,000.
PSEUDOCOUNT = 0.1
_REQUIRED = ("coef", "intercept", "genes", "inputs", "center", "scale")


def output_genes(adata: AnnData, exclude: Sequence[str]) -> list[str]:
    """The genes a readout covers: the highly variable genes (all genes when none are
    marked), less ``exclude`` (the genome's genes).

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> a = ad.AnnData(np.ones((2, 3)))
    >>> a.var_names = ["A", "B", "C"]
    >>> output_genes(a, ["A"])
    ['B', 'C']
    """
    skip = set(map(str, exclude))
    names = adata.var_names.astype(str)
    hv = Key.var.highly_variable
    if hv in adata.var and adata.var[hv].to_numpy(dtype=bool).any():
        names = names[adata.var[hv].to_numpy(dtype=bool)]
    return [g for g in names if g not in skip]


def lognorm_expression(adata: AnnData, rows: np.ndarray, genes: Sequence[str]) -> tuple[Any, str]:
    """Log-normalised expression of ``genes`` in the cells ``rows`` (sparse stays sparse),
    and where it came from (see the module docstring)."""
    import scipy.sparse as sp

    cols = adata.var_names.get_indexer(list(genes))
    if Key.layers.lognorm in adata.layers:
        m = adata.layers[Key.layers.lognorm][rows][:, cols]
        source = f"layers[{Key.layers.lognorm!r}]"
    elif Key.layers.counts in adata.layers:
        counts = adata.layers[Key.layers.counts][rows]
        lib = np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        factor = np.median(lib) / np.where(lib > 0, lib, 1.0)
        sub = counts[:, cols]
        if sp.issparse(sub):
            m = sp.csr_matrix(sp.diags(factor) @ sub.astype(np.float64)).log1p()
        else:
            m = np.log1p(np.asarray(sub, dtype=np.float64) * factor[:, None])
        source = f"log1p of layers[{Key.layers.counts!r}] normalised to the median library"
    else:
        m = adata.X[rows][:, cols]
        source = "X (taken as log-normalised)"
    return m, source


def _column_stats(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of each column of a dense or sparse matrix, without densifying."""
    import scipy.sparse as sp

    if sp.issparse(y):
        mean = np.asarray(y.mean(axis=0), dtype=np.float64).ravel()
        sq = np.asarray(y.multiply(y).mean(axis=0), dtype=np.float64).ravel()
        return mean, np.maximum(sq - mean**2, 0.0)
    y = np.asarray(y, dtype=np.float64)
    return y.mean(0), y.var(0)


def fit_readout(
    states: np.ndarray,
    expression: Any,
    *,
    inputs: Sequence[str],
    genes: Sequence[str],
    source: str = "",
) -> dict[str, Any]:
    """Fit the readout: ridge regressions of every column of ``expression`` (cells × genes,
    dense or sparse, log-normalised) on ``states`` (cells × genome genes, model scale).

    Genes without variance are left out. Returns the stored form (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).uniform(0, 1, (300, 2))
    >>> y = np.c_[2.0 * x[:, 0] + 1.0, 0.5 - 0.5 * x[:, 1]]
    >>> ro = fit_readout(x, y, inputs=["A", "B"], genes=["t1", "t2"])
    >>> ((ro["coef"] / ro["scale"]).round(2) + 0.0).tolist()  # + 0.0: no -0.0
    [[2.0, 0.0], [0.0, -0.5]]
    """
    from sklearn.linear_model import Ridge, RidgeCV

    t0 = time.perf_counter()
    x = np.asarray(states, dtype=np.float64)
    n, p = x.shape
    if expression.shape != (n, len(genes)):
        raise GclError(
            f"the readout's expression has shape {expression.shape}; expected ({n}, "
            f"{len(genes)}) (cells × output genes)."
        )
    center = x.mean(0)
    scale = x.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - center) / scale
    mean, var = _column_stats(expression)
    keep = np.flatnonzero(var > 0)
    genes = np.asarray([str(g) for g in genes], dtype=object)[keep]
    # one strength for every gene, chosen on the most variable ones at unit variance
    top = keep[np.argsort(-var[keep], kind="stable")[:N_ALPHA_GENES]]
    alpha = float(n * ALPHAS[2])
    if top.size:
        y_top = (dense(expression[:, top]) - mean[top]) / np.sqrt(var[top])
        alpha = float(RidgeCV(alphas=[n * a for a in ALPHAS]).fit(z, y_top).alpha_)
    coef = np.zeros((keep.size, p))
    intercept = np.zeros(keep.size)
    r2 = np.zeros(keep.size)
    for start in range(0, keep.size, CHUNK):
        cols = keep[start : start + CHUNK]
        y = dense(expression[:, cols])
        ridge = Ridge(alpha=alpha).fit(z, y)
        block = slice(start, start + cols.size)
        # reshaped: with one target column scikit-learn returns 1-d coefficients/predictions
        coef[block] = np.reshape(ridge.coef_, (cols.size, p))
        intercept[block] = np.reshape(ridge.intercept_, cols.size)
        resid = y - np.reshape(ridge.predict(z), y.shape)
        r2[block] = 1.0 - (resid**2).mean(0) / var[cols]
    logger.info(
        "readout: %d genes from %d genome genes on %d cells (alpha %.3g, median R² %.2f, %.1f s)",
        keep.size,
        p,
        n,
        alpha,
        float(np.median(r2)) if r2.size else float("nan"),
        time.perf_counter() - t0,
    )
    return {
        "coef": coef,
        "intercept": intercept,
        "genes": genes,
        "inputs": np.asarray([str(g) for g in inputs], dtype=object),
        "center": center,
        "scale": scale,
        "r2": r2,
        "alpha": alpha,
        "n_cells": int(n),
        "expression": source,
        "pseudocount": PSEUDOCOUNT,
    }


def fit_readout_adata(
    adata: AnnData, states: np.ndarray, inputs: Sequence[str], *, seed: int = 0
) -> dict[str, Any] | None:
    """The readout of ``adata``'s other genes from ``states`` (its cells in the genome's
    model coordinates, one row per cell), or None when no gene is left to read out."""
    genes = output_genes(adata, inputs)
    if not genes:
        return None
    rows = np.arange(adata.n_obs)
    if adata.n_obs > MAX_CELLS:  # the fit needs far fewer cells than a large atlas holds
        rows = np.sort(rng(seed).choice(adata.n_obs, MAX_CELLS, replace=False))
    expression, source = lognorm_expression(adata, rows, genes)
    return fit_readout(
        np.asarray(states)[rows], expression, inputs=inputs, genes=genes, source=source
    )


def stored_readout(adata: AnnData, genome_key: str, inputs: Sequence[str]) -> dict | None:
    """The readout stored with the genome, checked, or None when there is none."""
    stored = adata.uns.get(genome_key, {})
    ro = stored.get(READOUT) if isinstance(stored, dict) else None
    if ro is None:
        return None
    missing = [k for k in _REQUIRED if k not in ro]
    if missing:
        raise GclFormatError(
            f"adata.uns[{genome_key!r}][{READOUT!r}] lacks {', '.join(missing)}; refit the "
            "genome with gcl.landscape.fit_grn(adata) to rebuild its readout."
        )
    if [str(g) for g in np.asarray(ro["inputs"]).tolist()] != [str(g) for g in inputs]:
        raise GclError(
            f"the readout in adata.uns[{genome_key!r}] was fitted on other genes than the "
            "genome stored there; refit with gcl.landscape.fit_grn(adata)."
        )
    return ro


def predict(readout: dict, states: np.ndarray) -> np.ndarray:
    """Predicted log-normalised expression (cells × readout genes) of model-scale states.

    Examples
    --------
    >>> import numpy as np
    >>> ro = {"coef": np.array([[2.0]]), "intercept": np.array([1.0]),
    ...       "center": np.array([0.5]), "scale": np.array([0.25])}
    >>> predict(ro, np.array([[0.75]])).tolist()
    [[3.0]]
    """
    z = (np.asarray(states, dtype=np.float64) - np.asarray(readout["center"])) / np.asarray(
        readout["scale"]
    )
    return z @ np.asarray(readout["coef"], dtype=np.float64).T + np.asarray(readout["intercept"])


def _mean_expression(readout: dict, states: np.ndarray) -> np.ndarray:
    """Mean predicted expression (normalised counts: ``expm1`` of the log, clipped at 0)."""
    total = np.zeros(len(readout["intercept"]))
    for start in range(0, len(states), CELL_CHUNK):
        y = predict(readout, states[start : start + CELL_CHUNK])
        total += np.expm1(np.clip(y, 0.0, None)).sum(0)
    return total / max(len(states), 1)


def readout_log2fc(readout: dict, wt: np.ndarray, perturbed: np.ndarray) -> pd.Series:
    """Log2 fold change of every readout gene between two sets of simulated states.

    Each state's log-normalised expression is predicted, turned back into normalised counts
    (``expm1``, negative predictions clipped to 0), averaged over the cells, and
    ``log2((m_perturbed + c) / (m_wt + c))`` is taken with the pseudocount ``c`` stored
    with the readout (:data:`PSEUDOCOUNT`).

    Examples
    --------
    >>> import numpy as np
    >>> ro = {"coef": np.array([[np.log(5 / 2)]]), "intercept": np.array([np.log(2)]),
    ...       "center": np.array([0.0]), "scale": np.array([1.0]), "genes": np.array(["t"]),
    ...       "pseudocount": 0.0}
    >>> round(float(readout_log2fc(ro, np.array([[0.0]]), np.array([[1.0]]))["t"]), 6)
    2.0
    """
    c = float(readout.get("pseudocount", PSEUDOCOUNT))
    m_wt = _mean_expression(readout, np.asarray(wt, dtype=np.float64))
    m_pt = _mean_expression(readout, np.asarray(perturbed, dtype=np.float64))
    genes = [str(g) for g in np.asarray(readout["genes"]).tolist()]
    return pd.Series(np.log2((m_pt + c) / (m_wt + c)), index=genes, name="log2fc")
