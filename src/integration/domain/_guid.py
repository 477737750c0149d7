"""DaSSCo GUIDs: parse, validate, build, and derive derivative GUIDs.

Format (original-integration.md §8.3): eleven dash-separated lower-case hex fields, optionally a twelfth
``00000`` suffix that production GUIDs carry::

    year(3)-month(1)-day(2)-hour(2)-minute(2)-second(2)-institution(1)-collection(3)-workstation(2)-derivative(3)-random(6)[-suffix(5)]

Example: ``7e8-8-08-0c-1b-15-2-003-04-000-01e240``. The derivative field is ``000`` for originals.
"""

from __future__ import annotations

import re
from datetime import datetime

import msgspec

from integration.errors import InvalidGuid

__all__ = ["DasscoGuid"]

_WIDTHS = (3, 1, 2, 2, 2, 2, 1, 3, 2, 3, 6)
_FIELD = r"[0-9a-f]"
_PATTERN = re.compile(
    "^" + "-".join(f"({_FIELD}{{{w}}})" for w in _WIDTHS) + r"(?:-([0-9a-f]{5}))?$",
)
_MAX = tuple(16**w - 1 for w in _WIDTHS)


class DasscoGuid(msgspec.Struct, frozen=True, kw_only=True):
    """A parsed DaSSCo GUID; ``str(guid)`` gives back its canonical text."""

    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    institution: int
    collection: int
    workstation: int
    derivative: int = 0
    random: int
    suffix: int | None = None

    @classmethod
    def parse(cls, text: str) -> DasscoGuid:
        """Parse and validate ``text``; raises :class:`InvalidGuid` with a plain reason."""
        match = _PATTERN.match(text)
        if match is None:
            raise InvalidGuid(
                f"{text!r} is not a DaSSCo GUID (expected 11 dash-separated lower-case hex fields "
                "of widths 3-1-2-2-2-2-1-3-2-3-6, e.g. 7e8-8-08-0c-1b-15-2-003-04-000-01e240)"
            )
        values = [int(group, 16) for group in match.groups()[:11]]
        suffix_text = match.group(12)
        guid = cls(
            year=values[0],
            month=values[1],
            day=values[2],
            hour=values[3],
            minute=values[4],
            second=values[5],
            institution=values[6],
            collection=values[7],
            workstation=values[8],
            derivative=values[9],
            random=values[10],
            suffix=int(suffix_text, 16) if suffix_text is not None else None,
        )
        guid.taken_at()  # validates the calendar fields
        return guid

    @classmethod
    def build(
        cls,
        taken: datetime,
        *,
        institution: int,
        collection: int,
        workstation: int,
        random: int,
        derivative: int = 0,
    ) -> DasscoGuid:
        """Build the GUID of an asset taken at ``taken`` (its wall-clock fields are used as they are)."""
        fields = (institution, collection, workstation, derivative, random)
        for name, value, limit in zip(
            ("institution", "collection", "workstation", "derivative", "random"), fields, _MAX[6:], strict=True
        ):
            if not 0 <= value <= limit:
                raise InvalidGuid(f"GUID field {name}={value} is outside 0..{limit}")
        if not 0 <= taken.year <= _MAX[0]:
            raise InvalidGuid(f"year {taken.year} does not fit a DaSSCo GUID")
        return cls(
            year=taken.year,
            month=taken.month,
            day=taken.day,
            hour=taken.hour,
            minute=taken.minute,
            second=taken.second,
            institution=institution,
            collection=collection,
            workstation=workstation,
            derivative=derivative,
            random=random,
        )

    def derivative_of(self, number: int) -> DasscoGuid:
        """The GUID of derivative ``number`` (1..4095) of this original; ends with ``-00000``."""
        if self.derivative != 0:
            raise InvalidGuid(f"{self} is already a derivative; derivatives of derivatives have no GUID")
        if not 1 <= number <= _MAX[9]:
            raise InvalidGuid(f"derivative number {number} is outside 1..{_MAX[9]}")
        return msgspec.structs.replace(self, derivative=number, suffix=0)

    def taken_at(self) -> datetime:
        """The capture time encoded in the GUID; raises :class:`InvalidGuid` if it is no real date."""
        try:
            return datetime(self.year, self.month, self.day, self.hour, self.minute, self.second)
        except ValueError as exc:
            raise InvalidGuid(f"GUID {self} encodes an impossible date/time: {exc}") from exc

    @property
    def is_derivative(self) -> bool:
        """True when the derivative field is not ``000``."""
        return self.derivative != 0

    def __str__(self) -> str:
        values = (
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.institution,
            self.collection,
            self.workstation,
            self.derivative,
            self.random,
        )
        text = "-".join(format(v, f"0{w}x") for v, w in zip(values, _WIDTHS, strict=True))
        if self.suffix is not None:
            text += "-" + format(self.suffix, "05x")
        return text
