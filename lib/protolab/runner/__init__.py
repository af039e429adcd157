"""The platform: command line, notebook runs (locally or on SLURM), parameters and profiles, report, grid cache.

One module per concern: :mod:`~protolab.runner.cli` (the ``protolab`` command), :mod:`~protolab.runner.execute`
(planning and the run loop), the executors :mod:`~protolab.runner.local` and :mod:`~protolab.runner.slurm`,
:mod:`~protolab.runner.processes` (child processes and stopping signals), :mod:`~protolab.runner.environment`
(a notebook process's variables), :mod:`~protolab.runner.progress`, :mod:`~protolab.runner.publish`,
:mod:`~protolab.runner.report`, :mod:`~protolab.runner.parameters`, :mod:`~protolab.runner.project`,
:mod:`~protolab.runner.allocator` and :mod:`~protolab.runner.grid`. Submodules are imported by name; this package
imports nothing.
"""
