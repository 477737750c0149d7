"""Per-institution rules deciding what each code on an image is (barcode_rules.toml explains the format)."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Literal

import msgspec

from integration.errors import ConfigError, GroupHeld

from ._symbols import code39_mod43_ok, strip_codabar

__all__ = ["Classified", "InstitutionRules", "Role", "RuleTable", "load_rules"]

Role = Literal["specimen", "disposable", "device_target", "folder", "label", "other"]


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    role: Role
    pattern: str
    symbologies: list[str] = []
    prefix: str = ""
    mod43: bool = False


class InstitutionRules(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    name: str
    aliases: list[str] = []
    rules: list[Rule] = []


class Classified(msgspec.Struct, frozen=True):
    """A code's meaning: its role, the identifier to report, the short id if the rule names one."""

    role: Role
    identifier: str
    short_id: str | None = None
    institution: str | None = None


class RuleTable(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    institution: list[InstitutionRules]

    def find(self, name: str) -> InstitutionRules:
        """The institution called ``name`` (or one of its aliases), case-insensitive."""
        wanted = name.strip().casefold()
        for entry in self.institution:
            if wanted in {entry.name.casefold(), *(alias.casefold() for alias in entry.aliases)}:
                return entry
        known = ", ".join(entry.name for entry in self.institution)
        raise GroupHeld(
            f"no barcode rules for institution {name!r} (known: {known}): add them to the rules table",
            group_kind="institution",
            group_value=name,
        )

    def classify(self, value: str, symbology: str, institution: str | None) -> Classified | None:
        """The first matching rule of ``institution`` decides. Without an institution the role is "other" and
        ``institution`` names the first institution whose rules would match, as a hint.

        Returns None when a rule matched but its check character is wrong: the value must not be reported.
        """
        entries = [self.find(institution)] if institution else self.institution
        if symbology == "codabar":
            value = strip_codabar(value)
        found = self._match(entries, value, symbology)
        if institution is not None or found is None:  # None: a rule's check character failed
            return found
        return Classified("other", value, None, found.institution)

    @staticmethod
    def _match(entries: list[InstitutionRules], value: str, symbology: str) -> Classified | None:
        for entry in entries:
            for rule in entry.rules:
                if rule.symbologies and symbology not in rule.symbologies:
                    continue
                match = re.fullmatch(rule.pattern, value)
                if match is None:
                    continue
                identifier = value
                if rule.mod43:
                    if not code39_mod43_ok(value):
                        return None
                    identifier = value[:-1]
                short = match.groupdict().get("short")
                return Classified(rule.role, rule.prefix + identifier, short, entry.name)
        return Classified("other", value, None, None)


def load_rules(path: Path | None = None) -> RuleTable:
    """The shipped table, or the one at ``path``; raises :class:`ConfigError` naming the problem."""
    try:
        if path is None:
            text = resources.files(__package__).joinpath("barcode_rules.toml").read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        table = msgspec.convert(tomllib.loads(text), RuleTable)
    except (OSError, tomllib.TOMLDecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(f"barcode rules {path or 'shipped table'}: {exc}") from exc
    for entry in table.institution:
        for rule in entry.rules:
            try:
                re.compile(rule.pattern)
            except re.error as exc:
                raise ConfigError(f"barcode rules for {entry.name}: pattern {rule.pattern!r}: {exc}") from exc
    return table
