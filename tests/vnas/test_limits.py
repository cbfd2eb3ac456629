"""The bounded buffers behind VNAS_MAX_RESULT_BYTES and the stderr tail."""

from __future__ import annotations

import pytest

from vnas.limits import READ_CHUNK_BYTES, BoundedOutput, ResultTooLarge, TailBuffer, check_size


def test_bounded_output_never_asks_for_more_than_one_byte_past_the_limit() -> None:
    output = BoundedOutput(10)
    assert output.room() == 11
    output.add(b"x" * 10)
    assert output.room() == 1
    assert output.value() == b"x" * 10 and not output.overflowed
    with pytest.raises(ResultTooLarge, match=r"^result exceeds VNAS_MAX_RESULT_BYTES=10 bytes$"):
        output.add(b"y")
    assert output.overflowed
    assert output.value() == b""  # refused output is dropped at once


def test_bounded_output_reads_in_chunks_below_a_large_limit() -> None:
    assert BoundedOutput(10 * READ_CHUNK_BYTES).room() == READ_CHUNK_BYTES


def test_the_tail_buffer_keeps_only_the_last_bytes_however_much_is_written() -> None:
    tail = TailBuffer(8)
    for index in range(1000):
        tail.add(f"{index:06d}".encode())
        assert len(tail._data) <= 16 + 6  # trimmed in batches, never grown with the input
    assert tail.value() == b"98000999"


def test_check_size_names_the_limit_and_the_size() -> None:
    assert check_size(b"abc", 3) == b"abc"
    with pytest.raises(ResultTooLarge, match=r"VNAS_MAX_RESULT_BYTES=3 bytes \(4 bytes\)"):
        check_size(b"abcd", 3)
