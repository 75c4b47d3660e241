"""What wraps one tracked run: training into MLflow, what applies on the device, the
environment it ran in, the checks before it starts, and reading it back (diff, rerun,
predict).

- :mod:`~ablate.runs.tracked`: :func:`train_tracked`, one configuration trained into a run;
- :mod:`~ablate.runs.applied`: CUDA-only settings switched off off CUDA, and tagged;
- :mod:`~ablate.runs.environment`: versions, device, git state;
- :mod:`~ablate.runs.preflight`: everything a run would fail on, before any store is touched;
- :mod:`~ablate.runs.diff`, :mod:`~ablate.runs.rerun`, :mod:`~ablate.runs.predict`.
"""
