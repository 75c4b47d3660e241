"""Studies on a Slurm cluster: ``ablate study submit`` puts the workers in one job array.

``options``: the submit options, checked, as sbatch options. ``submit``: the array through
submitit (Slurm checks the request first). ``worker``: one array task, ``ablate study run
NAME`` in-process. ``job``: inside a job: its ids, why Slurm stopped it, requeueing it.
``watch``: waiting for the array (``--wait``).
"""
