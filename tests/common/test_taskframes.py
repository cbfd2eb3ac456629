"""The framed-v1 codec (vncommon.taskframes): both directions, incremental reads and what it refuses."""

from __future__ import annotations

import io
import struct

import pytest

from vncommon import taskframes
from vncommon.taskframes import BodyTooLarge, FrameError, FrameReader


def test_a_task_frame_carries_the_task_fields_in_its_header_and_the_xml_as_its_body() -> None:
    env = {"VN_REQUEST_ID": "r-1", "VN_TASK_ID": "7", "VN_ATTEMPT": "2", "PATH": "/bin"}
    frame = taskframes.read_frame(io.BytesIO(taskframes.task_frame(b"<vnml/>", env)))
    assert frame is not None
    assert frame.kind == taskframes.TASK
    assert frame.header["env"] == {"VN_REQUEST_ID": "r-1", "VN_TASK_ID": "7", "VN_ATTEMPT": "2"}
    assert frame.body == b"<vnml/>"


def test_the_prefix_is_the_marker_and_two_big_endian_lengths() -> None:
    data = taskframes.result_frame(b"101.25", 1.5)
    magic, header_len, body_len = struct.unpack(">4sII", data[:12])
    assert (magic, body_len) == (b"VNF1", 6)
    assert data[12 + header_len:] == b"101.25"
    assert b'"type":"result"' in data[12:12 + header_len]


def test_the_reader_returns_frames_only_once_they_are_whole() -> None:
    data = taskframes.hello_frame(42) + taskframes.error_frame("ValueError: x", "ValueError", "trace")
    reader = FrameReader()
    frames = []
    for index in range(len(data)):  # one byte at a time
        reader.feed(data[index:index + 1])
        while (frame := reader.next_frame()) is not None:
            frames.append(frame)
    assert [frame.kind for frame in frames] == [taskframes.HELLO, taskframes.ERROR]
    assert frames[0].header == {"protocol": "framed-v1", "pid": 42}
    assert frames[1].header["exception"] == "ValueError"
    assert reader.pending == 0


def test_text_instead_of_a_frame_is_refused_from_its_first_bytes() -> None:
    reader = FrameReader()
    reader.feed(b"hel")
    with pytest.raises(FrameError, match="not a framed-v1 frame"):
        reader.next_frame()


def test_a_header_that_is_not_a_json_object_is_refused() -> None:
    for header in (b"nope!", b"[1, 2]", b'{"no": "type"}'):
        reader = FrameReader()
        reader.feed(struct.pack(">4sII", b"VNF1", len(header), 0) + header)
        with pytest.raises(FrameError, match="header"):
            reader.next_frame()


def test_a_body_over_the_receivers_limit_is_refused_before_it_is_read() -> None:
    reader = FrameReader(max_body=10)
    reader.feed(struct.pack(">4sII", b"VNF1", 2, 11))
    with pytest.raises(BodyTooLarge) as caught:
        reader.next_frame()
    assert (caught.value.size, caught.value.limit) == (11, 10)


def test_a_huge_header_is_refused() -> None:
    reader = FrameReader()
    reader.feed(struct.pack(">4sII", b"VNF1", taskframes.MAX_HEADER_BYTES + 1, 0))
    with pytest.raises(FrameError, match="header of"):
        reader.next_frame()


def test_blocking_reads_see_a_clean_end_and_refuse_a_cut_frame() -> None:
    assert taskframes.read_frame(io.BytesIO(b"")) is None
    with pytest.raises(FrameError, match="ended inside a frame"):
        taskframes.read_frame(io.BytesIO(taskframes.hello_frame(1)[:-3]))
