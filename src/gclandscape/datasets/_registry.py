"""A table of the built-in datasets and loading one by name (used by ``gclandscape datasets``)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._errors import GclError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from anndata import AnnData


@dataclass(frozen=True)
class _Entry:
    name: str
    module: str
    description: str
    n_obs: int | str
    n_vars: int | str
    needs_download: bool
    citation: str


_ENTRIES = (
    _Entry(
        "myeloid",
        "._myeloid",
        "Krumsiek 2011 myeloid network simulated as UMI counts, with truth (default)",
        3000,
        311,  # 11 regulators + 300 downstream targets at the defaults
        False,
        "Krumsiek et al. 2011, PLoS ONE 6:e22649",
    ),
    _Entry(
        "simulate",
        "._simulate",
        "any Boolean-rule or signed-edge network as counts + truth (Python only)",
        "varies",
        "varies",
        False,
        "gclandscape",
    ),
    _Entry(
        "krumsiek11",
        "._builtin",
        "Krumsiek 2011 myeloid network simulated by scanpy (continuous, 4 fates)",
        640,
        11,
        False,
        "Krumsiek et al. 2011, PLoS ONE 6:e22649 (data from scanpy)",
    ),
    _Entry(
        "toggleswitch",
        "._builtin",
        "two-gene toggle switch simulated by scanpy (continuous, 2 fates)",
        200,
        2,
        False,
        "Gardner et al. 2000, Nature 403:339 (data from scanpy)",
    ),
    _Entry(
        "paul15",
        "._paul15",
        "mouse myeloid progenitors, MARS-seq UMI counts, 10 cell types",
        2730,
        3451,
        True,
        "Paul et al. 2015, Cell 163:1663",
    ),
)
_BY_NAME = {e.name: e for e in _ENTRIES}


def available() -> pd.DataFrame:
    """The built-in datasets as a table.

    Returns
    -------
    pandas.DataFrame
        One row per dataset with columns ``name``, ``description``, ``n_obs`` and ``n_vars``
        (numbers for fixed datasets, ``"varies"`` where they depend on arguments; ``myeloid``
        gives its shape at the default arguments), ``needs_download`` (``True`` when the data come from
        the internet on first use) and ``citation``.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> table = gcl.datasets.available()
    >>> "myeloid" in set(table["name"])
    True
    """
    import pandas as pd

    rows = [
        {
            "name": e.name,
            "description": e.description,
            "n_obs": e.n_obs,
            "n_vars": e.n_vars,
            "needs_download": e.needs_download,
            "citation": e.citation,
        }
        for e in _ENTRIES
    ]
    return pd.DataFrame(rows, columns=list(rows[0]))


def names() -> list[str]:
    """Names accepted by :func:`load`."""
    return [e.name for e in _ENTRIES]


def load(name: str, **kwargs: Any) -> AnnData:
    """Load a built-in dataset by name.

    Parameters
    ----------
    name
        One of the names in :func:`available` (``"myeloid"``, ``"simulate"``,
        ``"krumsiek11"``, ``"toggleswitch"``, ``"paul15"``); case does not matter.
    **kwargs
        Passed on to the dataset's function, e.g. ``seed=1`` for ``myeloid`` or
        ``path="paul15.h5"`` for ``paul15``.

    Returns
    -------
    AnnData
        What ``gcl.datasets.<name>(**kwargs)`` returns.

    Raises
    ------
    GclError
        ``name`` is not a built-in dataset; the message lists the names.

    Examples
    --------
    >>> import gclandscape as gcl
    >>> gcl.datasets.load("toggleswitch").shape
    (200, 2)
    """
    if not isinstance(name, str) or name.strip().lower() not in _BY_NAME:
        raise GclError(
            f"Unknown dataset {name!r}. Built-in datasets: {', '.join(names())} "
            "(see gcl.datasets.available())."
        )
    entry = _BY_NAME[name.strip().lower()]
    module = importlib.import_module(entry.module, __package__)
    return getattr(module, entry.name)(**kwargs)
