"""Engine tests against known answers: exact linear solutions, OU variance, clamps, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gclandscape._errors import GclDivergenceError, GclError
from gclandscape.datasets._rules import parse_rules
from gclandscape.engine import BooleanHillField, LinearField, SigmoidField, integrate

A = np.array([[-1.0, 0.5], [0.0, -2.0]])


def exact_linear(x0: np.ndarray, t: float) -> np.ndarray:
    from scipy.linalg import expm

    return x0 @ expm(A * t).T


def test_linear_ode_matches_exact_solution_and_error_shrinks_with_dt():
    x0 = np.array([[1.0, 2.0], [0.5, -1.0]])
    truth = exact_linear(x0, 1.5)
    errs = []
    for dt in (0.1, 0.01, 0.001):
        sol = integrate(LinearField(A), x0, t_max=1.5, dt=dt, nonnegative=False)
        assert sol.x.dtype == torch.float64
        errs.append(np.abs(sol.x.numpy() - truth).max())
    assert errs[2] < 1e-3
    # Euler is first order: ten times smaller dt → about ten times smaller error
    assert 5 < errs[0] / errs[1] < 20
    assert 5 < errs[1] / errs[2] < 20


def test_snapshots_times_and_values():
    x0 = np.array([[1.0, 1.0]])
    sol = integrate(LinearField(A), x0, t_max=2.0, dt=0.001, n_save=5, nonnegative=False)
    assert sol.xs.shape == (5, 1, 2)
    np.testing.assert_allclose(sol.ts.numpy(), [0.0, 0.5, 1.0, 1.5, 2.0], atol=1e-9)
    np.testing.assert_allclose(sol.xs[0].numpy(), x0)
    for k, t in enumerate(sol.ts.numpy()):
        np.testing.assert_allclose(sol.xs[k].numpy(), exact_linear(x0, t), atol=2e-3)
    np.testing.assert_allclose(sol.xs[-1].numpy(), sol.x.numpy())


def test_zero_noise_is_deterministic_and_seed_reproducible():
    f = SigmoidField([[0.0, -8.0], [-8.0, 0.0]], b=4.0)
    x0 = np.random.default_rng(0).uniform(0, 1, (50, 2))
    a = integrate(f, x0, t_max=5.0, dt=0.05, seed=1).x
    b = integrate(f, x0, t_max=5.0, dt=0.05, seed=2).x
    assert torch.equal(a, b)
    n1 = integrate(f, x0, t_max=5.0, dt=0.05, noise=0.2, seed=3).x
    n2 = integrate(f, x0, t_max=5.0, dt=0.05, noise=0.2, seed=3).x
    n3 = integrate(f, x0, t_max=5.0, dt=0.05, noise=0.2, seed=4).x
    assert torch.equal(n1, n2)
    assert not torch.equal(n1, n3)


def test_input_is_not_mutated():
    x0 = torch.ones(3, 2)
    integrate(LinearField(A), x0, t_max=1.0, dt=0.1, noise=0.1)
    assert torch.equal(x0, torch.ones(3, 2))


def test_clamp_is_honoured_by_index_and_mask():
    f = SigmoidField([[0.0, 0.0], [10.0, 0.0]], b=[5.0, -5.0])  # gene 0 on, drives gene 1
    x0 = np.full((20, 2), 0.5)
    sol = integrate(f, x0, t_max=10.0, dt=0.05, noise=0.05, clamp=([0], 0.0), n_save=3)
    assert float(sol.xs[:, :, 0].abs().max()) == 0.0
    assert float(sol.x[:, 1].max()) < 0.2  # its only activator is knocked out
    free = integrate(f, x0, t_max=10.0, dt=0.05)
    assert float(free.x[:, 1].min()) > 0.9
    mask = torch.zeros(20, 2, dtype=torch.bool)
    mask[:10, 0] = True  # knockout in half of the cells only
    half = integrate(f, x0, t_max=10.0, dt=0.05, clamp=(mask, 0.0))
    assert float(half.x[:10, 1].max()) < 0.05
    assert float(half.x[10:, 1].min()) > 0.9
    over = integrate(f, x0, t_max=1.0, dt=0.05, clamp=([1], 2.0))
    assert torch.all(over.x[:, 1] == 2.0)


def test_divergence_error_names_dt():
    f = LinearField([[5.0]])
    with pytest.raises(GclDivergenceError, match=r"dt = 0\.5.*smaller dt"):
        integrate(f, np.ones((2, 1)), t_max=1000.0, dt=0.5)
    with pytest.raises(GclError, match="NaN"):
        integrate(f, np.array([[np.nan]]), t_max=1.0, dt=0.1)
    with pytest.raises(GclError, match="dt must be"):
        integrate(f, np.ones((1, 1)), t_max=1.0, dt=0.0)


def test_ornstein_uhlenbeck_stationary_variance():
    theta, sigma = 2.0, 0.5  # dx = -theta x dt + sigma dW: var = sigma^2 / (2 theta)
    f = LinearField([[-theta, 0.0], [0.0, -theta]])
    sol = integrate(
        f, np.zeros((10000, 2)), t_max=3.0, dt=0.01, noise=[sigma, 2 * sigma], nonnegative=False
    )
    var = sol.x.double().var(dim=0).numpy()
    expected = np.array([sigma**2, 4 * sigma**2]) / (2 * theta)
    np.testing.assert_allclose(var, expected, rtol=0.06)
    # callable diffusion, same process
    sol2 = integrate(
        f, np.zeros((10000, 2)), t_max=3.0, dt=0.01, noise=lambda t, x, a: sigma, nonnegative=False
    )
    np.testing.assert_allclose(
        sol2.x.double().var(dim=0).numpy(), sigma**2 / (2 * theta), rtol=0.06
    )


def test_boolean_hill_field_soft_logic_values():
    net = parse_rules("A = B and not C\nB = A or C\nC = not A\nD =")
    f = BooleanHillField.from_network(net, hill=2.0, threshold=0.5)
    x = torch.tensor([[0.5, 1.0, 0.25, 0.7], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)
    h = x**2 / (0.25 + x**2)
    a, b, c = h[:, 0], h[:, 1], h[:, 2]
    expected = torch.stack(
        [b * (1 - c), 1 - (1 - a) * (1 - c), 1 - a, torch.zeros(2, dtype=x.dtype)], 1
    )
    torch.testing.assert_close(f.production(x)[:, :3], expected[:, :3])
    dx = f(0.0, x)
    torch.testing.assert_close(dx[:, :3], expected[:, :3] - x[:, :3])
    assert torch.all(dx[:, 3] == 0)  # input gene keeps its level
    # per-cell alpha overrides (knockdown in the first cell)
    alpha = torch.ones(2, 4, dtype=x.dtype)
    alpha[0, 0] = 0.0
    dx2 = f(0.0, x, {"alpha": alpha})
    assert dx2[0, 0] == -x[0, 0]
    assert dx2[1, 0] == dx[1, 0]


def test_boolean_toggle_switch_reaches_two_fates():
    net = parse_rules("A = not B\nB = not A")
    f = BooleanHillField.from_network(net)
    sol = integrate(f, np.ones((400, 2)), t_max=20.0, dt=0.05, noise=0.1, seed=0)
    x = sol.x.numpy()
    a_wins = x[:, 0] - x[:, 1] > 0.5
    b_wins = x[:, 1] - x[:, 0] > 0.5
    assert (a_wins | b_wins).mean() > 0.95
    assert 0.3 < a_wins.mean() < 0.7


# ---------------------------------------------------------------- the in-place kernel
# integrate() runs an allocation-free in-place loop unless autograd must follow the states;
# with x0 requiring gradients it runs the plain out-of-place loop. Both must give the same
# values, bit for bit, for every kind of noise, clamp and override.


def _sigmoid_case(n_genes: int = 6, seed: int = 0) -> SigmoidField:
    gen = np.random.default_rng(seed)
    return SigmoidField(
        gen.normal(0, 2, (n_genes, n_genes)),
        b=gen.normal(0, 1, n_genes),
        alpha=gen.uniform(0.5, 2, n_genes),
        gamma=gen.uniform(0.5, 2, n_genes),
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kw",
    [
        {"noise": 0.0},
        {"noise": 0.2},
        {"noise": [0.0, 0.1, 0.2, 0.3, 0.1, 0.05]},
        {"noise": lambda t, x, a: 0.1 * torch.sqrt(x + 0.01)},
        {"noise": 0.1, "clamp": ([1, 3], [0.0, 2.0]), "n_save": 4},
        {"noise": 0.1, "args": {"alpha": torch.full((40, 6), 0.7)}},
        {"noise": 0.1, "nonnegative": False},
    ],
    ids=["ode", "scalar", "per-gene", "callable", "clamp", "args", "signed"],
)
def test_inplace_kernel_equals_out_of_place_steps(kw, dtype):
    f = _sigmoid_case()
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1), dtype=dtype)
    fast = integrate(f, x0, t_max=2.0, dt=0.05, seed=5, **kw)
    slow = integrate(f, x0.clone().requires_grad_(True), t_max=2.0, dt=0.05, seed=5, **kw)
    assert not fast.x.requires_grad
    assert slow.x.requires_grad
    assert torch.equal(fast.x, slow.x.detach())
    if "n_save" in kw:
        assert torch.equal(fast.xs, slow.xs.detach())
    assert float(fast.x.std()) > 0.05  # the dynamics moved the cells


def test_inplace_kernel_per_cell_clamp_and_generic_field():
    net = parse_rules("A = not B\nB = not A and C\nC = A or B")
    f = BooleanHillField.from_network(net)
    x0 = torch.rand(30, 3, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(30, 3, dtype=torch.bool)
    mask[:10, 1] = True
    kw = {"t_max": 3.0, "dt": 0.05, "noise": 0.1, "clamp": (mask, 0.0), "seed": 1}
    fast = integrate(f, x0, **kw)
    slow = integrate(f, x0.clone().requires_grad_(True), **kw)
    assert torch.equal(fast.x, slow.x.detach())
    assert float(fast.x[:10, 1].abs().max()) == 0.0
    assert float(fast.x[10:, 1].max()) > 0.0


def test_prefetched_noise_equals_serial_draws(monkeypatch):
    import gclandscape.engine._noise as noise_mod

    f = _sigmoid_case(4)
    x0 = np.random.default_rng(3).uniform(0, 1, (500, 4)).astype(np.float32)
    kw = {"t_max": 1.0, "dt": 0.05, "noise": 0.2, "seed": 7, "n_save": 3}
    monkeypatch.setattr(noise_mod, "PREFETCH_MIN", 0)  # background thread for this small batch
    a, b = integrate(f, x0, **kw), integrate(f, x0, **kw)
    other = integrate(f, x0, **{**kw, "seed": 8})
    monkeypatch.setattr(noise_mod, "PREFETCH_MIN", 2**62)  # drawn in the loop
    c = integrate(f, x0, **kw)
    assert torch.equal(a.x, b.x)
    assert torch.equal(a.xs, b.xs)
    assert torch.equal(a.x, c.x)
    assert torch.equal(a.xs, c.xs)
    assert not torch.equal(a.x, other.x)
    monkeypatch.setattr(noise_mod, "PREFETCH_MIN", 0)
    with pytest.raises(GclDivergenceError):  # the thread stops when the loop raises
        integrate(LinearField([[5.0]]), np.ones((4, 1)), t_max=1000.0, dt=0.5, noise=0.1)


@pytest.mark.parametrize("shape", [(5, 1), (1, 5)])
def test_numpy_input_is_not_mutated_by_the_inplace_loop(shape):
    x0 = np.full(shape, 0.5, dtype=np.float32)  # torch.as_tensor shares this memory
    sol = integrate(LinearField(-np.eye(shape[1])), x0, t_max=1.0, dt=0.1, noise=0.1)
    assert np.all(x0 == 0.5)
    assert not np.allclose(sol.x.numpy(), 0.5)


def test_divergence_check_has_no_false_alarm_on_huge_finite_states():
    # the float64 sum overflows here; the exact elementwise test must then clear it
    x0 = np.full((4, 2), 1e308)
    sol = integrate(LinearField(np.zeros((2, 2))), x0, t_max=1.0, dt=0.1, nonnegative=False)
    assert np.all(sol.x.numpy() == 1e308)


def test_gradients_flow_through_integrate():
    x0 = torch.ones(3, 1, requires_grad=True)
    sol = integrate(LinearField([[-1.0]]), x0, t_max=1.0, dt=0.1, nonnegative=False)
    sol.x.sum().backward()
    np.testing.assert_allclose(x0.grad.numpy(), 0.9**10, rtol=1e-6)  # (1 - h)^n per cell

    class Decay(torch.nn.Module):  # a field whose parameter needs a gradient
        def __init__(self):
            super().__init__()
            self.k = torch.nn.Parameter(torch.tensor(1.0))

        def forward(self, t, x, args=None):
            return -self.k * x

    field = Decay()
    out = integrate(field, np.ones((2, 1)), t_max=1.0, dt=0.1, nonnegative=False)
    out.x.sum().backward()
    # d/dk of 2 (1 - k h)^n at k = 1: -2 n h (1 - h)^(n - 1)
    np.testing.assert_allclose(float(field.k.grad), -2 * 10 * 0.1 * 0.9**9, rtol=1e-5)


def test_sigmoid_drift_gene_major_equals_call():
    f = _sigmoid_case(5)
    x = torch.rand(7, 5, dtype=torch.float64)
    xt = x.T.contiguous()
    out, work = torch.empty_like(xt), torch.empty_like(xt)
    alpha = torch.rand(7, 5, dtype=torch.float64)
    for args in (None, {"alpha": alpha}):
        f._drift_gm(0.0, xt, args, out, work)
        assert torch.equal(out.T, f(0.0, xt.T, args))  # the layout integrate passes
        torch.testing.assert_close(out.T, f(0.0, x, args))


# ---------------------------------------------------------------- blocked noise on the CPU
# Large CPU batches are cut into blocks of cells, each with its own generator; a sigmoid
# field steps the blocks in worker threads. BLOCK_VALUES is lowered here so small batches
# take that path.


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kw",
    [
        {"noise": 0.2},
        {"noise": [0.0, 0.1, 0.2, 0.3, 0.1, 0.05]},
        {"noise": np.full((40, 6), 0.1)},
        {"noise": 0.1, "clamp": ([1, 3], [0.0, 2.0]), "n_save": 4},
        {"noise": 0.1, "clamp": (np.arange(240).reshape(40, 6) % 7 == 0, 0.0)},
        {"noise": 0.1, "args": {"alpha": torch.linspace(0.5, 1.5, 240).reshape(40, 6)}},
        {"noise": 0.1, "nonnegative": False},
    ],
    ids=["scalar", "per-gene", "per-cell", "clamp", "cell-clamp", "args", "signed"],
)
def test_blocked_kernel_is_seeded_and_independent_of_threads(monkeypatch, kw, dtype):
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 50)  # 40 cells × 6 genes → 5 blocks of 8
    assert noise_mod._cell_blocks(40, 6, torch.device("cpu")) == [
        (s, s + 8) for s in range(0, 40, 8)
    ]
    f = _sigmoid_case()
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1), dtype=dtype)
    one = integrate(f, x0, t_max=2.0, dt=0.05, seed=5, num_threads=1, **kw)
    two = integrate(f, x0, t_max=2.0, dt=0.05, seed=5, num_threads=2, **kw)
    assert torch.equal(one.x, two.x)
    assert torch.equal(one.x, integrate(f, x0, t_max=2.0, dt=0.05, seed=5, **kw).x)
    other = integrate(f, x0, t_max=2.0, dt=0.05, seed=6, num_threads=2, **kw)
    assert float((one.x - other.x).abs().max()) > 0.05
    # the plain out-of-place loop draws the same noise; only the matrix product's rounding
    # may differ (it multiplies all cells at once, the blocked kernel 8 at a time)
    slow = integrate(f, x0.clone().requires_grad_(True), t_max=2.0, dt=0.05, seed=5, **kw)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(one.x, slow.x.detach(), atol=tol, rtol=0)
    if "n_save" in kw:
        assert torch.equal(one.xs, two.xs)
        torch.testing.assert_close(one.xs, slow.xs.detach(), atol=tol, rtol=0)
        # the clamp of genes 1 and 3
        assert torch.all(one.x[:, 1] == 0.0)
        assert torch.all(one.x[:, 3] == 2.0)


def test_blocked_generic_field_equals_out_of_place_loop(monkeypatch):
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 16)
    f = BooleanHillField.from_network(parse_rules("A = not B\nB = not A and C\nC = A or B"))
    x0 = torch.rand(30, 3, generator=torch.Generator().manual_seed(2))
    kw = {"t_max": 2.0, "dt": 0.05, "noise": lambda t, x, a: 0.1 * torch.sqrt(x + 0.01)}
    fast = integrate(f, x0, seed=3, **kw)
    slow = integrate(f, x0.clone().requires_grad_(True), seed=3, **kw)
    assert torch.equal(fast.x, slow.x.detach())
    assert not torch.equal(fast.x, integrate(f, x0, seed=4, **kw).x)


@pytest.mark.parametrize("field", ["sigmoid", "linear"])
def test_blocked_noise_increments_are_standard_normal(field):
    # zero drift: each step adds sigma * sqrt(dt) * N(0, 1) exactly; 2 × 10^6 increments
    n_cells, n_genes, sigma, dt = 2000, 200, 0.3, 0.04  # 4 × 10^5 values: 2 blocks
    zero = np.zeros((n_genes, n_genes))
    f = SigmoidField(zero, alpha=0.0, gamma=0.0) if field == "sigmoid" else LinearField(zero)
    x0 = np.ones((n_cells, n_genes), dtype=np.float32)
    kw = {"t_max": 5 * dt, "dt": dt, "noise": sigma, "n_save": 6, "nonnegative": False}
    sol = integrate(f, x0, seed=11, **kw)
    assert torch.equal(sol.xs, integrate(f, x0, seed=11, **kw).xs)
    z = (torch.diff(sol.xs.double(), dim=0) / (sigma * np.sqrt(dt))).numpy()
    assert z.size == 2_000_000
    assert abs(z.mean()) < 0.005  # standard error 0.0007
    assert abs(z.var() - 1.0) < 0.01  # standard error 0.001; a wrong sqrt(dt) gives 25
    assert abs(np.mean(np.abs(z) > 1.959964) - 0.05) < 0.002  # Gaussian tails
    assert abs(np.mean(z**4) - 3.0) < 0.05  # kurtosis of a normal
    # the two blocks (cells 0-999, 1000-1999) and successive steps are uncorrelated
    assert abs(np.corrcoef(z[:, :1000].ravel(), z[:, 1000:].ravel())[0, 1]) < 0.005
    assert abs(np.corrcoef(z[0].ravel(), z[1].ravel())[0, 1]) < 0.005


def test_table_normals_match_the_standard_normal():
    # the noise of multi-block CPU batches: SFC64 bits looked up in 2^16 normal quantiles
    from scipy import stats

    import gclandscape.engine._noise as noise_mod

    table = noise_mod._normal_table(np.dtype(np.float64))
    assert table.shape == (2**16,)
    assert np.all(np.diff(table) > 0)
    assert abs(table.mean()) < 1e-12
    assert abs(np.mean(table**2) - 1.0) < 1e-12
    assert 4.2 < table[-1] < 4.4  # the tail is cut at 4.3 sigma
    gens = noise_mod._generators(3, 2, torch.device("cpu"))
    assert all(isinstance(g, noise_mod._TableNormal) for g in gens)
    buf = torch.empty(500, 2000, dtype=torch.float32)
    z = gens[0].fill_(buf).numpy().ravel().astype(np.float64)
    assert stats.kstest(z, "norm").pvalue > 1e-3  # D ~ 1e-3 at n = 10^6 (a flaw shows ~1e-2)
    assert abs(np.mean(np.abs(z) > 3.0) - 0.0027) < 0.0003  # standard error 5e-5
    # reproducible per (seed, block); blocks and successive draws differ
    again = noise_mod._generators(3, 2, torch.device("cpu"))[0].fill_(torch.empty(500, 2000))
    assert torch.equal(again, buf)
    other = gens[1].fill_(torch.empty(500, 2000)).numpy().ravel()
    assert abs(np.corrcoef(z, other)[0, 1]) < 0.005
    assert abs(np.corrcoef(z, gens[0].fill_(torch.empty(500, 2000)).numpy().ravel())[0, 1]) < 0.005
    # one block draws torch's stream, as earlier versions did
    (one,) = noise_mod._generators(3, 1, torch.device("cpu"))
    ref = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    assert torch.equal(one.fill_(torch.empty(4, 5)), ref)


def test_blocked_kernel_divergence_is_reported_at_the_same_step(monkeypatch):
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 8)  # 40 cells × 2 genes → 10 blocks
    f = SigmoidField(np.zeros((2, 2)), gamma=-50.0)  # x grows by 26× per step
    x0 = np.ones((40, 2), dtype=np.float32)
    # the drift 50·x overflows float32 (3.4e38) once x > 6.8e36: by step 6 for a cell
    # starting at 1e30 (in the second worker's blocks), step 13 for one at 1e20 (the first's)
    x0[2] = 1e20
    x0[33] = 1e30
    msgs = []
    for n_threads in (1, 2):
        with pytest.raises(GclDivergenceError, match="step") as err:
            integrate(f, x0, t_max=50.0, dt=0.5, check_every=1, num_threads=n_threads)
        msgs.append(str(err.value))
    assert msgs[0] == msgs[1]
    assert "(step 6 of 100)" in msgs[0]


def test_blocked_kernel_multiplies_through_numpy_and_restores_blas_threads(monkeypatch):
    # the block product runs through numpy's BLAS with one thread per worker; the caller's
    # BLAS thread count is back afterwards, also when the run fails
    from threadpoolctl import threadpool_info, threadpool_limits

    import gclandscape.engine._blas_choice as blas_choice
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 50)
    monkeypatch.setattr(blas_choice, "MATMUL_BACKEND", "numpy")  # not measured: numpy's BLAS
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: calls.append(1) or matmul(*a, **k))
    blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
    if not blas:
        pytest.skip("numpy reports no BLAS library to threadpoolctl")
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1))
    with threadpool_limits(limits=2, user_api="blas"):
        integrate(_sigmoid_case(), x0, t_max=1.0, dt=0.05, noise=0.1, num_threads=2)
        assert len(calls) == 20 * 5  # 20 steps × 5 blocks
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {2}
        with pytest.raises(GclDivergenceError):
            integrate(SigmoidField(np.zeros((6, 6)), gamma=-50.0), x0 + 1e30, t_max=5.0,
                      dt=0.5, check_every=1, num_threads=2)  # fmt: skip
        assert {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"} == {2}


def test_block_product_through_torch_gives_the_numpy_paths_up_to_rounding(monkeypatch):
    # the kernel's block product may run through torch's BLAS (chosen where it measures
    # faster); it must compute the same paths, and then numpy's matmul is not called
    import gclandscape.engine._blas_choice as blas_choice
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 50)
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1))
    calls = []
    matmul = np.matmul
    monkeypatch.setattr(np, "matmul", lambda *a, **k: calls.append(1) or matmul(*a, **k))
    ends = {}
    for backend in ("numpy", "torch"):
        monkeypatch.setattr(blas_choice, "MATMUL_BACKEND", backend)
        calls.clear()
        ends[backend] = integrate(
            _sigmoid_case(), x0, t_max=1.0, dt=0.05, noise=0.1, seed=3, num_threads=2
        ).x
        assert len(calls) == (20 * 5 if backend == "numpy" else 0)
    diff = (ends["numpy"] - ends["torch"]).abs().max().item()
    assert diff < 1e-4
    assert (ends["numpy"] - x0).abs().max().item() > 0.05  # the cells moved


def test_block_product_keeps_numpy_unless_torch_is_clearly_faster():
    from gclandscape.engine._blas_choice import TORCH_MARGIN, pick_backend

    assert pick_backend(2.0, 1.0) == "torch"
    assert pick_backend(TORCH_MARGIN * 0.99, 1.0) == "numpy"  # a near tie keeps numpy's
    assert pick_backend(1.0, 1.5) == "numpy"


def test_blocked_kernel_does_not_touch_a_gene_major_input(monkeypatch):
    import gclandscape.engine._noise as noise_mod

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 16)
    x0 = np.asfortranarray(np.full((20, 3), 0.5, dtype=np.float32))  # shared with the state
    sol = integrate(_sigmoid_case(3), x0, t_max=1.0, dt=0.1, noise=0.1, num_threads=2)
    assert np.all(x0 == 0.5)
    assert not np.allclose(sol.x.numpy(), 0.5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("kw", "fused"),
    [
        ({"noise": 0.2}, True),
        ({"noise": [0.0, 0.1, 0.2, 0.3, 0.1, 0.05]}, True),
        ({"noise": 0.0}, True),
        ({"noise": 0.1, "nonnegative": False}, True),
        ({"noise": 0.1, "clamp": ([1, 3], [0.0, 2.0])}, True),
        ({"noise": np.full((40, 6), 0.1)}, False),  # per-cell noise: the plain passes
        ({"noise": 0.1, "args": {"alpha": torch.linspace(0.5, 1.5, 240).reshape(40, 6)}}, False),
    ],
    ids=["scalar", "per-gene", "ode", "signed", "clamp", "per-cell", "per-cell-args"],
)
def test_fused_sigmoid_step_equals_the_plain_passes(monkeypatch, kw, fused, dtype):
    # the blocked kernel updates a sigmoid block in one compiled pass after its product
    # (production, decay, Euler update, noise look-up, floor); it must give the paths of the
    # plain passes up to rounding, with the same noise
    import gclandscape.engine._noise as noise_mod
    import gclandscape.engine._step_loops as loops

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 50)  # 40 cells × 6 genes → 5 blocks
    monkeypatch.setattr(loops, "FUSE_MIN_UPDATES", 0)  # fused however short the run
    calls = []
    step = loops._SigmoidFusion.step
    monkeypatch.setattr(
        loops._SigmoidFusion, "step", lambda self, *a: calls.append(1) or step(self, *a)
    )
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1), dtype=dtype)
    run = {"t_max": 2.0, "dt": 0.05, "seed": 5, **kw}
    one = integrate(_sigmoid_case(), x0, num_threads=2, **run).x
    assert len(calls) == (40 * 5 if fused else 0)  # 40 steps × 5 blocks
    monkeypatch.setattr(loops._SigmoidFusion, "make", classmethod(lambda cls, r, x: None))
    plain = integrate(_sigmoid_case(), x0, num_threads=2, **run).x
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(one, plain, atol=tol, rtol=0)
    assert float((one - x0).abs().max()) > 0.05  # the cells moved
    if kw.get("nonnegative", True):
        assert float(one.min()) >= 0.0
    else:
        assert float(one.min()) < 0.0  # no floor: the noise takes some genes below 0


def test_short_runs_skip_the_fusion_until_its_kernels_are_loaded(monkeypatch):
    # loading numba costs ~1 s once per process: a short run in a fresh process keeps the
    # plain passes; once the kernels are loaded every eligible run fuses
    import gclandscape.engine._noise as noise_mod
    import gclandscape.engine._step_loops as loops

    monkeypatch.setattr(noise_mod, "BLOCK_VALUES", 50)
    x0 = torch.rand(40, 6, generator=torch.Generator().manual_seed(1))
    run = {"t_max": 2.0, "dt": 0.05, "noise": 0.1}  # 40 steps × 240 values = 9,600 updates
    made = []
    make = loops._SigmoidFusion.make.__func__
    monkeypatch.setattr(
        loops._SigmoidFusion, "make",
        classmethod(lambda cls, r, x: made.append(make(cls, r, x)) or made[-1]),
    )  # fmt: skip
    monkeypatch.setattr(loops, "FUSE_MIN_UPDATES", 9_601)
    loaded = loops._fused_kernels.cache_info().currsize > 0
    integrate(_sigmoid_case(), x0, **run)
    assert (made[-1] is not None) == loaded
    monkeypatch.setattr(loops, "FUSE_MIN_UPDATES", 9_600)
    integrate(_sigmoid_case(), x0, **run)
    assert made[-1] is not None  # long enough: fused (and now loaded)
    monkeypatch.setattr(loops, "FUSE_MIN_UPDATES", 10**9)
    integrate(_sigmoid_case(), x0, **run)
    assert made[-1] is not None  # short, but the kernels are loaded


def test_a_heavy_field_gets_the_threads_even_in_a_small_batch():
    """1 thread for a small batch of a cheap field, torch's threads when a step is heavy by
    the field's flops_per_value (a 200-gene GRNModel states 2 * H * G)."""
    from gclandscape.engine import GRNModel
    from gclandscape.engine._integrate import HEAVY_STEP_FLOPS

    seen = []

    class Recorder(torch.nn.Module):
        def __init__(self, flops: int):
            super().__init__()
            self.flops_per_value = flops

        def forward(self, t, x, args=None):
            seen.append(torch.get_num_threads())
            return -x

    x0 = np.ones((100, 20), dtype=np.float32)  # 2,000 values: a small batch
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        integrate(Recorder(0), x0, t_max=0.2, dt=0.1)
        cheap = set(seen)
        seen.clear()
        integrate(Recorder(HEAVY_STEP_FLOPS // 2000 + 1), x0, t_max=0.2, dt=0.1)
        heavy = set(seen)
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert cheap == {1}
    assert heavy == {2}
    assert GRNModel(200, hidden=6).flops_per_value == 2400
