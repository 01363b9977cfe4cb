"""fit_grn's decoding objective (issue 18 §1): development must regenerate the data."""

import numpy as np
import pytest
import torch

from gclandscape.engine import DecodeTargets, decode_fit, find_fixed_points
from gclandscape.engine._grn import GRNModel
from gclandscape.engine._grn_decode import decode_losses
from gclandscape.landscape._decode import decode_targets, terminal_labels

torch.set_num_threads(1)


def _toggle() -> GRNModel:
    """A hand-built toggle switch: attractors near (0.98, 0.02) and (0.02, 0.98)."""
    m = GRNModel(2, hidden=1, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        m.V.zero_()
        m.V[0, 0, 1] = -10.0
        m.V[1, 0, 0] = -10.0
        m.c.fill_(5.0)
        m.a.fill_(8.0)
        m.d.fill_(-4.0)
        m.log_alpha.zero_()
        m.log_gamma.zero_()
    return m


def _targets(centroids: np.ndarray, fractions=(0.5, 0.5)) -> DecodeTargets:
    rng = np.random.default_rng(0)
    cells = [c + rng.normal(0, 0.03, (8, 2)) for c in centroids]
    terminal = np.vstack(
        [np.repeat(c[None], int(100 * f), 0) for c, f in zip(centroids, fractions)]
    )
    return DecodeTargets(
        starts=np.full((20, 2), 0.3) + rng.normal(0, 0.02, (20, 2)),
        centroids=centroids,
        fractions=np.asarray(fractions),
        terminal_cells=terminal + rng.normal(0, 0.02, terminal.shape),
        type_cells=cells,
    )


def _stable(model: GRNModel) -> np.ndarray:
    starts = np.random.default_rng(1).uniform(0, 1, (40, 2))
    fp = find_fixed_points(model, starts, saddles=False, include_unstable=False, nonnegative=True)
    return fp.states[np.asarray(fp.type) == "stable"]


def _distance_to_nearest(points: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return np.sqrt(((points[:, None] - centroids[None]) ** 2).sum(-1)).min(0)


def test_decoding_moves_a_hand_built_genomes_attractors_onto_the_centroids():
    model = _toggle()
    centroids = np.array([[0.6, 0.1], [0.1, 0.6]])
    before = _distance_to_nearest(_stable(model), centroids)
    assert (before > 0.3).all()  # the toggle's attractors sit near (0.98, 0.02)
    # the attractor term alone: every centroid a stable fixed point that its cells relax to
    res = decode_fit(model, _targets(centroids), weights={"attractor": 1.0}, n_iter=100, lr=0.05)
    assert res.accepted
    assert res.after["attractor"] < 0.05 * res.before["attractor"]
    after = _distance_to_nearest(_stable(model), centroids)
    assert (after < 0.03).all(), after
    # the network is kept: no edge appears where the genome had none (no self-loops here)
    assert float(model.V[0, 0, 0]) == float(model.V[1, 0, 1]) == 0.0


def test_fate_term_is_zero_only_when_the_fractions_match():
    model = _toggle()
    centroids = np.array([[0.98, 0.02], [0.02, 0.98]])
    # start exactly on the diagonal: noise splits the cells about evenly between the fates
    even = decode_losses(model, _targets(centroids, (0.5, 0.5)), n_cells=400, t=10.0)
    skewed = decode_losses(model, _targets(centroids, (0.9, 0.1)), n_cells=400, t=10.0)
    assert float(even["fate"]) < 0.02
    assert float(skewed["fate"]) > 0.1
    assert even["fractions"].sum().item() == pytest.approx(1.0, abs=1e-5)


def test_decode_fit_restores_the_model_when_the_loss_does_not_improve():
    # the centroids are the toggle's own attractors (the loss is ~0); huge steps only hurt
    model = _toggle()
    centroids = _stable(model)
    centroids = centroids[np.argsort(centroids[:, 0])]
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    res = decode_fit(model, _targets(centroids), weights={"attractor": 1.0}, n_iter=3, lr=2.0)
    assert not res.accepted
    assert res.after == res.before
    for k, v in model.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_terminal_labels_leave_out_the_root_and_early_intermediates():
    labels = ["p"] * 40 + ["mid"] * 20 + ["A"] * 30 + ["B"] * 30 + ["rare"] * 2
    time = np.r_[np.linspace(0, 1, 40), np.linspace(1, 2, 20), np.linspace(2, 4, 30),
                 np.linspace(2, 4, 30), [4, 4]]  # fmt: skip
    assert terminal_labels(labels, time, "p") == ["A", "B"]


def test_decode_targets_fractions_and_starts():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (100, 3))
    labels = np.array(["p"] * 40 + ["A"] * 45 + ["B"] * 15)
    time = np.r_[np.arange(40), 100 + np.arange(60)]
    tg = decode_targets(x, labels, time, "p")
    np.testing.assert_allclose(tg.fractions, [0.75, 0.25])
    # the earliest 75 % of the root group
    np.testing.assert_array_equal(tg.starts, x[:30])
    assert decode_targets(x, np.array(["p"] * 40 + ["A"] * 60), time, "p") is None


@pytest.mark.slow
def test_fit_grn_decode_keeps_the_network_and_records_the_outcome():
    import gclandscape as gcl

    adata = gcl.datasets.myeloid(n_cells=600, n_targets=5)
    kw = {"root": "progenitor", "groupby": "celltype", "n_bootstrap": 0, "readout": False}
    plain = gcl.landscape.fit_grn(adata.copy(), **kw)
    decoded = gcl.landscape.fit_grn(adata, decode=True, **kw)
    params = adata.uns["gcl_genome"]["params"]
    assert params["decode"] in ("refined", "rejected")
    if params["decode"] == "refined":
        assert params["decode_loss_after"] < params["decode_loss_before"]
    # the edges are the regression fit's (a weak edge's mean sign may change, not its presence)
    np.testing.assert_array_equal(decoded.W.to_numpy() != 0, plain.W.to_numpy() != 0)
    assert (plain.W.to_numpy() != 0).sum() > 11
    # without a time signal and labels there is nothing to decode
    steady = gcl.datasets.myeloid(n_cells=300, n_targets=5)
    gcl.landscape.fit_grn(steady, n_bootstrap=0, readout=False, decode=True)
    assert "decode" not in steady.uns["gcl_genome"]["params"]
