"""The embedded default dataset: the Krumsiek et al. 2011 myeloid network, simulated."""

from __future__ import annotations

from importlib import resources
from typing import TYPE_CHECKING

from .._errors import GclError

if TYPE_CHECKING:  # pragma: no cover
    import anndata as ad

__all__ = ["MYELOID_FATES", "MYELOID_INITIAL", "MYELOID_PARAMS", "myeloid", "myeloid_network"]

#: Common myeloid progenitor state (Krumsiek et al. 2011).
MYELOID_INITIAL = {"Gata2": 1.0, "Pu.1": 1.0, "Cebpa": 1.0}

#: Fates as conditions on the binarised end state, tried in order. Ery and Mk need Gata1 with
#: EKLF or Fli1; Gran and Mono need Pu.1 with Cebpa and Gfi1, or with cJun and EgrNab. A state
#: with Cebpa and Gfi1 but without Pu.1 (reached in the Pu.1 knockout) is therefore novel, as in
#: the Boolean model.
MYELOID_FATES = {
    "Ery": "Gata1 and EKLF",
    "Mk": "Gata1 and Fli1",
    "Gran": "Pu.1 and Cebpa and Gfi1",
    "Mono": "Pu.1 and cJun and EgrNab",
}

#: Parameters of the continuous model, tuned by measurement (a random then local search over
#: per-gene Hill thresholds and rates and the noise level) so that the wild type reaches all
#: four fates in comparable proportions and every single knockout loses exactly the fates that
#: asynchronous Boolean updating of the rules loses (Krumsiek et al. 2011, Table 2). A low
#: threshold makes a regulator act at lower levels (Pu.1's self-activation, EgrNab's repression
#: of Gfi1, whose coupling strengths in Krumsiek's model are the largest); a slow Gata2 lets a
#: Gata2 knockout still pass through the Gata2-high progenitor state it starts from.
MYELOID_PARAMS = {
    "threshold": {"*": 0.34, "Gata2": 0.44, "Pu.1": 0.19, "EgrNab": 0.26, "Gfi1": 0.43},
    "rate": {"*": 1.3, "Gata2": 0.26, "Pu.1": 1.2, "cJun": 2.5, "EgrNab": 1.4, "Gfi1": 1.3},
    "hill": 4.0,
    "noise": 0.26,
    "t_max": 30.0,
    # The step these parameters were tuned at, not ``_defaults.DT`` (equal today): the embedded
    # dataset and its pinned truth must not move when the engine's default step does.
    "dt": 0.05,
}


def myeloid_network():
    """The Krumsiek et al. 2011 rules shipped with gclandscape, as a ``BooleanNetwork``.

    Examples
    --------
    >>> from gclandscape.datasets._myeloid import myeloid_network
    >>> len(myeloid_network().genes)
    11
    """
    from ._rules import parse_rules

    ref = resources.files("gclandscape.datasets").joinpath("data", "krumsiek11.rules")
    return parse_rules(ref.read_text(), source="krumsiek11.rules", name="krumsiek11")


def myeloid(*, n_cells: int = 3000, n_targets: int = 300, seed: int = 0) -> ad.AnnData:
    """Simulated myeloid differentiation with known truth (the embedded default dataset).

    The 11-factor myeloid network of Krumsiek et al. (2011, PLoS ONE 6:e22649) simulated by
    :func:`~gclandscape.datasets.simulate` as a noisy continuous model from the common myeloid
    progenitor state (Gata2 = Pu.1 = Cebpa = 1), with downstream target genes and UMI counts.
    Cells are labelled ``progenitor``, ``Ery``, ``Mk``, ``Gran`` or ``Mono``; the truth in
    ``.uns["gcl_truth"]`` holds the network, each cell's regulator state and dx/dt, the
    wild-type fate fractions and every single knockout's fate fractions and lost fates
    (Gata1 KO loses Ery and Mk, Pu.1 KO Gran and Mono, Cebpa and Gfi1 KO Gran, EKLF KO Ery,
    Fli1 KO Mk, cJun and EgrNab KO Mono; Gata2, Fog1 and SCL KO keep all four).

    Parameters
    ----------
    n_cells
        Number of cells.
    n_targets
        Number of downstream (non-regulator) genes.
    seed
        Random seed.

    Returns
    -------
    AnnData with integer counts in ``.X`` and ``.layers["counts"]``; see
    :func:`~gclandscape.datasets.simulate` for every slot.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> adata = gcl.datasets.myeloid(n_cells=300, n_targets=20)
    >>> sorted(adata.obs["celltype"].cat.categories)
    ['Ery', 'Gran', 'Mk', 'Mono', 'progenitor']
    """
    from ._simulate import simulate

    if isinstance(n_cells, bool) or not isinstance(n_cells, int) or n_cells < 1:
        raise GclError(f"n_cells must be a positive integer; got {n_cells!r}.")
    p = MYELOID_PARAMS
    n_traj = min(2000, max(600, n_cells // 5))
    return simulate(
        myeloid_network(),
        n_cells=n_cells,
        n_targets=n_targets,
        seed=seed,
        initial=MYELOID_INITIAL,
        fates=MYELOID_FATES,
        n_trajectories=n_traj,
        n_knockout_trajectories=600,
        t_max=p["t_max"],
        dt=p["dt"],
        noise=p["noise"],
        hill=p["hill"],
        threshold=p["threshold"],
        rate=p["rate"],
    )
