"""DiskQueue: FIFO across segments, persistence, crash recovery, the drop-oldest bound, and a model test."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.exporters.queue import HEADER_SIZE, DiskQueue

ROOT = Path(__file__).resolve().parents[3]


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.seg"))


def _drain_all(q: DiskQueue) -> list[bytes]:
    out = []
    while (payload := q.peek()) is not None:
        out.append(payload)
        assert q.ack()
    return out


def test_fifo_order_across_segments(tmp_path: Path) -> None:
    payloads = [f"payload-{i}".encode() * (i % 5 + 1) for i in range(50)]
    with DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=64) as q:
        for p in payloads:
            q.put(p)
        assert len(_segments(tmp_path)) > 5
        assert len(q) == 50
        assert q.bytes == sum(HEADER_SIZE + len(p) for p in payloads)
        assert _drain_all(q) == payloads
        assert len(q) == 0 and q.bytes == 0 and q.peek() is None
        # Consumed segments are deleted; only the one being written remains.
        assert len(_segments(tmp_path)) == 1


def test_peek_does_not_remove_and_empty_ack_is_false(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=1000) as q:
        assert q.peek() is None and not q.ack()
        q.put(b"a")
        q.put(b"")
        assert q.peek() == b"a" and q.peek() == b"a" and len(q) == 2
        assert q.ack() and q.peek() == b"" and q.ack()
        assert not q.ack()


def test_persists_across_reopen(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000, segment_bytes=100) as q:
        for i in range(20):
            q.put(b"x%d" % i)
        assert q.peek() == b"x0"
        assert q.ack()
    with DiskQueue(tmp_path, max_bytes=10_000, segment_bytes=100) as q:
        assert len(q) == 19
        assert q.peek() == b"x1"
        for _ in range(5):
            q.peek()
            q.ack()
    with DiskQueue(tmp_path, max_bytes=10_000, segment_bytes=100) as q:
        q.put(b"after")
        assert _drain_all(q) == [b"x%d" % i for i in range(6, 20)] + [b"after"]
    with DiskQueue(tmp_path, max_bytes=10_000, segment_bytes=100) as q:
        assert len(q) == 0 and q.peek() is None


@pytest.mark.parametrize("cut", [1, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 3])
def test_torn_tail_is_truncated_and_never_returned(tmp_path: Path, cut: int) -> None:
    # As after a kill -9 in the middle of a put: the last record is only partly on disk.
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        for p in (b"first", b"second", b"torn-record"):
            q.put(p)
    segment = _segments(tmp_path)[-1]
    full = segment.stat().st_size
    start_of_last = full - (HEADER_SIZE + len(b"torn-record"))
    os.truncate(segment, start_of_last + cut)
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        assert segment.stat().st_size == start_of_last
        assert q.corrupt == 0 and len(q) == 2
        q.put(b"next")
        assert _drain_all(q) == [b"first", b"second", b"next"]


def test_torn_tail_with_garbled_payload_is_truncated(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        q.put(b"good")
        q.put(b"zeroed")
    segment = _segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    data[-6:] = bytes(6)  # the length reached the disk, the payload did not
    segment.write_bytes(bytes(data))
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        assert q.corrupt == 0
        assert _drain_all(q) == [b"good"]


def test_zero_filled_tail_is_not_an_empty_record(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        q.put(b"good")
    segment = _segments(tmp_path)[-1]
    with segment.open("ab") as f:
        f.write(bytes(HEADER_SIZE))
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        assert _drain_all(q) == [b"good"]


def test_corrupt_middle_record_is_skipped_and_counted(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        for p in (b"one", b"two", b"three"):
            q.put(p)
    segment = _segments(tmp_path)[-1]
    data = bytearray(segment.read_bytes())
    second_payload = HEADER_SIZE + 3 + HEADER_SIZE
    data[second_payload] ^= 0xFF
    segment.write_bytes(bytes(data))
    with DiskQueue(tmp_path, max_bytes=10_000) as q:
        assert q.corrupt == 1
        assert _drain_all(q) == [b"one", b"three"]


def test_overflow_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    record = HEADER_SIZE + 10
    with DiskQueue(tmp_path, max_bytes=record * 4, segment_bytes=record * 2) as q:
        for i in range(10):
            q.put(b"%010d" % i)
        assert len(q) == 4 and q.bytes == record * 4
        assert q.dropped == 6 and q.dropped_bytes == 60
        # Segments that only held dropped payloads are gone.
        assert len(_segments(tmp_path)) <= 3
    with DiskQueue(tmp_path, max_bytes=record * 4, segment_bytes=record * 2) as q:
        assert _drain_all(q) == [b"%010d" % i for i in range(6, 10)]


def test_ack_after_the_peeked_payload_was_dropped_removes_nothing(tmp_path: Path) -> None:
    record = HEADER_SIZE + 1
    with DiskQueue(tmp_path, max_bytes=record * 2) as q:
        q.put(b"a")
        q.put(b"b")
        assert q.peek() == b"a"
        q.put(b"c")  # drops "a" while it is in flight
        assert not q.ack()
        assert _drain_all(q) == [b"b", b"c"]


def test_smaller_max_bytes_on_reopen_drops_the_oldest(tmp_path: Path) -> None:
    with DiskQueue(tmp_path, max_bytes=1000) as q:
        for i in range(5):
            q.put(b"%d" % i)
    with DiskQueue(tmp_path, max_bytes=(HEADER_SIZE + 1) * 2) as q:
        assert q.dropped == 3
        assert _drain_all(q) == [b"3", b"4"]


@pytest.mark.parametrize(("max_bytes", "size"), [(100, 100 - HEADER_SIZE + 1), (100, 1000)])
def test_too_large_payload_is_refused(tmp_path: Path, max_bytes: int, size: int) -> None:
    with DiskQueue(tmp_path, max_bytes=max_bytes) as q:
        q.put(b"keep")
        with pytest.raises(ValueError, match="exceeds the queue's max_bytes"):
            q.put(bytes(size))
        q.put(bytes(max_bytes - HEADER_SIZE))  # exactly fits: everything else goes
        assert len(q) == 1 and q.dropped == 1


def test_closed_queue_refuses_calls(tmp_path: Path) -> None:
    q = DiskQueue(tmp_path, max_bytes=100)
    q.close()
    with pytest.raises(ValueError, match="closed"):
        q.put(b"x")


def test_concurrent_writers_and_a_reader_lose_nothing_and_keep_each_writers_order(tmp_path: Path) -> None:
    writers, per_writer = 4, 300
    got: list[bytes] = []
    with DiskQueue(tmp_path, max_bytes=1 << 20, segment_bytes=512) as q:

        def write(w: int) -> None:
            for i in range(per_writer):
                q.put(b"%d:%d" % (w, i))

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        while len(got) < writers * per_writer:
            payload = q.peek()
            if payload is not None:
                got.append(payload)
                assert q.ack()
        for t in threads:
            t.join()
        assert len(q) == 0 and q.dropped == 0
    for w in range(writers):
        assert [p for p in got if p.startswith(b"%d:" % w)] == [b"%d:%d" % (w, i) for i in range(per_writer)]


_WRITER = """
import sys
from pathlib import Path
from collector.exporters.queue import DiskQueue
q = DiskQueue(Path(sys.argv[1]), max_bytes=1 << 30, segment_bytes=1 << 16)
i = 0
while True:
    q.put(b"%08d" % i + bytes(i % 300))
    if i == 200:
        print("ready", flush=True)
    i += 1
"""


def test_kill_9_during_puts_leaves_a_readable_prefix(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    proc.kill()
    proc.wait()
    proc.stdout.close()
    with DiskQueue(tmp_path, max_bytes=1 << 30, segment_bytes=1 << 16) as q:
        got = _drain_all(q)
        assert q.corrupt == 0
    assert len(got) > 200
    assert got == [b"%08d" % i + bytes(i % 300) for i in range(len(got))]


# -- model test -------------------------------------------------------------------------------------

_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.binary(max_size=40)),
        st.tuples(st.just("peek"), st.none()),
        st.tuples(st.just("ack"), st.none()),
        st.tuples(st.just("reopen"), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(ops=_ops, max_bytes=st.integers(HEADER_SIZE + 1, 200), segment_bytes=st.integers(1, 120))
def test_matches_an_in_memory_model(ops: list[tuple[str, bytes | None]], max_bytes: int, segment_bytes: int) -> None:
    # The model: a deque of (id, payload), the same drop-oldest rule, and ack of the peeked entry.
    model: deque[tuple[int, bytes]] = deque()
    model_bytes = dropped = 0
    peeked: int | None = None
    next_id = 0
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        q = DiskQueue(directory, max_bytes=max_bytes, segment_bytes=segment_bytes)
        try:
            for op, payload in ops:
                if op == "put":
                    assert payload is not None
                    size = HEADER_SIZE + len(payload)
                    if size > max_bytes:
                        with pytest.raises(ValueError):
                            q.put(payload)
                        continue
                    q.put(payload)
                    while model and model_bytes + size > max_bytes:
                        model_bytes -= HEADER_SIZE + len(model.popleft()[1])
                        dropped += 1
                    model.append((next_id, payload))
                    model_bytes += size
                    next_id += 1
                elif op == "peek":
                    assert q.peek() == (model[0][1] if model else None)
                    peeked = model[0][0] if model else None
                elif op == "ack":
                    removes = bool(model) and (peeked is None or model[0][0] == peeked)
                    assert q.ack() == removes
                    if removes:
                        model_bytes -= HEADER_SIZE + len(model.popleft()[1])
                    peeked = None
                else:
                    dropped -= q.dropped
                    q.close()
                    q = DiskQueue(directory, max_bytes=max_bytes, segment_bytes=segment_bytes)
                    peeked = None
                assert len(q) == len(model)
                assert q.bytes == model_bytes
                assert q.dropped == dropped
                assert q.corrupt == 0
            assert _drain_all(q) == [p for _, p in model]
        finally:
            q.close()
