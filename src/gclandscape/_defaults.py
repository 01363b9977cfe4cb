"""Default time steps, horizons and noise shared by the engine and the layers above it.

One home for each number, so a change of a default reaches every function that uses it
(the genome's development, the transition paths, the fixed-point search, the landscape).
A leaf module: it imports nothing, so any layer may read it.
"""

from __future__ import annotations

#: Euler step of development (stochastic simulation of cells) and of transition-path descents.
DT = 0.05
#: Default noise amplitude of a genome (per gene; additive, ``dx = f dt + noise dW``).
NOISE = 0.05
#: Euler step of deterministic relaxation to fixed points (fixed-point search, basins).
RELAX_DT = 0.1
#: Longest deterministic relaxation: a cell to its attractor, a saddle's descent.
T_RELAX = 200.0
#: Root cells of development: the earliest this share of the root group (at least MIN_EARLY
#: cells). The earliest cells suit the true field (a knockout applied after commitment has
#: begun does not undo it), but a fitted field is least accurate at the very first states; 75 %
#: was the best compromise on the knockout benchmark (figures in benchmarks/README.md).
EARLY_FRACTION = 0.75
