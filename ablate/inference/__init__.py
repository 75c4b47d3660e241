"""Statistical inference for ablation tables: is a configuration better than its reference,
by how much, and how sure are we (numpy and scipy only; no tracking, no torch).

- :mod:`~ablate.inference.estimate`: the fields every estimate over seeds carries (mean
  difference, intervals, p-values);
- :mod:`~ablate.inference.paired`: one configuration vs its reference over shared seeds;
- :mod:`~ablate.inference.onesample`: intervals and permutation p-value of per-seed differences;
- :mod:`~ablate.inference.multiple`: p-values adjusted across a table's rows (Holm, BH);
- :mod:`~ablate.inference.decision`: better / worse / identical / equivalent / undecided;
- :mod:`~ablate.inference.power`: power, minimum detectable effect, seeds needed;
- :mod:`~ablate.inference.sequential`: adaptive repeats with a group-sequential test;
- :mod:`~ablate.inference.effects`: factorial main effects and interactions over seeds;
- :mod:`~ablate.inference.images`: one trained model's score over resampled test images, and
  two models compared on the same images (from per-image confusion counts).
"""

from ablate.inference.decision import Decision, Outcome, Verdict, decide, tost_p
from ablate.inference.effects import Effect, factorial_effects
from ablate.inference.estimate import Estimate
from ablate.inference.multiple import Correction, adjust
from ablate.inference.paired import Comparison, compare
from ablate.inference.power import mde, seeds_needed, t_power
from ablate.inference.sequential import (
    Look,
    SequentialPlan,
    SequentialState,
    final_decision,
    look,
)

__all__ = [
    "Comparison", "Correction", "Decision", "Effect", "Estimate", "Look", "Outcome",
    "SequentialPlan",
    "SequentialState", "Verdict", "adjust", "compare", "decide", "factorial_effects",
    "final_decision", "look", "mde", "seeds_needed", "t_power", "tost_p",
]
