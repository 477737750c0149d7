"""Planning the import of one session folder: which assets may be copied in, and what is rejected and why."""

from __future__ import annotations

import itertools
from pathlib import Path

from integration.adapters.ndrive._model import AssetCandidate, IntakeRejection, IntakeRules, SessionPlan
from integration.adapters.ndrive._scan import scan_session
from integration.adapters.ndrive._validate import validate_group

__all__ = ["plan_session"]


def plan_session(session: Path, rules: IntakeRules) -> SessionPlan:
    """Check every asset of ``session`` on its own and return the candidates and the rejections.

    Files are grouped by stem (``<guid>.json``, ``<guid>.tif``, ``<guid>.cr3``); one bad asset or stray file
    never affects the others. Hidden files and our ``*.error.txt`` notes are ignored. Nothing on the N-Drive is
    changed. Bad input never raises: only a session folder that cannot be listed raises
    :class:`~integration.errors.TransientError`.

    The plan describes the folder as it was while it was read: take a :func:`snapshot_session` before and after
    and act on the plan only when the two are equal.
    """
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
