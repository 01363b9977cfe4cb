"""Which torch device to run on: the one rule for ``None``, ``"auto"`` and explicit devices."""

from __future__ import annotations

from typing import Any

import torch

from .._errors import GclError

__all__ = ["resolve_device"]


def resolve_device(device: str | torch.device | None, like: Any = None) -> torch.device:
    """The torch device to run on.

    Parameters
    ----------
    device
        ``None``: the device of ``like`` (CPU for arrays and when ``like`` is ``None``);
        ``"auto"``: CUDA when available, else CPU; otherwise a torch device or its name
        (``"cpu"``, ``"cuda"``, ``"cuda:1"``).
    like
        A tensor whose device ``None`` stands for.

    Returns
    -------
    The :class:`torch.device`.

    Raises
    ------
    GclError
        When ``device`` names no torch device, or CUDA is requested but not available.

    Examples
    --------
    >>> resolve_device("cpu").type
    'cpu'
    >>> resolve_device(None, like=torch.zeros(1)).type
    'cpu'
    """
    if device is None:
        return like.device if torch.is_tensor(like) else torch.device("cpu")
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise GclError(f"device must be 'cpu', 'cuda', 'auto' or a torch device: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise GclError(
            "device='cuda' was requested but no CUDA GPU is available; use 'cpu' or 'auto'."
        )
    return dev
