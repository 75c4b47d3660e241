"""Main effects and two-way interactions of a 2^k factorial design from paired seeds.

Every cell of the design is trained with the same seeds, so each seed r yields its own
estimate of every effect from that seed's cell values (common random numbers cancel in the
contrast); the effect is the mean of the per-seed estimates, with the t interval and
sign-flip permutation p-value of :mod:`ablate.inference.onesample` over seeds, and the
p-values adjusted across all the effects of the table (main effects and interactions
together) like the rows of an ablation table.

The usual 2^k effects, on one seed's values y(cell):

- main effect of A = mean of the cells with A on - mean of the cells with A off;
- interaction of A and B = ((YY - YN) - (NY - NN)) / 2 on the four means of the cells at each
  level of A and B (pooled over the other components): half the change of B's effect when A
  is switched on, symmetric in A and B.

Both are ``sum_cell sign(cell) * y(cell) / 2^(k-1)``, sign the product of ±1 of the
components involved. Only seeds with a value in every cell are used; the rest are counted.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ablate.inference import onesample
from ablate.inference.estimate import Estimate, fields_of
from ablate.inference.multiple import Correction, adjust
from ablate.inference.onesample import LEVEL

Cell = tuple[bool, ...]


@dataclass(frozen=True, kw_only=True)
class Effect(Estimate):
    """One factorial effect: the :class:`~ablate.inference.estimate.Estimate` of its per-seed
    contrasts.

    - ``name``: ``A`` for a main effect, ``A x B`` for an interaction; ``components``: those
      components;
    - ``n``: seeds with a value in every cell; ``dropped``: seeds left out (missing or NaN in
      some cell);
    - ``delta`` (also :attr:`estimate`): the effect, the mean over seeds of the per-seed
      effect; the t interval and p-values are over seeds, ``p`` the sign-flip permutation
      p-value (exact for n <= 12);
    - ``p_adj``: ``p`` adjusted across all effects of the table; ``method``: the test.
    """

    name: str
    components: tuple[str, ...]
    dropped: int
    p_adj: float
    method: str

    @property
    def estimate(self) -> float:
        """The effect (``delta``)."""
        return self.delta


def factorial_effects(
    cells: Mapping[Cell, Mapping[int, float]],
    components: Sequence[str],
    correction: Correction = "holm",
    level: float = LEVEL,
) -> list[Effect]:
    """Main effects (component order) then two-way interactions (pairs in component order) of
    the design whose ``cells`` map a tuple of on/off flags, one per component, to that
    configuration's values by seed."""
    k = len(components)
    expected = set(itertools.product((False, True), repeat=k))
    if set(cells) != expected:
        raise ValueError(f"a 2^{k} factorial needs all {2 ** k} cells of {list(components)}")
    order = sorted(expected)
    finite = [{s: v for s, v in cells[c].items() if v is not None and not math.isnan(v)}
              for c in order]
    seeds = sorted(set.intersection(*(set(f) for f in finite)))
    dropped = len(set().union(*(set(cells[c]) for c in order))) - len(seeds)
    y = np.array([[f[s] for s in seeds] for f in finite]).reshape(len(order), len(seeds))
    flags = np.array(order, dtype=bool).reshape(len(order), k)
    subsets = [(i,) for i in range(k)] + list(itertools.combinations(range(k), 2))
    rows = []
    for subset in subsets:
        signs = np.prod(np.where(flags[:, list(subset)], 1.0, -1.0), axis=1)
        per_seed = signs @ y / 2 ** (k - 1)
        rows.append((subset, onesample.summarize(per_seed, level)))
    p_adj = adjust([sample.p for _, sample in rows], correction)
    return [
        Effect(**fields_of(Estimate, s), name=" x ".join(components[i] for i in subset),
               components=tuple(components[i] for i in subset), dropped=dropped,
               p_adj=float(pa), method=f"per-seed contrast, t interval, {s.p_method}, "
               f"{correction} over {len(rows)} effects")
        for (subset, s), pa in zip(rows, p_adj, strict=True)
    ]
