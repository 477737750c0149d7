"""The job runner on a node (``integration hpc run``): fetch the job's ticket from the daemon, run its module,
report started / finished / failed through the callback API (docs/processing.md)."""

from integration.hpc_client.runner._run import EXIT_CONFIG, EXIT_OK, EXIT_UNREACHABLE, RunnerSettings, run_job

__all__ = ["EXIT_CONFIG", "EXIT_OK", "EXIT_UNREACHABLE", "RunnerSettings", "run_job"]
