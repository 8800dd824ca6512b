"""Partition logs on disk: append-only segment files that survive restarts.

A partition is a directory of segment files named by the logical byte offset of their first
record (`00000000000000000000.seg`). A segment starts with a fixed header and holds records:

    segment header  magic, base offset, base sequence number,
                    offset and enqueued time of the event before this segment (for an empty log)
    record          length, crc32, sequence number, enqueued time (ms), AMQP header length,
                    then the event exactly as consumers receive it (broker annotations included)

An event's offset is the logical byte position of its record: monotonic, opaque to clients,
stable across restarts, so stored checkpoints stay valid. Retention deletes whole segments.
A torn record at the end of the newest segment (a crash mid-write) is cut off on recovery.
"""

from __future__ import annotations

import bisect
import fcntl
import logging
import os
import struct
import zlib
from array import array
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from devstack.eventhubs import messages
from devstack.eventhubs.errors import StorageError

_LOG = logging.getLogger(__name__)

SEGMENT_MAGIC = b"EHSEG001"
SEGMENT_HEADER = struct.Struct(">8sqqqq")
RECORD_HEADER = struct.Struct(">IIqqI")
_RECORD_HEAD = struct.Struct(">II")  # length, crc32
_RECORD_TAIL = struct.Struct(">qqI")  # sequence number, enqueued ms, AMQP header length
_CRC_START = 8  # the crc covers everything after the length and crc fields
SEGMENT_SUFFIX = ".seg"
# Enqueued time the service reports for a partition that never held an event (0001-01-01).
NEVER_ENQUEUED_MS = -62135596800000
_OPEN_READERS = 4  # closed-segment file descriptors kept open per partition


@dataclass(frozen=True, slots=True)
class LogSettings:
    """How segments roll (by size, and by age so retention can trim at a useful granularity),
    and whether every append is fsynced before it is acknowledged (else `flush` does it)."""

    segment_max_bytes: int = 64 * 1024 * 1024
    segment_max_age_ms: int = 3_600_000
    fsync_each_append: bool = False


class DataDirLock:
    """An exclusive lock on the data dir, so two emulators never write the same logs."""

    FILE_NAME = ".lock"

    def __init__(self, directory: Path) -> None:
        self.path = directory / self.FILE_NAME
        self._fd = -1

    def acquire(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise StorageError(f"cannot create {self.path}: {e}; check --data-dir") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            msg = (
                f"data dir {self.path.parent} is in use by another emulator (pid {holder});"
                " stop it or pass another --data-dir"
            )
            raise StorageError(msg) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # closing drops the flock; a killed process drops it too
            self._fd = -1


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """What the management node reports about a partition."""

    begin_sequence_number: int
    last_sequence_number: int
    last_offset: str
    last_enqueued_ms: int
    is_empty: bool


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event read back: its sequence number and the bytes to deliver."""

    sequence_number: int
    payload: memoryview
    header_length: int


@dataclass(slots=True)
class _Segment:
    path: Path
    base_offset: int
    base_sequence: int
    size: int = 0  # bytes of records after the segment header
    count: int = 0
    first_enqueued_ms: int = 0
    last_enqueued_ms: int = 0

    def position(self, offset: int) -> int:
        return SEGMENT_HEADER.size + offset - self.base_offset


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class PartitionLog:
    """One partition's events: append, look up by position, read, trim, flush."""

    def __init__(self, directory: Path, settings: LogSettings | None = None) -> None:
        self.directory = directory
        self._settings = settings or LogSettings()
        self._segments: list[_Segment] = []
        self._offsets = array("q")  # offset of each retained event, by sequence - first
        self._times = array("q")  # enqueued ms of each retained event
        self._first_sequence = 0
        self._next_sequence = 0
        self._next_offset = 0
        self._last_offset = -1
        self._last_enqueued_ms = NEVER_ENQUEUED_MS
        self._write_fd = -1
        self._readers: OrderedDict[int, int] = OrderedDict()  # base offset -> fd
        self._dirty = False
        try:
            directory.mkdir(parents=True, exist_ok=True)
            self._recover()
        except OSError as e:
            msg = f"cannot open partition log {directory}: {e}; check the --data-dir permissions"
            raise StorageError(msg) from e

    # ------------------------------------------------------------------ state

    @property
    def begin_sequence_number(self) -> int:
        return self._first_sequence

    @property
    def next_sequence_number(self) -> int:
        return self._next_sequence

    def info(self) -> PartitionInfo:
        return PartitionInfo(
            begin_sequence_number=self._first_sequence,
            last_sequence_number=self._next_sequence - 1,
            last_offset=str(self._last_offset),
            last_enqueued_ms=self._last_enqueued_ms,
            is_empty=self._next_sequence == self._first_sequence,
        )

    # ------------------------------------------------------------------ recovery

    def _recover(self) -> None:
        paths = sorted(
            (p for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit()),
            key=lambda p: int(p.stem),
        )
        if len(paths) > 1 and paths[-1].stat().st_size < SEGMENT_HEADER.size:
            # A crash while rolling to a new segment: it holds no events yet.
            _LOG.warning("unfinished segment removed path=%s", paths[-1])
            paths.pop().unlink()
        if not paths:
            self._start_segment(base_offset=0, base_sequence=0)
            return
        for index, path in enumerate(paths):
            self._load_segment(path, is_last=index == len(paths) - 1)
        active = self._segments[-1]
        self._write_fd = os.open(active.path, os.O_RDWR | os.O_APPEND)
        self._first_sequence = self._segments[0].base_sequence
        _LOG.info(
            "partition log recovered dir=%s segments=%d begin=%d next=%d",
            self.directory,
            len(self._segments),
            self._first_sequence,
            self._next_sequence,
        )

    def _load_segment(self, path: Path, *, is_last: bool) -> None:
        data = memoryview(path.read_bytes())
        if len(data) < SEGMENT_HEADER.size:
            raise StorageError(f"segment {path} is shorter than its header; delete the data dir")
        magic, base_offset, base_sequence, prev_offset, prev_ms = SEGMENT_HEADER.unpack_from(data)
        if magic != SEGMENT_MAGIC or base_offset != int(path.stem):
            raise StorageError(f"{path} is not an emulator segment; delete the data dir")
        if self._segments and (base_offset, base_sequence) != (
            self._next_offset,
            self._next_sequence,
        ):
            msg = (
                f"segment {path} does not continue the previous one (offset {self._next_offset},"
                f" sequence {self._next_sequence}); the data dir is damaged, delete it"
            )
            raise StorageError(msg)
        if not self._segments:
            self._last_offset, self._last_enqueued_ms = prev_offset, prev_ms
            self._next_offset, self._next_sequence = base_offset, base_sequence
        segment = _Segment(path, base_offset, base_sequence)
        pos = SEGMENT_HEADER.size
        while pos < len(data):
            record_end = self._check_record(data, pos, self._next_sequence)
            if record_end is None:
                break
            enqueued_ms = RECORD_HEADER.unpack_from(data, pos)[3]
            self._track(segment, record_end - pos, enqueued_ms)
            pos = record_end
        if pos < len(data):
            if not is_last:
                msg = f"segment {path} is damaged at byte {pos}; the data dir must be deleted"
                raise StorageError(msg)
            _LOG.warning(
                "torn write cut off path=%s at=%d dropped_bytes=%d", path, pos, len(data) - pos
            )
            with path.open("r+b") as f:
                f.truncate(pos)
        self._segments.append(segment)

    @staticmethod
    def _check_record(data: memoryview, pos: int, expected_sequence: int) -> int | None:
        """End of the valid record at `pos`, or None if it is torn or damaged."""
        if len(data) - pos < RECORD_HEADER.size:
            return None
        length, crc, sequence, _, header_length = RECORD_HEADER.unpack_from(data, pos)
        end = pos + length
        if length < RECORD_HEADER.size or end > len(data) or sequence != expected_sequence:
            return None
        if header_length > length - RECORD_HEADER.size:
            return None
        if zlib.crc32(data[pos + _CRC_START : end]) != crc:
            return None
        return int(end)

    def _track(self, segment: _Segment, length: int, enqueued_ms: int) -> None:
        """Account for the record of `length` bytes just stored at the end of `segment`."""
        if segment.count == 0:
            segment.first_enqueued_ms = enqueued_ms
        segment.count += 1
        segment.size += length
        segment.last_enqueued_ms = enqueued_ms
        self._offsets.append(self._next_offset)
        self._times.append(enqueued_ms)
        self._last_offset = self._next_offset
        self._last_enqueued_ms = enqueued_ms
        self._next_offset += length
        self._next_sequence += 1

    # ------------------------------------------------------------------ writing

    def _start_segment(self, *, base_offset: int, base_sequence: int) -> None:
        path = self.directory / f"{base_offset:020d}{SEGMENT_SUFFIX}"
        header = SEGMENT_HEADER.pack(
            SEGMENT_MAGIC, base_offset, base_sequence, self._last_offset, self._last_enqueued_ms
        )
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o644)
        _write_all(fd, header)
        os.fsync(fd)
        _fsync_dir(self.directory)
        if self._write_fd >= 0:
            os.fsync(self._write_fd)
            os.close(self._write_fd)
        self._write_fd = fd
        self._dirty = False
        self._segments.append(_Segment(path, base_offset, base_sequence))
        self._next_offset, self._next_sequence = base_offset, base_sequence
        if len(self._segments) == 1:
            self._first_sequence = base_sequence

    def _roll_if_due(self, now_ms: int) -> None:
        active = self._segments[-1]
        if active.count == 0:
            return
        too_big = active.size >= self._settings.segment_max_bytes
        too_old = now_ms - active.first_enqueued_ms >= self._settings.segment_max_age_ms
        if too_big or too_old:
            self._start_segment(base_offset=self._next_offset, base_sequence=self._next_sequence)

    def append(self, events: Sequence[messages.IncomingEvent], now_ms: int) -> int:
        """Write events with one write call; return the sequence number of the first."""
        first_sequence = self._next_sequence
        if not events:
            return first_sequence
        try:
            self._roll_if_due(now_ms)
            enqueued_ms = max(now_ms, self._last_enqueued_ms)
            chunk = bytearray()
            lengths = []
            offset = self._next_offset
            for sequence, event in enumerate(events, start=first_sequence):
                payload, header_length = messages.stamp(event, sequence, str(offset), enqueued_ms)
                body = _RECORD_TAIL.pack(sequence, enqueued_ms, header_length) + payload
                length = RECORD_HEADER.size + len(payload)
                chunk += _RECORD_HEAD.pack(length, zlib.crc32(body))
                chunk += body
                lengths.append(length)
                offset += length
            _write_all(self._write_fd, chunk)
            if self._settings.fsync_each_append:
                os.fsync(self._write_fd)
        except OSError as e:
            raise StorageError(f"cannot append to {self.directory}: {e}") from e
        active = self._segments[-1]
        for length in lengths:
            self._track(active, length, enqueued_ms)
        self._dirty = True
        return first_sequence

    def flush(self) -> None:
        """fsync what was written since the last flush."""
        if self._dirty and self._write_fd >= 0:
            os.fsync(self._write_fd)
            self._dirty = False

    # ------------------------------------------------------------------ positions

    def seek_offset(self, offset: int, *, inclusive: bool) -> int:
        """Sequence number of the first event at (inclusive) or after `offset`."""
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return self._first_sequence + find(self._offsets, offset)

    def seek_time(self, enqueued_ms: int, *, inclusive: bool) -> int:
        """Sequence number of the first event enqueued at (inclusive) or after `enqueued_ms`."""
        find = bisect.bisect_left if inclusive else bisect.bisect_right
        return self._first_sequence + find(self._times, enqueued_ms)

    def clamp(self, sequence_number: int) -> int:
        """`sequence_number` moved into [begin, next]: trimmed events are skipped."""
        return min(max(sequence_number, self._first_sequence), self._next_sequence)

    # ------------------------------------------------------------------ reading

    def read(self, sequence_number: int, max_count: int, max_bytes: int) -> list[StoredEvent]:
        """Up to `max_count` events from `sequence_number` on, in one read from one segment.

        At least one event is returned when any is available, even if it exceeds `max_bytes`.
        """
        sequence_number = self.clamp(sequence_number)
        if sequence_number >= self._next_sequence or max_count <= 0:
            return []
        segment = self._segments[
            bisect.bisect_right(self._segments, sequence_number, key=lambda s: s.base_sequence) - 1
        ]
        first = sequence_number - self._first_sequence
        stop = min(first + max_count, segment.base_sequence + segment.count - self._first_sequence)
        start_offset = self._offsets[first]
        limit = bisect.bisect_right(self._offsets, start_offset + max_bytes, first + 1, stop)
        stop = max(first + 1, min(stop, limit))
        end_offset = self._offsets[stop] if stop < len(self._offsets) else self._next_offset
        try:
            data = os.pread(
                self._reader(segment), end_offset - start_offset, segment.position(start_offset)
            )
        except OSError as e:
            raise StorageError(f"cannot read {segment.path}: {e}") from e
        view = memoryview(data)
        events = []
        pos = 0
        for sequence in range(sequence_number, sequence_number + stop - first):
            length, _, _, _, header_length = RECORD_HEADER.unpack_from(view, pos)
            events.append(
                StoredEvent(sequence, view[pos + RECORD_HEADER.size : pos + length], header_length)
            )
            pos += length
        return events

    def _reader(self, segment: _Segment) -> int:
        if segment is self._segments[-1]:
            return self._write_fd
        fd = self._readers.pop(segment.base_offset, None)
        if fd is None:
            fd = os.open(segment.path, os.O_RDONLY)
            if len(self._readers) >= _OPEN_READERS:
                os.close(self._readers.popitem(last=False)[1])
        self._readers[segment.base_offset] = fd
        return fd

    # ------------------------------------------------------------------ retention

    def trim(self, cutoff_ms: int) -> int:
        """Delete segments whose newest event is older than `cutoff_ms`; return events dropped."""
        active = self._segments[-1]
        if active.count and active.last_enqueued_ms < cutoff_ms:
            # Roll so the expired active segment becomes deletable; the new one is empty.
            self._start_segment(base_offset=self._next_offset, base_sequence=self._next_sequence)
        dropped_segments = 0
        dropped_events = 0
        for segment in self._segments[:-1]:
            if segment.count and segment.last_enqueued_ms >= cutoff_ms:
                break
            fd = self._readers.pop(segment.base_offset, None)
            if fd is not None:
                os.close(fd)
            segment.path.unlink(missing_ok=True)
            dropped_segments += 1
            dropped_events += segment.count
        if not dropped_segments:
            return 0
        del self._segments[:dropped_segments]
        del self._offsets[:dropped_events]
        del self._times[:dropped_events]
        self._first_sequence = self._segments[0].base_sequence
        _fsync_dir(self.directory)
        _LOG.info(
            "retention trimmed dir=%s segments=%d events=%d begin=%d",
            self.directory,
            dropped_segments,
            dropped_events,
            self._first_sequence,
        )
        return dropped_events

    def close(self) -> None:
        """fsync and close every file."""
        self.flush()
        for fd in self._readers.values():
            os.close(fd)
        self._readers.clear()
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
