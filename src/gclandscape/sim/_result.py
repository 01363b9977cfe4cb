"""The result of :func:`gclandscape.sim.perturb`: :class:`PerturbationResult`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._statistics import lost_gained, score_pvalue

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


class PerturbationResult:
    """What :func:`perturb` predicts for one perturbation.

    Attributes
    ----------
    perturbation
        The perturbation's name, e.g. ``"Gata1 KO"``.
    fates
        DataFrame indexed by fate (the wild-type attractors' cell types, observed cell types
        that end states reach, and ``"novel"`` for end states far from all of them) with
        ``wt`` and ``perturbed`` fate fractions (means over the genome ensemble's members),
        ``delta`` (perturbed - wt), ``ci_low`` and ``ci_high`` (95 % paired bootstrap
        interval of ``delta``, resampling members and cells), ``p_value`` (McNemar's exact
        test on the paired cells; the median over members) and ``p_lost``: the share of the ensemble's members in
        which the fate is lost (reached by at least 1 % of that member's wild-type cells and
        by fewer than 1 % of its perturbed cells); 0 or 1 for a single genome. Empty for a
        steady-state genome.
    lost_fates
        Fates with ``p_lost`` ≥ 0.5 (for a single genome: lost by the 1 % rule above).
    gained_fates
        Fates reached by at least 1 % of perturbed cells and by fewer than 1 % of wild-type
        cells (ensemble means).
    expression
        DataFrame indexed by the genome's genes: mean end-state level ``wt`` and ``perturbed``
        (model coordinates, about [0, 1]; ensemble means) and ``log2fc`` (pseudocount 0.01).
    log2fc
        Series over genes: the genome's genes from the simulation (as in ``expression``);
        every other gene from the latent model's decoder when ``perturb`` got one, otherwise
        from the genome's readout (``fit_grn``'s regression of the other genes on the
        genome's state; the highly variable genes when marked, else all genes with variance),
        in the order of ``adata.var_names``; only the genome's genes for a genome without a
        readout (built by hand, or ``fit_grn(readout=False)``). ``params["log2fc_other_genes"]``
        says which: ``"decoder"``, ``"readout"`` or ``"none"``.
    decoded
        AnnData of the simulated cells over all genes (``obs["condition"]`` ∈ {``wt``,
        ``perturbed``}, ``.X`` = log1p of decoded expression per 10,000), or ``None``.
    score, score_pvalue
        The perturbation score (fates: total-variation distance between the wild-type and
        perturbed fate distributions; steady state: RMS log2 fold change of the genes it does
        not set) and its p-value against a null of random perturbations of the same kind and
        size, ``(1 + #null ≥ score) / (1 + n_null)``.
    null_scores
        The null's scores. :func:`perturb` simulates the null only when ``null_scores``,
        ``score_pvalue`` or :meth:`to_frame` is first read (its ``n_null`` random
        perturbations cost several times the perturbation itself, and a user who reads
        only ``log2fc`` or the fates never needs them); the values are the same either way.
    trajectories, times
        ``{"wt": (n_save, n_traj, 2), "perturbed": ...}``: paths of the first simulated cells
        on the landscape's basis (empty without a landscape), and the snapshot times.
    params
        Settings of the run.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (200, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> _ = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("A"), n_cells=200, n_null=3)
    >>> res.lost_fates, round(float(res.fates.loc["B-high", "perturbed"]), 2)
    (['A-high'], 1.0)
    """

    def __init__(
        self,
        *,
        perturbation: str,
        fates: pd.DataFrame,
        expression: pd.DataFrame,
        log2fc: pd.Series,
        decoded: AnnData | None,
        score: float,
        null_scores: np.ndarray | Callable[[], np.ndarray],
        trajectories: dict[str, np.ndarray],
        times: np.ndarray,
        params: dict[str, Any],
    ):
        self.perturbation = perturbation
        self.fates = fates
        self.lost_fates, self.gained_fates = lost_gained(fates)
        self.expression = expression
        self.log2fc = log2fc
        self.decoded = decoded
        self.score = float(score)
        # a callable computes the null on first use (see null_scores in the class docstring)
        self._null: np.ndarray | None = None
        self._null_fn = null_scores if callable(null_scores) else None
        if self._null_fn is None:
            self._null = np.asarray(null_scores, dtype=np.float64)
        self.trajectories = trajectories
        self.times = times
        self.params = params

    @property
    def null_scores(self) -> np.ndarray:
        """The null's scores (simulated on first read when :func:`perturb` deferred them)."""
        if self._null is None:
            self._null = np.asarray(self._null_fn(), dtype=np.float64)
            self._null_fn = None  # what it held (the genome, the start cells) can go
        return self._null

    @property
    def score_pvalue(self) -> float:
        """``(1 + #null ≥ score) / (1 + n_null)``; 1.0 without a null."""
        return score_pvalue(self.score, self.null_scores)

    def __repr__(self) -> str:
        if self.fates.empty:
            return (
                f"PerturbationResult({self.perturbation!r}, steady state, score {self.score:.3g})"
            )
        # a repr (or a log line) must not set off the null's simulations
        p = "" if self._null is None else f" (p = {self.score_pvalue:.3g})"
        return (
            f"PerturbationResult({self.perturbation!r}, lost {self.lost_fates}, gained "
            f"{self.gained_fates}, score {self.score:.3g}{p})"
        )

    def to_frame(self) -> pd.DataFrame:
        """Tidy rows, one per fate: ``perturbation``, ``fate``, ``wt``, ``perturbed``,
        ``delta``, ``ci_low``, ``ci_high``, ``p_value``, ``p_lost``, ``lost``, ``gained``,
        ``score``, ``score_pvalue``.

        Examples
        --------
        >>> import anndata as ad, numpy as np, gclandscape as gcl
        >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
        >>> adata = ad.AnnData(np.random.default_rng(0).uniform(0, 1, (100, 2)))
        >>> adata.var_names = ["A", "B"]
        >>> toggle.write_to_adata(adata)
        >>> _ = gcl.landscape.fit_landscape(adata)
        >>> res = gcl.sim.perturb(adata, gcl.sim.Knockout("B"), n_cells=100, n_null=2)
        >>> list(res.to_frame().columns[:4])
        ['perturbation', 'fate', 'wt', 'perturbed']
        """
        return tidy(self.perturbation, self.fates, self.score, self.score_pvalue)


def tidy(name: str, fates: pd.DataFrame, score: float, score_pvalue: float) -> pd.DataFrame:
    """One perturbation's fate table as tidy rows (see :meth:`PerturbationResult.to_frame`)."""
    lost, gained = lost_gained(fates)
    df = fates.reset_index()
    df.insert(0, "perturbation", name)
    df["fate"] = df["fate"].astype(str)
    df["lost"] = df["fate"].isin(lost)
    df["gained"] = df["fate"].isin(gained)
    df["score"] = float(score)
    df["score_pvalue"] = float(score_pvalue)
    return df
