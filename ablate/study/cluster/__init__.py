"""Studies on a Slurm cluster: ``ablate study submit`` puts the workers in one job array.

``options``: the submit options, checked, as sbatch options. ``submit``: the array through
submitit (Slurm checks the request first; each task runs ``ablate study run NAME``
in-process, :mod:`ablate.cli.slurm_task`). ``job``: inside a job, requeueing it after
Slurm's warning unless the study is done. ``watch``: waiting for the array (``--wait``).
The job's ids, time left and why Slurm stopped a worker: :mod:`ablate.runs.slurm`.
"""
