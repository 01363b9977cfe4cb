"""Edge confidence of a fitted GRN: selection frequency over bootstrap resamples of cells."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import GclError
from ._device import resolve_device
from ._grn import GRNModel
from ._grn_fit import MIN_CELLS, _check_inputs, fit
from ._grn_penalties import adaptive_penalty_weights

#: Epochs per warm-started refit. On the scale benchmark's drift fit (200 genes × 5,000
#: cells, five resamples) 15 epochs gave confidences that correlate with those of 40 epochs
#: (the earlier default) at r = 0.84 over the allowed edges, more than 40 epochs with another
#: seed do (r = 0.80), with the same mean on the fitted edges (0.485 vs 0.487), at 3/8 of
#: the cost; 10 epochs fell to r = 0.67 and twice the spurious edges (benchmarks/README.md,
#: "Scale").
REFIT_EPOCHS = 15


def bootstrap_confidence(
    x: Any,
    dxdt: Any = None,
    *,
    n_boot: int = 8,
    model: GRNModel | None = None,
    l1: float | None = None,
    max_epochs: int | None = None,
    pilot: Any = None,
    seed: int = 0,
    **fit_kwargs: Any,
) -> np.ndarray:
    """Per-edge selection frequency over bootstrap resamples of the cells.

    Each resample draws ``n_cells`` cells with replacement (expressed as integer cell weights,
    so duplicated cells are not split between training and held-out sets), refits with the
    same ``l1``, warm-started from ``model`` and for few epochs, and records which edges are
    non-zero. Warm starts make the refits fast; they measure the stability of the fitted
    network under resampling rather than of fits from scratch. With ``pilot``, each resample
    also recomputes the adaptive connection cost (:func:`adaptive_penalty_weights`) from its
    own cells, so the frequencies include the pilot's sampling variability.

    Parameters
    ----------
    x, dxdt
        As for :func:`fit`.
    n_boot
        Number of bootstrap refits.
    model
        Fitted model to warm-start from; fitted here with ``fit_kwargs`` when ``None``.
    l1
        Connection cost; default: the one ``model`` was fitted with (``model.l1``), so the
        frequencies refer to the same sparsity level.
    max_epochs
        Epochs per refit (default :data:`REFIT_EPOCHS`, 15).
    pilot
        ``(n_cells, n_genes)`` expression the adaptive penalty weights are computed from (as
        passed to :func:`adaptive_penalty_weights`); replaces ``penalty_weights`` in
        ``fit_kwargs`` by each resample's own weights. ``None``: the weights in
        ``fit_kwargs`` (if any) are used for every resample.
    seed
        Seed of the resampling and refits.
    **fit_kwargs
        Passed to :func:`fit` (``mode``, ``hidden``, ``mask``, ``prior``, ...).

    Returns
    -------
    ``(G, G)`` target × source array of frequencies in [0, 1] (the ``confidence`` column of
    :func:`~gclandscape.engine._grn.edges`).

    Examples
    --------
    >>> import torch
    >>> from gclandscape.engine._grn_bootstrap import bootstrap_confidence
    >>> x = torch.rand(100, 3)
    >>> dxdt = torch.stack([1 - x[:, 0], x[:, 0] - x[:, 1], x[:, 1] - x[:, 2]], 1)
    >>> bootstrap_confidence(x, dxdt, n_boot=2, hidden=2, max_epochs=3).shape
    (3, 3)
    """
    if int(n_boot) != n_boot or n_boot < 1:
        raise GclError(f"n_boot must be a positive integer, got {n_boot!r}.")
    mode = fit_kwargs.get("mode", "drift")
    device = resolve_device(fit_kwargs.get("device", "cpu"))
    xt, yt, wt = _check_inputs(x, dxdt, mode, fit_kwargs.get("weights"), device)
    n = xt.shape[0]
    if model is None:
        model, _ = fit(x, dxdt, l1=l1, seed=seed, **fit_kwargs)
    if l1 is None:
        l1 = model.l1
    if l1 is None:
        raise GclError("model has no fitted l1 (built by hand?); pass l1= explicitly.")
    kwargs = {k: v for k, v in fit_kwargs.items() if k not in ("weights", "max_epochs")}
    kwargs["hidden"] = model.hidden
    if pilot is not None:
        pilot = np.asarray(pilot, dtype=np.float64)
        if pilot.ndim != 2 or pilot.shape != (n, model.n_genes):
            raise GclError(
                f"pilot must be (n_cells, n_genes) = ({n}, {model.n_genes}) like x; "
                f"got shape {pilot.shape}."
            )
    epochs = REFIT_EPOCHS if max_epochs is None else int(max_epochs)
    gen = np.random.default_rng(seed)
    counts = np.zeros((model.n_genes, model.n_genes))
    y_in = None if mode == "steady_state" else yt.cpu().numpy()
    for b in range(int(n_boot)):
        idx = gen.integers(0, n, n)
        w_b = np.bincount(idx, minlength=n).astype(np.float32) * wt.cpu().numpy()
        if (w_b > 0).sum() < MIN_CELLS:
            raise GclError(f"bootstrap resample {b} has fewer than {MIN_CELLS} distinct cells.")
        keep = w_b > 0
        if pilot is not None:
            kwargs["penalty_weights"] = adaptive_penalty_weights(pilot[idx])
        m_b, _ = fit(
            xt.cpu().numpy()[keep],
            None if y_in is None else y_in[keep],
            l1=float(l1),
            weights=w_b[keep],
            max_epochs=epochs,
            seed=seed + 1000 + b,
            init=model,
            **kwargs,
        )
        counts += m_b.adjacency().numpy()
    return counts / int(n_boot)
