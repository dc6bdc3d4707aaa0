"""Engine processes of our own, run as ``python -m mrs_jobs.engines.runners.<name> <config>``.

A runner is what an engine's ``build()`` launches when there is no external tool to run (no
Hadoop DistCp here, for instance). It is a plain child process like ``spark-submit``: the
supervisor captures its stdout/stderr into the job's log, kills its process group on a kill, and
the engine's ``observe()`` reads the progress file the runner keeps in the job's workdir.

Conventions: the only argument is the path of a private (mode 0600) JSON file in the workdir
written by ``build()``, which holds everything the runner needs, secrets included, so that no
secret is ever on a command line or in the environment; progress goes to ``progress.json`` in the
same directory, replaced atomically; exit status 0 means success.
"""
