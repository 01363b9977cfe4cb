"""``gcl.tl.pseudotime``: a pseudotime from a root group, cell index or name: scanpy's
diffusion pseudotime, or the fate-aware committor (:mod:`._committor`) between the root and
the terminal cell types."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import GclError
from .._keys import Key
from .._utils import logger
from .._validate import check_finite, check_obs_key, is_integer_matrix, listing

if TYPE_CHECKING:  # pragma: no cover
    from anndata import AnnData


def _resolve_rep(adata: AnnData, use_rep: str | None) -> tuple[str, np.ndarray]:
    """The representation to build neighbours on, as a dense float array."""
    if use_rep is None:
        for candidate in (Key.obsm.latent, Key.obsm.pca):
            if candidate in adata.obsm:
                use_rep = candidate
                break
    if use_rep is None:
        import anndata as ad
        import scanpy as sc

        if adata.X is None:
            raise GclError(
                "adata has no latent ('X_gcl'), no PCA ('X_pca') and no .X to compute a PCA "
                "from. Run gcl.pp.recipe(adata) or gcl.latent.fit(adata) first, or pass use_rep=."
            )
        check_finite(adata.X, name=".X")
        n_comps = int(min(50, adata.n_obs - 1, adata.n_vars - 1))
        if n_comps < 1:
            raise GclError("adata is too small for a PCA (need at least 2 cells and 2 genes).")
        x, name = adata.X, "X_pca (computed)"
        if is_integer_matrix(x):
            # a PCA of raw counts follows library size and the most expressed genes; on the
            # GRN benchmark that graph cost fit_grn an AUPRC ratio of 0.8 on simulated data
            light = ad.AnnData(X=x.astype(np.float32))
            x = sc.pp.log1p(sc.pp.normalize_total(light, inplace=False)["X"])
            name = "X_pca of log-normalised .X (computed)"
            logger.warning(
                "no latent or X_pca in .obsm and .X holds raw counts: using a PCA of a "
                "normalised, log1p-transformed copy (not stored); run gcl.pp.recipe(adata) "
                "first to choose the genes and keep the PCA"
            )
        else:
            logger.info("pseudotime: no latent or X_pca in .obsm; using a PCA of .X (not stored)")
        return name, np.asarray(sc.pp.pca(x, n_comps=n_comps), dtype=np.float64)
    if use_rep not in adata.obsm:
        raise GclError(
            f"use_rep={use_rep!r} is not in adata.obsm. Available: {listing(adata.obsm.keys())}. "
            "Run gcl.latent.fit or gcl.pp.recipe first, or pass one of these."
        )
    rep = adata.obsm[use_rep]
    rep = rep.to_numpy() if isinstance(rep, pd.DataFrame) else rep
    rep = rep.toarray() if hasattr(rep, "toarray") else rep
    rep = np.asarray(rep, dtype=np.float64)
    check_finite(rep, name=f"adata.obsm[{use_rep!r}]")
    return use_rep, rep


#: Candidate root cells tried inside the root group (tips plus a random subset when larger).
N_ROOT_CANDIDATES = 30
#: Roots whose score is within this of the best count as equally early; the tip wins among them.
ROOT_SCORE_TOLERANCE = 0.05


def _root_from_group(
    work: AnnData, labels: np.ndarray, root: str, components: np.ndarray, n_dcs: int
) -> int:
    """The root-group cell from which the root group comes out earliest.

    For up to :data:`N_ROOT_CANDIDATES` cells of the root group (the geometric tips — farthest
    in diffusion space from the other groups' centroids — plus a fixed random subset, within
    the largest connected component that holds root-group cells), the DPT is computed from that
    cell, and scored by ``median(pt of other cells) − median(pt of the root group)``: the root
    group should precede its descendants. Among the candidates within
    :data:`ROOT_SCORE_TOLERANCE` of the best score, the geometric tip is kept. Measured on the myeloid
    default (3 seeds), this picks cells from the first 1 % of the simulation, where "farthest
    from the other groups' centroids" picked cells anywhere in the first quarter and gave one
    seed a pseudotime that did not order the fates (``benchmarks/latent.py --drift-only``).
    """
    import scanpy as sc

    in_root = labels == root
    cand = np.flatnonzero(in_root)
    comp_sizes = np.bincount(components)
    cand_comps = components[cand]
    best_comp = cand_comps[np.argmax(comp_sizes[cand_comps])]
    cand = cand[cand_comps == best_comp]
    same = components == best_comp
    coords = np.asarray(work.obsm["X_diffmap"])[:, 1 : n_dcs + 1]
    others = list(pd.unique(labels[~in_root & same]))
    if not others:
        centroids = coords[same].mean(0, keepdims=True)
    else:
        centroids = np.stack([coords[(labels == g) & same].mean(0) for g in others])
    dist = np.linalg.norm(coords[cand, None, :] - centroids[None], axis=-1).mean(1)
    if len(cand) > N_ROOT_CANDIDATES:
        # the geometric tips (farthest in diffusion space from the other groups' centroids)
        # plus a fixed random subset of the group
        order = np.argsort(-dist)
        tips = order[: N_ROOT_CANDIDATES // 3]
        rest = np.setdiff1d(np.arange(len(cand)), tips)
        pick = np.random.default_rng(0).choice(rest, N_ROOT_CANDIDATES - len(tips), replace=False)
        keep = np.concatenate([tips, np.sort(pick)])
        cand, dist = cand[keep], dist[keep]
    if not others:
        return int(cand[np.argmax(dist)])
    scores = np.empty(len(cand))
    for k, cell in enumerate(cand):
        work.uns["iroot"] = int(cell)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*connected components.*")
            sc.tl.dpt(work, n_dcs=n_dcs)
        pt = np.asarray(work.obs["dpt_pseudotime"], dtype=np.float64)
        scores[k] = np.median(pt[~in_root & same]) - np.median(pt[in_root & same])
    # among the roots that put the group (nearly) earliest, the geometric tip
    good = scores >= scores.max() - ROOT_SCORE_TOLERANCE
    return int(cand[good][np.argmax(dist[good])])


def _committor_time(
    work: AnnData, labels: np.ndarray, root: str, dpt: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """The committor between the root group's earliest cells (by ``dpt``) and the terminal
    groups (PAGA tree leaves) on ``work``'s kNN graph; ``(dpt, [])`` without terminal groups."""
    import scanpy as sc

    from ._committor import ROOT_SHARE, TERMINAL_LATE, committor, terminal_groups

    if len(pd.unique(labels)) < 2:
        return dpt, []
    work.obs["_groups"] = pd.Categorical(labels)
    sc.tl.paga(work, groups="_groups")
    groups = [str(g) for g in work.obs["_groups"].cat.categories]
    terminals = terminal_groups(work.uns["paga"]["connectivities"].toarray(), groups, labels, root)
    if not terminals:
        return dpt, []
    in_root = (labels == root) & np.isfinite(dpt)
    start = in_root & (dpt <= np.quantile(dpt[in_root], ROOT_SHARE))
    # a terminal type's later cells (by DPT, which orders a group's own cells well) are where
    # the committor is 1; its earlier ones are still on their way
    end = np.zeros(len(labels), dtype=bool)
    for group in terminals:
        cells = (labels == group) & np.isfinite(dpt)
        end |= cells & (dpt >= np.quantile(dpt[cells], TERMINAL_LATE))
    return committor(work.obsp["connectivities"], start, end), terminals


def pseudotime(
    adata: AnnData,
    *,
    root: str | int,
    groupby: str | None = None,
    use_rep: str | None = None,
    n_neighbors: int = 30,
    n_dcs: int = 10,
    method: str = "dpt",
    key_added: str = Key.obs.pseudotime,
    copy: bool = False,
) -> AnnData | None:
    """A pseudotime from a root group (or a root cell): fate-aware, or diffusion pseudotime.

    A kNN graph is built with :func:`scanpy.pp.neighbors` on ``use_rep`` with the Gaussian
    kernel (``method="gauss"``, the kernel DPT was defined with by Haghverdi et al. 2016; it
    also avoids numba compiling UMAP's kernel, ~13 s per process), a diffusion map with
    :func:`scanpy.tl.diffmap`, and the diffusion pseudotime with :func:`scanpy.tl.dpt` from one
    root cell. scanpy runs on a private lightweight AnnData, so its temporary slots
    (``.uns["iroot"]``, ``.obsm["X_diffmap"]``, ``.obs["dpt_pseudotime"]``) do not appear in
    ``adata``.

    **Choice of the root cell inside a group.** Up to 30 cells of the ``root`` group are tried
    as roots, and the one from which the root group comes out earliest is kept (largest gap
    between the median pseudotime of the other cells and that of the root group): the root
    group should precede its descendants. Measured against the simulation clock of the
    myeloid default, this is robust where geometric rules (the cell farthest from the other
    groups' centroids) picked late progenitors.

    **Fate-aware time** (``method="committor"``). Diffusion pseudotime is a distance from the
    root, so a fate whose cells lie near the root in expression comes out before the
    progenitors that feed it. The committor orders cells by where they are heading instead:
    the probability that a random walk on the kNN graph from the cell reaches a terminal cell
    type before the root's earliest cells (the
    :data:`~gclandscape.tl._committor.ROOT_SHARE` of the root group earliest by DPT). It is 0
    there, 1 on the later half (by DPT) of each terminal type's cells and harmonic in between.
    The terminal types are the leaves of the PAGA tree of the groups (:func:`scanpy.tl.paga`;
    ``.uns[key_added]["terminal_groups"]``): an intermediate type with two tree neighbours is
    ordered, not fixed. It is not the default: on the generalisation suite's dev split it
    ordered the simulations better than DPT where a fate lies near the root (Spearman with the
    clock 0.43 → 0.82 on one network) but left the knockout calls of ``fit_grn`` no
    better on average (lost-set accuracy 0.32 against 0.32; the clock gives 0.44;
    ``benchmarks/README.md``, "Generalisation suite").

    Parameters
    ----------
    adata
        Annotated data matrix.
    root
        With ``groupby``: the name of the root group (a value of ``adata.obs[groupby]``), or an
        integer cell index. Without ``groupby``: an integer cell index or a cell name (a value
        of ``adata.obs_names``). An integer is a cell position in ``0 .. n_cells - 1``
        (negative positions are refused, not counted from the end).
    groupby
        Column of ``.obs`` with groups (cell types, clusters).
    use_rep
        Key of ``.obsm`` to build neighbours on. ``None`` uses the latent ``"X_gcl"`` if
        present, else ``"X_pca"``, else a PCA of ``.X`` computed on the fly (not stored; of a
        normalised, log1p-transformed copy when ``.X`` holds raw counts, with a warning).
    n_neighbors
        Number of neighbours of the kNN graph (capped at ``n_cells - 1``).
    n_dcs
        Number of diffusion components used by DPT.
    method
        ``"dpt"`` (scanpy's diffusion pseudotime, scaled to [0, 1]) or ``"committor"``
        (fate-aware, above; needs a root group with ``groupby``). When the groups have no
        terminal type (only the root group, or no tree leaf other than the root), the
        committor is not defined: DPT is used with a warning, and ``params["method"]`` says so.
    key_added
        Column of ``.obs`` for the pseudotime and key of ``.uns`` for its record.
    copy
        Return a copy with the results instead of writing into ``adata``.

    Returns
    -------
    The AnnData if ``copy=True``, else ``None``; it gets

    - ``.obs[key_added]``: pseudotime in [0, 1] (the committor, or scanpy's DPT scaled by its
      largest finite value). Cells in a connected component of the kNN graph other than the
      root's have no finite DPT (nor a committor: no walk from the root reaches them); they
      get NaN and a warning is emitted.
    - ``.uns[key_added]``: ``"params"`` (root, groupby, use_rep, n_neighbors, n_dcs, method:
      the one used), the chosen ``"root_cell"`` (obs name) and ``"root_index"``,
      ``"terminal_groups"`` (empty for DPT) and ``"n_unreachable"``.
    - the kNN graph, in scanpy's layout under the neighbours key ``f"{key_added}_neighbors"``:
      ``.uns[f"{key_added}_neighbors"]`` and ``.obsp[f"{key_added}_neighbors_connectivities"]`` /
      ``.obsp[f"{key_added}_neighbors_distances"]`` (usable as ``neighbors_key=`` in scanpy's
      tools, e.g. :func:`scanpy.tl.umap`, and by :func:`gclandscape.tl.drift`).

    Raises
    ------
    GclError
        When ``groupby`` is not a column (the message lists them), ``root`` is not one of its
        groups (the message lists them) or not a valid cell index or name, ``use_rep`` is
        missing or not finite, or ``method`` is not one of the two (or ``"committor"`` without
        a root group).

    Examples
    --------
    >>> import numpy as np, anndata as ad, pandas as pd
    >>> import gclandscape as gcl
    >>> t = np.linspace(0, 1, 200)
    >>> rep = np.c_[t, np.sin(3 * t)] + np.random.default_rng(0).normal(0, 0.01, (200, 2))
    >>> groups = pd.Categorical(np.where(t < 0.2, "early", np.where(t < 0.7, "mid", "late")))
    >>> adata = ad.AnnData(obs=pd.DataFrame({"g": groups}, index=[f"c{i}" for i in range(200)]),
    ...                    obsm={"X_pca": rep})
    >>> gcl.tl.pseudotime(adata, root="early", groupby="g", n_neighbors=15)
    >>> med = adata.obs.groupby("g", observed=True)["gcl_pseudotime"].median()
    >>> bool(med["early"] < med["mid"] < med["late"])
    True
    """
    import anndata as ad
    import scanpy as sc
    from scipy.sparse.csgraph import connected_components

    if adata.n_obs < 3:
        raise GclError(f"pseudotime needs at least 3 cells, adata has {adata.n_obs}.")
    labels = None
    if groupby is not None:
        check_obs_key(adata, groupby, param="groupby")
        labels = adata.obs[groupby].astype(str).to_numpy()
    root_group: str | None = None
    root_index: int | None = None
    if isinstance(root, bool):
        raise GclError(f"root must be a group name, a cell index or a cell name, got {root!r}.")
    if isinstance(root, int | np.integer):
        # a negative index would silently pick a cell counted from the end (root=-1: the
        # last cell), which is never what a root means
        if not 0 <= int(root) < adata.n_obs:
            raise GclError(
                f"root={root} is not a cell index: an integer root must be a cell position in "
                f"0..{adata.n_obs - 1} (adata has {adata.n_obs} cells). To root in a cell "
                "type, pass its group name with groupby=; to root in a named cell, pass its "
                "name in adata.obs_names."
            )
        root_index = int(root)
    elif groupby is not None:
        present = pd.unique(labels)
        if str(root) not in present:
            raise GclError(
                f"root={root!r} is not a group of adata.obs[{groupby!r}]. Available groups: "
                f"{listing(sorted(present))}."
            )
        root_group = str(root)
    else:
        if root not in adata.obs_names:
            raise GclError(
                f"root={root!r} is not a cell name of adata.obs_names. Pass an integer cell "
                "index, a cell name, or a group name together with groupby=."
            )
        root_index = int(adata.obs_names.get_loc(root))

    if method not in ("committor", "dpt"):
        raise GclError(f"method must be 'committor' or 'dpt', got {method!r}.")
    if method == "committor" and root_group is None:
        raise GclError(
            "method='committor' needs a root group: pass root='<progenitor group>' with "
            "groupby='<column>', or method='dpt' to root in a single cell."
        )

    rep_name, rep = _resolve_rep(adata, use_rep)
    n_neighbors = int(min(n_neighbors, adata.n_obs - 1))
    if n_neighbors < 2:
        raise GclError(f"n_neighbors must be at least 2, got {n_neighbors}.")

    work = ad.AnnData(obs=pd.DataFrame(index=adata.obs_names.copy()), obsm={"rep": rep})
    sc.pp.neighbors(work, n_neighbors=n_neighbors, use_rep="rep", method="gauss", random_state=0)
    n_comps = int(min(max(n_dcs, 2) + 5, adata.n_obs - 2))
    sc.tl.diffmap(work, n_comps=n_comps)
    n_dcs_used = int(min(n_dcs, n_comps))
    _, components = connected_components(work.obsp["connectivities"], directed=False)

    if root_group is not None:
        root_index = _root_from_group(work, labels, root_group, components, n_dcs_used)

    work.uns["iroot"] = root_index
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*connected components.*")
        sc.tl.dpt(work, n_dcs=n_dcs_used)
    values = np.asarray(work.obs["dpt_pseudotime"], dtype=np.float64)
    terminals: list[str] = []
    if method == "committor":
        values, terminals = _committor_time(work, labels, root_group, values)
        if not terminals:
            warnings.warn(
                f"no terminal cell type in adata.obs[{groupby!r}] besides the root group "
                f"{root_group!r} (the PAGA tree of the groups has no other leaf): using "
                "diffusion pseudotime (method='dpt') instead of the committor.",
                UserWarning,
                stacklevel=2,
            )
            method = "dpt"
    unreachable = ~np.isfinite(values)
    n_unreachable = int(unreachable.sum())
    if n_unreachable:
        values[unreachable] = np.nan
        warnings.warn(
            f"{n_unreachable} cells are not connected to the root cell in the kNN graph "
            f"(n_neighbors={n_neighbors}); their pseudotime is NaN. Increase n_neighbors or use "
            "another representation to connect them.",
            UserWarning,
            stacklevel=2,
        )

    if copy:
        adata = adata.copy()
    adata.obs[key_added] = values
    neighbors_key = Key.neighbors(key_added)
    conn_key, dist_key = f"{neighbors_key}_connectivities", f"{neighbors_key}_distances"
    adata.obsp[conn_key] = work.obsp["connectivities"]
    adata.obsp[dist_key] = work.obsp["distances"]
    nb_params = dict(work.uns["neighbors"]["params"])
    nb_params["use_rep"] = rep_name
    adata.uns[neighbors_key] = {
        "connectivities_key": conn_key,
        "distances_key": dist_key,
        "params": nb_params,
    }
    adata.uns[key_added] = {
        "params": {
            "root": root if isinstance(root, str) else int(root),
            "groupby": groupby,
            "use_rep": rep_name,
            "n_neighbors": n_neighbors,
            "n_dcs": n_dcs_used,
            "method": method,
        },
        "root_cell": str(adata.obs_names[root_index]),
        "root_index": int(root_index),
        "terminal_groups": terminals,
        "n_unreachable": n_unreachable,
        "neighbors_key": neighbors_key,
    }
    return adata if copy else None
