"""The words and numbers a network file may use for an edge's sign, read in one place.

BEELINE reference networks, Boolean-rule edge lists, curated priors (CollecTRI, DoRothEA) and
a user's own prior all name activation and repression; one vocabulary keeps a file that one
reader accepts from failing in another. A leaf module: it imports nothing of ours.
"""

from __future__ import annotations

import math
from typing import Any

#: Sign words (lower case) as BEELINE, curated databases and edge lists write them.
SIGN_WORDS = {
    "+": 1,
    "+1": 1,
    "activation": 1,
    "activator": 1,
    "activates": 1,
    "activating": 1,
    "positive": 1,
    "-": -1,
    "repression": -1,
    "repressor": -1,
    "represses": -1,
    "repressing": -1,
    "inhibition": -1,
    "inhibitor": -1,
    "negative": -1,
}


def parse_sign(value: Any) -> int | None:
    """An edge's sign, +1, -1 or 0, from a word of :data:`SIGN_WORDS` (any case) or a number.

    Parameters
    ----------
    value
        A sign word, a number, or a number written as text (``"1"``, ``"-0.7"``).

    Returns
    -------
    ``+1`` or ``-1``; ``0`` for a zero; ``None`` when ``value`` is no sign (an unknown word,
    an empty or missing value, a non-finite number). Callers decide what 0 and ``None`` mean.

    Examples
    --------
    >>> [parse_sign(v) for v in ["+", " Repression", "-1", -0.7, 0, "maybe", float("nan")]]
    [1, -1, -1, -1, 0, None, None]
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str):
        word = value.strip().lower()
        if word in SIGN_WORDS:
            return SIGN_WORDS[word]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(number):
        return None
    return (number > 0) - (number < 0)
