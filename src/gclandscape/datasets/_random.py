"""Random Boolean gene-regulatory networks that branch into at least two fates.

The structure is drawn with numpy's :class:`~numpy.random.Generator` (the same seed gives the
same rules on any machine); the fate check then runs the network through the engine exactly as
:func:`~gclandscape.datasets.simulate` does with its defaults, and a network that does not
branch is drawn again from the next sub-seed.
"""

from __future__ import annotations

import numpy as np

from .._errors import GclError
from ._expression import And, Expr, Not, Or, Var
from ._network import BooleanNetwork

__all__ = ["random_network"]

# Sub-seeds tried before giving up. Measured on seeds 0-19 with (n_genes, max_inputs) = (6, 3),
# (25, 1), (25, 2), (25, 3), (50, 3): 99 of 100 passed on the first draw, one on the second,
# so this bound is only reached by a structural problem.
_MAX_TRIES = 20
# Trajectories of the fate check. 100 keep the check well under a second at 25 genes.
_N_CHECK = 100
# Each of two fates must be reached by >= 15 % of the check's trajectories: three times the
# 5 % promised, so a trajectory or two flipping on another CPU's rounding, or another seed's
# noise in simulate, can hardly turn an accepted network into one with a single fate.
_MARGIN = 0.15
# Probability that a downstream gene's input is negated, and that a downstream gene with room
# for one more input also activates itself (a memory gene: once on, it stays on).
_P_NOT = 0.35
_P_SELF = 0.15


def random_network(n_genes: int, *, seed: int = 0, max_inputs: int = 3) -> BooleanNetwork:
    """A random Boolean gene-regulatory network that branches into at least two fates.

    The network has a core of *fate* genes and downstream genes wired by feed-forward logic:

    - a top decision: a toggle switch of two mutually repressing genes or (one draw in three,
      when ``max_inputs >= 2`` and ``n_genes >= 5``) a ring of three genes each repressed by
      the other two. With ``max_inputs >= 3`` the toggle's genes also activate themselves and
      are primed by a *progenitor* gene ``p = not (a or b)`` that is on at the start and
      switched off by whichever fate gene wins (``a = (a or p) and not b``);
    - below it (when at least four genes are left), one or two toggle switches each gated by
      a fate gene ``f`` of the top decision (``c = f and not d``), so fates form a lineage tree
      of at most four leaves (with ``max_inputs == 1``: one ungated switch ``c = not d``);
    - every other gene in a random order (a DAG, so no extra oscillator appears), with 1 to
      ``max_inputs`` inputs drawn from the genes before it, combined with random ``and`` /
      ``or`` and a random ``not`` per input; some of them also activate themselves (memory).

    Every gene has at most ``max_inputs`` distinct inputs. The progenitor start (the
    progenitor gene on, all other genes off) is stored in :attr:`BooleanNetwork.initial`, so
    :func:`~gclandscape.datasets.simulate` starts from it by default. A drawn network is kept
    only when, simulated like :func:`~gclandscape.datasets.simulate` does with its defaults
    (100 trajectories), at least two distinct settled end states are each reached by at least
    15 % of the trajectories (three times the 5 % promised, so the verdict does not hinge on
    rounding or on one seed's noise); otherwise the next of at most 20 sub-seeds is drawn.

    Parameters
    ----------
    n_genes
        Number of genes (at least 4), named ``g00``, ``g01``, ... (zero-padded).
    seed
        Seed of the structure (a non-negative integer); the same seed gives the same network.
    max_inputs
        Most inputs per gene (at least 1). The self-activating, progenitor-primed top toggle
        switch needs 3; with 1 the core is independent toggle switches ``a = not b``.

    Returns
    -------
    :class:`~gclandscape.datasets._network.BooleanNetwork` named ``random<n_genes>-s<seed>``,
    with its progenitor start in ``initial`` (a level for every gene).

    Raises
    ------
    GclError
        ``n_genes`` below 4, ``max_inputs`` below 1, a negative seed, or no network drawn
        from ``seed`` reached two fates (the message says what to change).

    Examples
    --------
    >>> import gclandscape as gcl
    >>> net = gcl.datasets.random_network(8, seed=1)
    >>> net.genes[:3]
    ('g00', 'g01', 'g02')
    >>> ad = gcl.datasets.simulate(net, n_cells=200, n_targets=0, knockouts=False)
    >>> fractions = ad.uns["gcl_truth"]["wt_fate_fractions"]
    >>> sum(v >= 0.05 for k, v in fractions.items() if k != "unsettled") >= 2
    True
    """
    from ._simulate import wild_type_ends

    if isinstance(n_genes, bool) or not isinstance(n_genes, int | np.integer) or n_genes < 4:
        raise GclError(
            f"n_genes must be an integer >= 4 (a toggle switch of fate genes plus the genes "
            f"around it); got {n_genes!r}. Pass n_genes=4 or more."
        )
    if (
        isinstance(max_inputs, bool)
        or not isinstance(max_inputs, int | np.integer)
        or max_inputs < 1
    ):
        raise GclError(
            f"max_inputs must be a positive integer (the most inputs of one gene); got "
            f"{max_inputs!r}. Pass max_inputs=1 or more (3, the default, allows self-activation)."
        )
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise GclError(f"seed must be a non-negative integer; got {seed!r}.")
    n_genes, max_inputs, seed = int(n_genes), int(max_inputs), int(seed)
    width = max(2, len(str(n_genes - 1)))
    names = [f"g{i:0{width}d}" for i in range(n_genes)]
    for attempt in range(_MAX_TRIES):
        rng = np.random.default_rng([seed, attempt])
        net = _draw(names, max_inputs, rng, name=f"random{n_genes}-s{seed}")
        settled, end = wild_type_ends(
            net, n_trajectories=_N_CHECK, seed=int(rng.integers(2**31 - 1))
        )
        _, counts = np.unique(end[settled], axis=0, return_counts=True)
        if (counts >= _MARGIN * _N_CHECK).sum() >= 2:
            return net
    raise GclError(
        f"none of the {_MAX_TRIES} networks drawn from seed {seed} with n_genes={n_genes} and "
        f"max_inputs={max_inputs} reached two fates (each by >= {_MARGIN:.0%} of trajectories "
        "under simulate's defaults); pass another seed, more genes (n_genes) or a larger "
        "max_inputs."
    )


def _any(names: list[str]) -> Expr:
    return Var(names[0]) if len(names) == 1 else Or(tuple(Var(n) for n in names))


def _join(op: type[And] | type[Or], a: Expr, b: Expr) -> Expr:
    """``a op b`` with nested terms of the same operator flattened (as the parser does)."""
    args: list[Expr] = []
    for e in (a, b):
        args.extend(e.args if isinstance(e, op) else (e,))
    return op(tuple(args))


def _toggle(me: str, rivals: list[str], activator: str | None, self_act: bool) -> Expr:
    """A fate gene repressed by ``rivals``: ``(me or activator) and not rivals`` with
    self-activation, ``activator and not rivals`` without, ``not rivals`` without activator."""
    off = Not(_any(rivals))
    if self_act:
        on = _any([me] if activator is None else [me, activator])
        return And((on, off))
    return off if activator is None else And((Var(activator), off))


def _draw(
    names: list[str], max_inputs: int, rng: np.random.Generator, *, name: str
) -> BooleanNetwork:
    """One network: the roles (progenitor, fate genes, downstream) go to shuffled names."""
    n = len(names)
    pool = [names[i] for i in rng.permutation(n)]
    rules: dict[str, Expr] = {}
    initial = dict.fromkeys(names, 0.0)
    self_act = max_inputs >= 3

    if max_inputs >= 2 and n >= 5 and rng.random() < 1 / 3:
        # winner-take-all ring: every member repressed by the other two, all start off
        top = [pool.pop() for _ in range(3)]
        for i, g in enumerate(top):
            rules[g] = _toggle(g, [top[(i + 1) % 3], top[(i + 2) % 3]], None, False)
    else:
        top = [pool.pop(), pool.pop()]
        prog = pool.pop() if self_act else None
        for g, rival in ((top[0], top[1]), (top[1], top[0])):
            rules[g] = _toggle(g, [rival], prog, self_act)
        if prog is not None:
            rules[prog] = Not(_any(top))
            initial[prog] = 1.0

    # gated toggle switches below the top decision (at least one when four genes remain),
    # at most four leaf fates in all: more split the trajectories into fates too small to see.
    # With max_inputs == 1 a switch cannot be gated and multiplies the fates instead.
    max_sub = min(1 if len(top) == 3 or max_inputs == 1 else 2, len(pool) // 4)
    n_sub = int(rng.integers(1, max_sub + 1)) if max_sub else 0
    for gate in rng.choice(top, size=n_sub, replace=False).tolist():
        c, d = pool.pop(), pool.pop()
        # no self-activation here: a self-activating sub-switch latched on while its gate was
        # still undecided and split each fate into several (measured at 25 genes)
        act = gate if max_inputs >= 2 else None
        rules[c] = _toggle(c, [d], act, False)
        rules[d] = _toggle(d, [c], act, False)

    # downstream genes in DAG order: inputs only from genes defined before them
    for g in pool:
        upstream = list(rules)
        k = int(rng.integers(1, min(max_inputs, len(upstream)) + 1))
        srcs = rng.choice(len(upstream), size=k, replace=False)
        expr: Expr | None = None
        for s in srcs.tolist():
            lit: Expr = Var(upstream[s])
            if rng.random() < _P_NOT:
                lit = Not(lit)
            if expr is None:
                expr = lit
            else:
                expr = _join(And if rng.random() < 0.5 else Or, expr, lit)
        if k < max_inputs and rng.random() < _P_SELF:
            expr = _join(Or, expr, Var(g))
        rules[g] = expr
    return BooleanNetwork(tuple(names), {g: rules[g] for g in names}, initial, None, name)
