"""The one trace-id rule used by the gateway and vnapi."""

from __future__ import annotations

import pytest

from vncommon.errors import InvalidArgument
from vncommon.trace import MAX_TRACE_ID_CHARS, from_metadata, resolve_trace_id


def test_the_first_usable_candidate_wins_with_its_blanks_dropped() -> None:
    assert resolve_trace_id("  t-1 ", "t-2") == "t-1"
    assert resolve_trace_id("", "t-2") == "t-2"
    assert resolve_trace_id("t" * MAX_TRACE_ID_CHARS) == "t" * MAX_TRACE_ID_CHARS


@pytest.mark.parametrize("empty", ["", "   "])
def test_an_empty_candidate_is_passed_over_and_none_left_gives_a_fresh_id(empty: str) -> None:
    fresh = resolve_trace_id(empty)
    assert len(fresh) == 32 and fresh != resolve_trace_id(empty)
    assert resolve_trace_id(empty, "t-next") == "t-next"


@pytest.mark.parametrize("invalid", ["two words", "t" * (MAX_TRACE_ID_CHARS + 1), "caf\u00e9", "a\x7f", "a\nb"])
def test_an_invalid_candidate_is_refused_without_echoing_it(invalid: str) -> None:
    with pytest.raises(InvalidArgument, match="trace_id must be 1-128 characters") as caught:
        resolve_trace_id(invalid, "t-next")
    assert invalid not in caught.value.message


def test_the_kept_header_is_found_whatever_its_case() -> None:
    assert from_metadata({"X-Desk": "rates", "x-TRACE-id": "t-9"}) == "t-9"
    assert from_metadata({"X-Desk": "rates"}) == ""
