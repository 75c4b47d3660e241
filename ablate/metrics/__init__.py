"""Metrics from confusion counts: the one accumulator and the scores derived from it.

- :mod:`~ablate.metrics.counts.counts`: the confusion-count accumulator (torch; one bincount per
  batch, counts over whole splits) and predictions from logits;
- :mod:`~ablate.metrics.counts.scores`: IoU, F1, precision, ... from counts (numpy only), the one
  place a score is computed.
"""
