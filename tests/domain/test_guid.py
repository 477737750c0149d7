"""DaSSCo GUIDs: the documented example, round trips, invalid input, derivatives."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from integration.domain import DasscoGuid
from integration.errors import InvalidGuid


def test_documented_example() -> None:
    """2024-08-08T12:27:21, institution 2, collection 3, workstation 4, random 123456 gives the documented GUID."""
    guid = DasscoGuid.build(datetime(2024, 8, 8, 12, 27, 21), institution=2, collection=3, workstation=4, random=123456)
    assert str(guid) == "7e8-8-08-0c-1b-15-2-003-04-000-01e240"


def test_production_suffix_is_accepted_and_kept() -> None:
    """GUIDs with the twelfth `-00000` field, as seen in production, parse and print unchanged."""
    text = "7e7-a-12-0e-1b-05-0-001-00-000-0be189-00000"
    assert str(DasscoGuid.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-guid",
        "7E8-8-08-0c-1b-15-2-003-04-000-01e240",  # upper case
        "7e8-8-08-0c-1b-15-2-003-04-000",  # too few fields
        "7e8-8-08-0c-1b-15-2-003-04-000-01e240-0",  # bad suffix width
        "7e8-d-08-0c-1b-15-2-003-04-000-01e240",  # month 13
        "7e8-2-1e-0c-1b-15-2-003-04-000-01e240",  # 30 February
        "../../etc/passwd",
    ],
)
def test_invalid_guids_are_refused_with_a_reason(text: str) -> None:
    """Malformed text or an impossible date raises InvalidGuid."""
    with pytest.raises(InvalidGuid):
        DasscoGuid.parse(text)


@given(
    taken=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(4000, 12, 31)),
    institution=st.integers(0, 15),
    collection=st.integers(0, 4095),
    workstation=st.integers(0, 255),
    random=st.integers(0, 0xFFFFFF),
)
def test_build_parse_round_trip(
    taken: datetime, institution: int, collection: int, workstation: int, random: int
) -> None:
    """Any buildable GUID parses back to the same fields and capture time (to the second)."""
    guid = DasscoGuid.build(
        taken, institution=institution, collection=collection, workstation=workstation, random=random
    )
    parsed = DasscoGuid.parse(str(guid))
    assert parsed == guid
    assert parsed.taken_at() == taken.replace(microsecond=0)


def test_derivative_guids() -> None:
    """Derivative n sets field 10 and appends -00000; derivatives of derivatives are refused."""
    original = DasscoGuid.parse("7e8-8-08-0c-1b-15-2-003-04-000-01e240")
    derivative = original.derivative_of(2)
    assert str(derivative) == "7e8-8-08-0c-1b-15-2-003-04-002-01e240-00000"
    assert derivative.is_derivative
    assert not original.is_derivative
    with pytest.raises(InvalidGuid):
        derivative.derivative_of(1)
    with pytest.raises(InvalidGuid):
        original.derivative_of(0)


def test_out_of_range_fields_are_refused() -> None:
    """A field that does not fit its hex width is refused when building."""
    with pytest.raises(InvalidGuid):
        DasscoGuid.build(datetime(2024, 1, 1), institution=16, collection=0, workstation=0, random=0)
