"""A bounded FIFO of opaque byte payloads on disk that survives a restart and a kill -9.

Layout of `directory`:
- segment files `00000001.seg`, `00000002.seg`, ... written append-only. A record is
  `length (u32 LE) + crc (u32 LE) + payload`; the crc is CRC-32 over the four length bytes then the
  payload, so a zero-filled tail (length 0, crc 0) never passes for an empty record.
- `cursor`: `"<segment> <offset>\\n"`, the position of the oldest waiting record, replaced
  atomically (write `cursor.tmp`, then os.replace) on every ack or drop.

Contracts:
- A payload leaves the queue only through `ack()` (it was delivered, or the caller gave up on it) or
  by being dropped as the oldest on overflow. Delivery is at-least-once: a crash between a send and
  its ack sends that payload again after the restart.
- `max_bytes` bounds the framed size (8 + len(payload)) of the waiting records. Acked records stay
  on disk until their whole segment is consumed, so disk use is at most max_bytes plus one segment.
- `put` makes the record visible to a later process once it returns (os.write reaches the page
  cache, which survives a kill -9); with `fsync=True` it also survives a power loss.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

HEADER = struct.Struct("<II")
# Records are framed as header + payload; sizes in this module count that framing.
HEADER_SIZE = HEADER.size
SEGMENT_SUFFIX = ".seg"
CURSOR_NAME = "cursor"
DEFAULT_SEGMENT_BYTES = 8 * 1024 * 1024


def _crc(length_bytes: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(length_bytes))


def frame(payload: bytes) -> bytes:
    """The on-disk record for `payload`."""
    length_bytes = struct.pack("<I", len(payload))
    return length_bytes + struct.pack("<I", _crc(length_bytes, payload)) + payload


def _segment_name(seq: int) -> str:
    return f"{seq:08d}{SEGMENT_SUFFIX}"


@dataclass(frozen=True)
class _Record:
    segment: int
    offset: int
    # Payload length in bytes (the record takes HEADER_SIZE more on disk).
    size: int


class DiskQueue:
    """FIFO of byte payloads in append-only segment files; see the module docstring for the contracts.

    Thread-safe: every public method holds one lock. The calls do small, blocking file I/O.
    """

    def __init__(
        self, directory: Path, max_bytes: int, *, fsync: bool = False, segment_bytes: int | None = None
    ) -> None:
        if max_bytes <= HEADER_SIZE:
            raise ValueError(f"max_bytes must be more than {HEADER_SIZE}, got {max_bytes}")
        if segment_bytes is not None and segment_bytes <= 0:
            raise ValueError(f"segment_bytes must be positive, got {segment_bytes}")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        # A segment is closed for writing once it reaches this size (it may pass it by one record).
        self.segment_bytes = segment_bytes or max(1, min(DEFAULT_SEGMENT_BYTES, max_bytes // 8))
        self.fsync = fsync
        # Payloads (and their payload bytes) dropped as the oldest on overflow, since this open.
        self.dropped = 0
        self.dropped_bytes = 0
        # Records found damaged in the middle of a segment on open and skipped, since this open.
        self.corrupt = 0
        self._lock = threading.Lock()
        self._records: deque[_Record] = deque()
        self._bytes = 0
        # The record returned by the last peek(), which the next ack() acknowledges.
        self._peeked: _Record | None = None
        self._segments: list[int] = []
        self._write_seq = 0
        self._write_offset = 0
        self._write_fd: int | None = None
        self._cursor: tuple[int, int] = (0, 0)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._recover()

    # -- public API -------------------------------------------------------------------------------

    def put(self, payload: bytes) -> None:
        """Append `payload` (the caller keeps ownership of the buffer; it is copied to disk).

        Drops the oldest payloads when the queue would pass max_bytes. Raises ValueError when the
        framed payload alone is larger than max_bytes.
        """
        record_bytes = HEADER_SIZE + len(payload)
        if record_bytes > self.max_bytes:
            raise ValueError(
                f"payload of {len(payload)} bytes (+{HEADER_SIZE} framing) "
                f"exceeds the queue's max_bytes {self.max_bytes}"
            )
        with self._lock:
            fd = self._require_open()
            if self._write_offset >= self.segment_bytes:
                fd = self._roll()
            if self._drop_oldest(room_for=record_bytes):
                self._advance()
            data = frame(payload)
            try:
                written = 0
                while written < len(data):
                    written += os.write(fd, data[written:])
                if self.fsync:
                    os.fsync(fd)
            except OSError:
                # Leave no partial record behind for the next put to append after.
                os.ftruncate(fd, self._write_offset)
                raise
            self._records.append(_Record(self._write_seq, self._write_offset, len(payload)))
            self._write_offset += len(data)
            self._bytes += len(data)

    def peek(self) -> bytes | None:
        """The oldest waiting payload, or None when the queue is empty. It stays queued until ack()."""
        with self._lock:
            self._require_open()
            if not self._records:
                self._peeked = None
                return None
            head = self._records[0]
            self._peeked = head
            path = self.directory / _segment_name(head.segment)
            fd = os.open(path, os.O_RDONLY)
            try:
                return os.pread(fd, head.size, head.offset + HEADER_SIZE)
            finally:
                os.close(fd)

    def ack(self) -> bool:
        """Remove the payload the last peek() returned (the oldest one when nothing was peeked).

        Returns False, removing nothing, when the queue is empty or the peeked payload was dropped
        on overflow in the meantime (so an ack never removes a payload that was not sent).
        """
        with self._lock:
            self._require_open()
            peeked, self._peeked = self._peeked, None
            if not self._records or (peeked is not None and self._records[0] != peeked):
                return False
            head = self._records.popleft()
            self._bytes -= HEADER_SIZE + head.size
            self._advance()
            return True

    def __len__(self) -> int:
        """Payloads waiting."""
        with self._lock:
            return len(self._records)

    @property
    def bytes(self) -> int:
        """Bytes waiting, framing included (what max_bytes bounds)."""
        with self._lock:
            return self._bytes

    def close(self) -> None:
        with self._lock:
            if self._write_fd is not None:
                os.close(self._write_fd)
                self._write_fd = None

    def __enter__(self) -> DiskQueue:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- internals (callers hold the lock) ---------------------------------------------------------

    def _require_open(self) -> int:
        if self._write_fd is None:
            raise ValueError("the queue is closed")
        return self._write_fd

    def _open_segment(self, seq: int) -> None:
        path = self.directory / _segment_name(seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self._write_fd is not None:
            os.close(self._write_fd)
        self._write_fd = fd
        self._write_seq = seq
        self._write_offset = os.fstat(fd).st_size
        if not self._segments or self._segments[-1] != seq:
            self._segments.append(seq)
            self._sync_directory()

    def _roll(self) -> int:
        self._open_segment(self._write_seq + 1)
        if not self._records:
            # Nothing waits in the older segments: move the cursor on so they can go.
            self._advance()
        return self._require_open()

    def _drop_oldest(self, room_for: int) -> bool:
        """Drop the oldest records until `room_for` more bytes fit under max_bytes; True if any went."""
        dropped_any = False
        while self._records and self._bytes + room_for > self.max_bytes:
            oldest = self._records.popleft()
            self._bytes -= HEADER_SIZE + oldest.size
            self.dropped += 1
            self.dropped_bytes += oldest.size
            dropped_any = True
        return dropped_any

    def _advance(self) -> None:
        """Persist the cursor at the oldest waiting record and delete fully consumed segments."""
        if self._records:
            cursor = (self._records[0].segment, self._records[0].offset)
        else:
            cursor = (self._write_seq, self._write_offset)
        if cursor != self._cursor:
            self._write_cursor(cursor)
        while self._segments and self._segments[0] < cursor[0]:
            (self.directory / _segment_name(self._segments.pop(0))).unlink(missing_ok=True)

    def _write_cursor(self, cursor: tuple[int, int]) -> None:
        tmp = self.directory / (CURSOR_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{cursor[0]} {cursor[1]}\n".encode())
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.directory / CURSOR_NAME)
        self._sync_directory()
        self._cursor = cursor

    def _sync_directory(self) -> None:
        if not self.fsync:
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read_cursor(self) -> tuple[int, int] | None:
        try:
            text = (self.directory / CURSOR_NAME).read_text(encoding="ascii")
            seq_text, offset_text = text.split()
            cursor = (int(seq_text), int(offset_text))
        except (OSError, ValueError, UnicodeDecodeError):
            # Missing or unreadable: start at the oldest segment (redeliver rather than lose).
            return None
        return cursor if cursor[0] >= 0 and cursor[1] >= 0 else None

    def _recover(self) -> None:
        (self.directory / (CURSOR_NAME + ".tmp")).unlink(missing_ok=True)
        segments = sorted(
            int(path.name.removesuffix(SEGMENT_SUFFIX))
            for path in self.directory.glob("*" + SEGMENT_SUFFIX)
            if path.name.removesuffix(SEGMENT_SUFFIX).isdigit()
        )
        cursor = self._read_cursor()
        if cursor is None:
            cursor = (segments[0], 0) if segments else (0, 0)
        for seq in [s for s in segments if s < cursor[0]]:
            # Consumed before the crash; its deletion did not happen yet.
            (self.directory / _segment_name(seq)).unlink(missing_ok=True)
        segments = [s for s in segments if s >= cursor[0]]
        for index, seq in enumerate(segments):
            start = cursor[1] if seq == cursor[0] else 0
            self._scan_segment(seq, start, last=index == len(segments) - 1)
        self._segments = segments
        self._cursor = cursor
        self._open_segment(segments[-1] if segments else max(cursor[0], 0) + 1)
        # max_bytes may be smaller than in the previous run: the same drop-oldest rule applies.
        self._drop_oldest(room_for=0)
        self._advance()

    def _scan_segment(self, seq: int, start: int, *, last: bool) -> None:
        """Index the valid records of one segment from `start`; truncate a torn tail, skip bad records."""
        path = self.directory / _segment_name(seq)
        data = path.read_bytes()
        pos = start
        max_payload = self.max_bytes - HEADER_SIZE
        while pos < len(data):
            if pos + HEADER_SIZE > len(data):
                self._truncate(path, pos, torn=last)
                return
            length, crc = HEADER.unpack_from(data, pos)
            end = pos + HEADER_SIZE + length
            if end > len(data):
                # A record running past the end is a write cut short; only the last segment can have
                # one, and never longer than a put accepts (else the length itself is damaged).
                self._truncate(path, pos, torn=last and length <= max_payload)
                return
            payload = data[pos + HEADER_SIZE : end]
            if _crc(data[pos : pos + 4], payload) != crc:
                if last and end == len(data):
                    self._truncate(path, pos, torn=True)
                    return
                self.corrupt += 1
            else:
                self._records.append(_Record(seq, pos, length))
                self._bytes += HEADER_SIZE + length
            pos = end

    def _truncate(self, path: Path, size: int, *, torn: bool) -> None:
        # A torn tail (a kill -9 mid-write) is expected and silent; anything else counts as corrupt.
        if not torn:
            self.corrupt += 1
        with path.open("r+b") as f:
            f.truncate(size)
            if self.fsync:
                f.flush()
                os.fsync(f.fileno())
