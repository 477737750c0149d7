"""Planning the import of one session folder: which assets may be copied in, and what is rejected and why."""

from __future__ import annotations

import itertools
from pathlib import Path

from integration.adapters.ndrive._errors import Rejected, unexpected_as_rejection
from integration.adapters.ndrive._model import AssetCandidate, IntakeRejection, IntakeRules, SessionPlan
from integration.adapters.ndrive._names import printable
from integration.adapters.ndrive._scan import scan_session
from integration.adapters.ndrive._validate import validate_group

__all__ = ["plan_session"]

_FOLDER_ADVICE = (
    "Nothing in this folder was imported, and its files were left as they are. Tell the data manager and quote "
    "this note; the folder is examined again once the problem is solved."
)


def plan_session(session: Path, rules: IntakeRules) -> SessionPlan:
    """Check every asset of ``session`` on its own and return the candidates and the rejections.

    Files are grouped by stem (``<guid>.json``, ``<guid>.tif``, ``<guid>.cr3``); one bad asset or stray file
    never affects the others, and anything unexpected raised while examining one asset becomes that asset's
    rejection. Hidden files and our ``*.error.txt`` notes are ignored. Nothing on the N-Drive is changed.

    Bad input never raises. An unexpected failure outside any one asset returns a plan whose ``folder_problem``
    says why the whole folder is rejected. Raises :class:`~integration.errors.TransientError` only when the
    session folder cannot be listed (try it again later), and :class:`~integration.errors.NdriveUnavailable`
    when the N-Drive mount fails (pause the intake).

    The plan describes the folder as it was while it was read: take a :func:`snapshot_session` before and after
    and act on the plan only when the two are equal.
    """
    subject = f"The session folder {printable(session.name)}"
    try:
        with unexpected_as_rejection(subject, _FOLDER_ADVICE):
            return _plan(session, rules)
    except Rejected as exc:
        return SessionPlan(candidates=(), rejections=(), folder_problem=exc.message)


def _plan(session: Path, rules: IntakeRules) -> SessionPlan:
    files, rejections = scan_session(session, rules.ndrive_root)
    candidates: list[AssetCandidate] = []
    by_stem = itertools.groupby(sorted(files, key=lambda f: (f.stem, f.path.name)), key=lambda f: f.stem)
    for stem, group in by_stem:
        candidate, group_rejections = validate_group(stem, list(group), rules)
        if candidate is not None:
            candidates.append(candidate)
        rejections.extend(group_rejections)
    return SessionPlan(candidates=tuple(candidates), rejections=tuple(_sorted(rejections)))


def _sorted(rejections: list[IntakeRejection]) -> list[IntakeRejection]:
    return sorted(rejections, key=lambda rejection: rejection.name)
