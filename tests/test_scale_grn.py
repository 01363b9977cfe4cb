"""The GRN model's fast inference form (issue 19 §4, "Scale"): the gene-major production used
when no gradient is wanted must equal the plain form it replaces, follow every edit of the
parameters, and leave training (autograd) and small genomes on the plain form."""

from __future__ import annotations

import torch

from gclandscape.engine._grn import FAST_MIN_GENES, GRNModel


def _model(n_genes: int, seed: int = 0, density: float = 0.2) -> GRNModel:
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(n_genes, n_genes, generator=gen) < density
    model = GRNModel(
        n_genes,
        hidden=4,
        mask=mask,
        x_loc=torch.rand(n_genes, generator=gen),
        x_scale=0.5 + torch.rand(n_genes, generator=gen),
        generator=gen,
    )
    with torch.no_grad():  # output weights and biases away from their initial values
        model.d.copy_(torch.randn(n_genes, generator=gen))
        model.log_alpha.copy_(torch.randn(n_genes, generator=gen) * 0.3)
    return model


def _plain(model: GRNModel, x: torch.Tensor) -> torch.Tensor:
    """The plain (N, G, H) form of the vector field, as the model computed it before."""
    _, s = model._hidden(x)
    return model.alpha * torch.sigmoid(s) - model.gamma * x


def test_fast_form_equals_the_plain_form_on_a_random_masked_model():
    model = _model(FAST_MIN_GENES + 16)
    x = torch.rand(300, model.n_genes, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fast = model(0.0, x)
        plain = _plain(model, x)
        # a gene-major (transposed) state, as the integrator passes it
        fast_t = model(0.0, x.T.contiguous().T)
    assert getattr(model, "_fold", None) is not None  # the fast form did run
    assert fast.shape == (300, model.n_genes)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_t, plain, atol=1e-5, rtol=1e-5)
    # in double precision the two forms agree to double rounding
    model64, x64 = model.double(), x.double()
    with torch.no_grad():
        torch.testing.assert_close(model64(0.0, x64), _plain(model64, x64), atol=1e-12, rtol=1e-12)


def test_fast_form_follows_in_place_edits_of_the_parameters():
    model = _model(FAST_MIN_GENES, seed=2)
    x = torch.rand(50, model.n_genes, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        before = model(0.0, x)
        model.V[:, :, 0] = 0.0  # gene 0 regulates nothing any more
        model.c.add_(0.5)
        model.x_scale.mul_(2.0)
        after = model(0.0, x)
        plain = _plain(model, x)
    assert float((after - before).abs().max()) > 1e-2  # the edits change the field
    torch.testing.assert_close(after, plain, atol=1e-5, rtol=1e-5)
    # an edited copy (a knockout's genome edits V the same way) agrees too
    edited = model.scaled(edges=[(1, 2, 0.0)], production=[(3, 0.5)])
    with torch.no_grad():
        torch.testing.assert_close(edited(0.0, x), _plain(edited, x), atol=1e-5, rtol=1e-5)


def test_training_and_small_genomes_keep_the_plain_form():
    model = _model(FAST_MIN_GENES + 8, seed=4)
    x = torch.rand(20, model.n_genes, generator=torch.Generator().manual_seed(5))
    out = model(0.0, x)  # grad mode with trainable weights: autograd must follow it
    assert out.grad_fn is not None
    out.square().sum().backward()
    assert model.V.grad is not None
    assert float(model.V.grad.abs().sum()) > 0
    assert getattr(model, "_fold", None) is None
    # any trainable parameter keeps the plain form, not only V
    model.V.requires_grad_(False)
    model.zero_grad()
    model(0.0, x).sum().backward()
    assert float(model.c.grad.abs().sum()) > 0
    assert getattr(model, "_fold", None) is None
    small = _model(FAST_MIN_GENES - 1, seed=6)
    with torch.no_grad():
        y = small(0.0, torch.rand(10, small.n_genes))
    assert getattr(small, "_fold", None) is None
    assert y.shape == (10, small.n_genes)
