"""Executors: where processing jobs run, behind one interface (docs/processing.md, issue 7).

``local`` runs them as subprocesses of the daemon; Slurm over SSH, Torque and the polling agent follow behind
the same :class:`Executor` protocol.
"""

from integration.adapters.executors._interface import Executor, JobSeen, JobSpec, Seen
from integration.adapters.executors._local import LocalExecutor

__all__ = ["Executor", "JobSeen", "JobSpec", "LocalExecutor", "Seen"]
