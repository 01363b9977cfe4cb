"""``gcl.landscape.fit_landscape`` and :class:`Landscape`: the genome's energy landscape.

The genome's vector field carves a landscape whose valleys are cell types. ``fit_landscape``
finds its attractors and saddles (:func:`gclandscape.engine.find_fixed_points`), the basin of
every observed cell (deterministic development of each cell), the minimum-action transitions
between attractors with their barrier heights both ways
(:func:`gclandscape.engine.transition_paths`), and two energy surfaces on a 2-D basis: the
quasi-potential ``U = -ln P_ss`` of long stochastic simulations of the genome and the
empirical potential ``-ln p(cells)`` of the observed cells.

Model coordinates
-----------------
The genome works in its own coordinates. For a genome fitted by
:func:`~gclandscape.landscape.fit_grn` (``genome.info["scale"]`` exists) they are the drift
states ``adata.layers[f"{drift_key}_state"]`` when present (already scaled), otherwise the
linear expression of :func:`gclandscape.tl._drift_inputs.expression_states` divided by the stored
per-gene scale. A hand-built genome (no scale) reads ``.X`` restricted to its genes as its
coordinates: store the cells' states there.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._defaults import RELAX_DT
from .._errors import GclDivergenceError
from .._keys import Key
from .._utils import logger, rng
from ..engine._root_finding import stable_dt
from ._attractors import _analysis_field, _attractor_analysis
from ._cell_states import _check_inputs, basis_coordinates, model_states
from ._energy import GRID, _drift_grid, _energy
from ._landscape_result import Landscape

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData

__all__ = ["Landscape", "fit_landscape"]

#: The old name of :func:`._cell_states.model_states`, which benchmarks import from here.
_model_states = model_states

#: Quasi-potential simulations: cells, simulated time, snapshots kept from the second half.
N_SIM, T_SIM, N_SNAP = 2000, 60.0, 6


# ---------------------------------------------------------------------------------- API
def fit_landscape(
    adata: AnnData,
    *,
    genome_key: str = Key.uns.genome,
    groupby: str | None = None,
    basis: str | None = None,
    seed: int = 0,
    key_added: str = Key.uns.landscape,
) -> Landscape:
    """Fit the genome's energy landscape: attractors, saddles, basins, barriers and energy.

    1. **Fixed points** of the genome's vector field from many starts: up to 1000 observed
       states (for a genome of more than 50 genes ``50000 / n_genes`` of them, at least 100:
       each start's cost grows as the genes squared) and one jittered copy of each
       (:func:`gclandscape.engine.fixed_point_starts`) and 200 random states in the box of
       observed levels (attractors that no cell reaches get the label ``"unobserved"``),
       integrated, polished with a root finder and classified by their Jacobian eigenvalues
       (:func:`gclandscape.engine.find_fixed_points`).
    2. **Basins**: every observed cell is developed deterministically (noise 0, one batched
       integration) to its attractor. Cells that reach none of the attractors found are
       relaxed further from where they stopped; if that finds a new attractor, step 1 runs
       again with their end states among the starts. Each attractor is labelled with the
       majority ``groupby`` label of its basin, with that label's purity.
    3. **Transitions**: minimum-action paths between the attractor pairs joined by an
       index-1 saddle, with a barrier for each direction in units of ``-ln P_ss`` for the
       genome's noise (:func:`gclandscape.engine.transition_paths`).
    4. **Energy** on a 2-D basis: the quasi-potential ``U = -ln P_ss`` from stochastic
       development (the genome's noise) of 2000 observed cells for 60 time units, sampled in
       the second half, and the empirical potential ``-ln p(cells)``; both are Gaussian
       kernel densities (:class:`sklearn.neighbors.KernelDensity`, Scott's bandwidth on axes
       scaled to the cells' spread) on a 60 × 60 grid, shifted to a minimum of 0. Basis:
       ``basis`` (an ``.obsm`` key), else a PCA of the latent ``X_gcl`` when present, else a
       PCA of the genome's model states. Simulated states reach a PCA of the model states by
       the same linear projection; any other basis by a kNN regression from model states to
       basis coordinates fitted on the observed cells.
    5. **Drift on the basis**: the genome's drift at every observed state, carried through
       the basis map by a small central finite step and averaged onto the same grid with a
       Gaussian kernel (NaN where no cells are near): ``grid["u"]``, ``grid["v"]``, what
       :func:`gclandscape.pl.vector_field` draws.

    Every integration uses the Euler step 0.1, halved while the genome's Jacobian at the
    observed states has a decaying eigenvalue of modulus above ``1.8 / dt`` (a fitted genome
    with a fast gene; :func:`gclandscape.engine._root_finding.stable_dt`); ``params["dt"]``
    records it.

    The genome's coordinates: for a fitted genome, the drift states
    (``.layers["gcl_drift_state"]``) or the linear expression divided by the genome's scale;
    for a hand-built genome, ``.X`` restricted to its genes.

    Parameters
    ----------
    adata
        Annotated data matrix with a genome in ``.uns[genome_key]``.
    genome_key
        Key of the genome (written by :func:`~gclandscape.landscape.fit_grn` or
        :meth:`Genome.write_to_adata`).
    groupby
        ``.obs`` column of cell types used to label the attractors.
    basis
        ``.obsm`` key of a 2-D (or wider: the first two columns are used) embedding.
    seed
        Seed of the start jitter, subsampling and simulations.
    key_added
        Key the landscape is written to.

    Returns
    -------
    The :class:`Landscape`. Also writes ``.uns[key_added]`` (the landscape, with
    ``["params"]``), ``.obs[f"{key_added}_basin"]`` (categorical attractor label per cell)
    and ``.obs[f"{key_added}_energy"]`` (quasi-potential at each cell).

    Raises
    ------
    GclError
        No genome under ``genome_key`` (fit one with ``fit_grn``), ``groupby`` not in
        ``.obs``, ``basis`` not in ``.obsm``, genes of the genome missing from ``adata``.
    GclDivergenceError
        The genome's simulation diverged; the message names the step size that failed.

    Examples
    --------
    >>> import anndata as ad, numpy as np, gclandscape as gcl
    >>> toggle = gcl.landscape.Genome(["A", "B"], [[0, -10], [-10, 0]], b=5.0)
    >>> x = np.random.default_rng(0).uniform(0, 1, (300, 2))
    >>> adata = ad.AnnData(x)
    >>> adata.var_names = ["A", "B"]
    >>> adata.obs["celltype"] = np.where(x[:, 0] > x[:, 1], "A-high", "B-high")
    >>> toggle.write_to_adata(adata)
    >>> land = gcl.landscape.fit_landscape(adata, groupby="celltype")
    >>> sorted(land.attractors["label"])
    ['A-high', 'B-high']
    >>> round(float(land.paths["barrier_forward"][0]))  # in -ln P_ss units for noise 0.05
    90
    """
    t0 = time.perf_counter()
    genome = _check_inputs(adata, genome_key, groupby, basis)
    states, source = model_states(adata, genome, genome_key)
    clamp = genome._clamp()
    if clamp is not None:  # an overexpressed gene sits at its clamp level in every cell
        states[:, clamp[0]] = clamp[1]
    field = _analysis_field(genome)
    # a fitted genome can have a fast gene (gamma of 169 on 50,000 myeloid cells) that the
    # fixed relaxation step would make diverge: the step is halved until it is stable there
    dt = stable_dt(field, states, RELAX_DT)
    if dt < RELAX_DT:
        logger.info(
            "fit_landscape: Euler step %.3g instead of %.3g (the genome is stiff: largest "
            "gamma %.3g)", dt, RELAX_DT, float(np.max(genome.gamma)),
        )  # fmt: skip
    noise = np.asarray(genome.noise, dtype=np.float64)
    path_noise = np.where(noise > 0, noise, 1.0) if (noise > 0).any() else np.ones_like(noise)
    groups = None if groupby is None else adata.obs[groupby].reset_index(drop=True)
    try:
        res = _attractor_analysis(
            field,
            states,
            genes=genome.genes,
            groups=groups,
            noise=path_noise,
            seed=seed,
            clamp=clamp,
            dt=dt,
        )
        # quasi-potential: long noisy development of observed cells, snapshots of the 2nd half
        # (at the landscape's coarser relaxation step: long runs, statistics only)
        gen = rng(seed)
        pick = gen.choice(len(states), min(N_SIM, len(states)), replace=len(states) < N_SIM)
        _, _, snaps = genome.develop(
            states[pick], t_max=T_SIM, dt=dt, seed=seed, n_save=2 * N_SNAP - 1
        )
    except GclDivergenceError as err:
        gamma = np.asarray(genome.gamma, dtype=np.float64)
        raise GclDivergenceError(
            f"fit_landscape: developing the genome diverged: {err} The genome's degradation "
            f"rates (gamma from {gamma.min():.3g} to {gamma.max():.3g}) are too fast for this "
            "step, or its expression grows without bound; check or rescale the genome."
        ) from err
    simulated = snaps[N_SNAP - 1 :].reshape(-1, genome.n_genes)

    coords, to_basis, basis_name, method = basis_coordinates(adata, states, basis, seed)
    att_states, sad_states = res["attractor_states"], res["saddle_states"]
    fixed_xy = to_basis(np.concatenate([att_states, sad_states]))
    energy = _energy(coords, to_basis(simulated), fixed_xy)
    u, v = _drift_grid(field, states, to_basis, energy["x"], energy["y"], coords)
    n_att = len(att_states)
    attractors, saddles = res["attractors"], res["saddles"]
    for frame, xy, e in (
        (attractors, fixed_xy[:n_att], energy["extra"][:n_att]),
        (saddles, fixed_xy[n_att:], energy["extra"][n_att:]),
    ):
        pos = list(frame.columns).index("max_real") + 1
        frame.insert(pos, "energy", e)
        frame.insert(pos + 1, "basis_1", xy[:, 0])
        frame.insert(pos + 2, "basis_2", xy[:, 1])
    fwd = res["path_states"]
    path_basis = (
        to_basis(fwd.reshape(-1, genome.n_genes)).reshape(len(fwd), fwd.shape[1], 2)
        if len(fwd)
        else np.zeros((0, fwd.shape[1], 2))
    )
    params = {
        "genome_key": genome_key,
        "groupby": "" if groupby is None else groupby,
        "basis": basis_name,
        "basis_method": method,
        "seed": int(seed),
        "states": source,
        "dt": dt,
        "n_starts": int(res["n_starts"]),
        "n_sim": len(pick),
        "t_sim": T_SIM,
        "n_snapshots": N_SNAP,
        "grid_size": GRID,
        "barrier_noise": path_noise,
        "seconds": float(time.perf_counter() - t0),
    }
    land = Landscape(
        attractors=attractors,
        saddles=saddles,
        paths=res["paths"],
        path_states=fwd,
        path_states_reverse=res["path_states_reverse"],
        path_basis=path_basis,
        grid={**{k: energy[k] for k in ("x", "y", "U", "U_empirical")}, "u": u, "v": v},
        coords=coords,
        basis=basis_name,
        genes=genome.genes,
        params=params,
    )
    land.write_to_adata(adata, key_added)
    adata.obs[Key.basin(key_added)] = pd.Categorical.from_codes(
        res["basin"], categories=res["labels"]
    )
    adata.obs[Key.energy(key_added)] = energy["cells"]
    logger.info(
        "fit_landscape: %d attractors (%s), %d saddles, %d paths in %.1f s",
        n_att, ", ".join(res["labels"]), len(saddles), len(res["paths"]), params["seconds"],
    )  # fmt: skip
    return land
