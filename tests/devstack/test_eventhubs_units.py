"""Fast tests of the Event Hubs emulator's pure parts, checked against the SDK's own code.

The SDK's decoder and encoder are the reference: what the emulator writes
must decode with them exactly as the service's bytes would.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from azure.eventhub._pyamqp import _decode as sdk_decode
from azure.eventhub._pyamqp import _encode as sdk_encode
from azure.eventhub._pyamqp.endpoints import Source, Target
from azure.eventhub._pyamqp.message import BatchMessage, Message, Properties
from azure.eventhub._pyamqp.performatives import (
    AttachFrame,
    CloseFrame,
    DetachFrame,
    DispositionFrame,
    OpenFrame,
    TransferFrame,
)

from adapters.partition_hash import partition_index
from devstack.eventhubs import amqp_codec as codec
from devstack.eventhubs import auth, frames, management, messages, positions
from devstack.eventhubs.broker import Broker
from devstack.eventhubs.config import DEFAULT_CONSUMER_GROUP, load_config, parse_config
from devstack.eventhubs.errors import AmqpDecodeError, ConfigError, StorageError
from devstack.eventhubs.storage import (
    NEVER_ENQUEUED_MS,
    DataDirLock,
    LogSettings,
    PartitionLog,
)
from devstack.settings import eventhubs_emulator_connection_string, parse_connection_string

ROOT = Path(__file__).resolve().parents[2]

# ------------------------------------------------------------------------------ codec


def test_codec_decodes_what_the_sdk_encodes() -> None:
    value = {
        "s": "text",
        "n": -5,
        "big": 2**30,
        "list": [1, "two", None, True],
        "bytes": b"\x00\x01",
    }
    buffer = bytearray()
    sdk_encode.encode_value(buffer, value)
    encoded = bytes(buffer)
    decoded, end = codec.decode(encoded)
    assert end == len(encoded)
    assert decoded == {
        "s": "text",
        "n": -5,
        "big": 2**30,
        "list": [1, "two", None, True],
        "bytes": b"\x00\x01",
    }
    assert codec.skip(encoded, 0) == len(encoded)


def test_codec_encodings_decode_in_the_sdk() -> None:
    pairs = (
        codec.encode_symbol("k1")
        + codec.encode_long(-7)
        + codec.encode_symbol("k2")
        + codec.encode_string("é" * 300)
        + codec.encode_symbol("k3")
        + codec.encode_timestamp(1_700_000_000_123)
    )
    encoded = codec.encode_map32(pairs, 3)
    _, value = sdk_decode._DECODE_BY_CONSTRUCTOR[encoded[0]](memoryview(encoded)[1:])
    assert value == {b"k1": -7, b"k2": ("é" * 300).encode(), b"k3": 1_700_000_000_123}


def test_codec_rejects_truncated_and_unknown_input() -> None:
    with pytest.raises(AmqpDecodeError):
        codec.skip(b"\xa1\x05ab", 0)
    with pytest.raises(AmqpDecodeError):
        codec.skip(b"\x01", 0)
    with pytest.raises(AmqpDecodeError):
        codec.decode(b"\x81\x00\x00")


# ------------------------------------------------------------------------------ frame padding


def _truncated_frame(
    code: int, fields: list[bytes], channel: int = 0, payload: bytes = b""
) -> bytes:
    """A frame the way proton writes it: a list8 holding only the fields up to the last set one."""
    body = b"".join(fields)
    performative = (
        b"\x00\x53" + bytes((code,)) + b"\xc0" + bytes((len(body) + 1, len(fields))) + body
    )
    return (
        struct.pack(">IBBH", 8 + len(performative) + len(payload), 2, 0, channel)
        + performative
        + payload
    )


def _sdk_fields(frame: bytes) -> tuple[int, list[object]]:
    return sdk_decode.decode_frame(memoryview(frame)[8:])


def test_padded_transfer_puts_the_payload_where_the_sdk_reads_it() -> None:
    payload = b"\x00\x53\x75\xa0\x03abc"
    frame = _truncated_frame(
        0x14,
        [b"\x43", b"\x52\x07", b"\xa0\x01\x09", b"\x43", b"\x41"],
        payload=payload,
    )
    kind, broken = _sdk_fields(frame)
    assert broken[5] == memoryview(payload)  # without padding the payload lands in "more"
    padded = frames.pad_frame(frame)
    assert struct.unpack_from(">I", padded)[0] == len(padded)
    kind, fields = _sdk_fields(padded)
    assert kind == 0x14
    assert len(fields) == 12
    transfer = TransferFrame(*fields[:11], payload=fields[11])
    assert transfer.delivery_id == 7
    assert transfer.settled is True
    assert transfer.more is None
    assert bytes(fields[11]) == payload


def test_padded_attach_has_full_source_target_and_sdk_accepts_it() -> None:
    source = b"\x00\x53\x28\xc0\x05\x01\xa1\x02$x"  # source list with only the address
    target = b"\x00\x53\x29\x45"  # target as list0
    frame = _truncated_frame(
        0x12, [b"\xa1\x01n", b"\x43", b"\x42", b"\x50\x00", b"\x50\x00", source, target]
    )
    with pytest.raises(TypeError):
        AttachFrame(*_sdk_fields(frame)[1])
    _, fields = _sdk_fields(frames.pad_frame(frame))
    attach = AttachFrame(*fields)
    assert Source(*attach.source).address == b"$x"
    assert len(attach.source) == 11
    assert len(attach.target) == 7
    Target(*attach.target)


def test_padded_detach_error_has_condition_description_and_info() -> None:
    error = b"\x00\x53\x1d\xc0\x10\x01\xa3\x0eamqp:link:stol"
    frame = _truncated_frame(0x16, [b"\x43", b"\x41", error])
    _, fields = _sdk_fields(frames.pad_frame(frame))
    detach = DetachFrame(*fields)
    assert detach.error == [b"amqp:link:stol", None, None]


def test_padded_rejected_disposition_reads_like_the_sdk_client_expects() -> None:
    error = b"\x00\x53\x1d\xc0\x22\x01\xa3\x1famqp:link:message-size-exceeded"
    rejected = b"\x00\x53\x25\xc0" + bytes((len(error) + 1, 1)) + error
    frame = _truncated_frame(0x15, [b"\x41", b"\x43", b"\x43", b"\x41", rejected])
    _, fields = _sdk_fields(frames.pad_frame(frame))
    disposition = DispositionFrame(*fields)
    state = disposition.state
    assert state["rejected"][0][0] == b"amqp:link:message-size-exceeded"
    assert state["rejected"][0][1] is None and state["rejected"][0][2] is None


def test_complete_frames_and_heartbeats_pass_unchanged() -> None:
    heartbeat = struct.pack(">IBBH", 8, 2, 0, 0)
    assert frames.pad_frame(heartbeat) == heartbeat
    full = _truncated_frame(0x18, [b"\x40"])  # close with its one field present
    assert frames.pad_frame(full) == full


def test_outbound_padder_handles_split_and_joined_frames() -> None:
    a = _truncated_frame(0x16, [b"\x43"])
    b = _truncated_frame(0x17, [])
    stream = b"AMQP\x00\x01\x00\x00" + a + b
    padder = frames.OutboundFramePadder()
    out = padder.feed(stream[:5]) + padder.feed(stream[5:20]) + padder.feed(stream[20:])
    assert out.startswith(b"AMQP\x00\x01\x00\x00")
    first = out[8:]
    size = struct.unpack_from(">I", first)[0]
    assert len(_sdk_fields(first[:size])[1]) == 3
    assert len(_sdk_fields(first[size:])[1]) == 1


def _sdk_frame(performative: object, channel: int = 0) -> bytes:
    header, body = sdk_encode.encode_frame(performative)
    assert body is not None
    return bytes(header) + struct.pack(">H", channel) + bytes(body)


def test_inbound_scanner_lowers_max_frame_size_and_reads_formats_and_capabilities() -> None:
    scanner = frames.InboundScanner()
    open_frame = _sdk_frame(OpenFrame("c", "h", 65536, 9, None, None, None, None, None, None))
    rewritten = scanner.feed(b"AMQP\x00\x01\x00\x00" + open_frame)
    _, fields = _sdk_fields(rewritten[8:])
    assert fields[2] == 65536 - frames.PADDING_HEADROOM
    assert fields[0] == b"c"
    send_attach = AttachFrame(
        name="sender",
        handle=3,
        role=False,
        send_settle_mode=0,
        rcv_settle_mode=0,
        source=Source(address="s"),
        target=Target(address="hub"),
        unsettled=None,
        incomplete_unsettled=None,
        initial_delivery_count=0,
        max_message_size=None,
        offered_capabilities=None,
        desired_capabilities=None,
        properties=None,
    )
    receive_attach = send_attach._replace(
        name="receiver", handle=4, role=True, desired_capabilities=[b"com.microsoft:x"]
    )
    transfer = TransferFrame(
        handle=3,
        delivery_id=0,
        delivery_tag=b"\x00\x00\x00\x80",  # not valid UTF-8: proton's Python tag would fail here
        message_format=messages.BATCH_MESSAGE_FORMAT,
        settled=False,
        more=False,
        payload=b"",
    )
    data = _sdk_frame(send_attach, 1) + _sdk_frame(receive_attach, 1) + _sdk_frame(transfer, 1)
    assert scanner.feed(data[:7]) == b""
    assert scanner.feed(data[7:]) == data
    assert scanner.message_format("sender", b"\x00\x00\x00\x80") == messages.BATCH_MESSAGE_FORMAT
    assert scanner.message_format("sender", b"\x00\x00\x00\x80") == 0  # consumed
    assert scanner.desired_capabilities("receiver") == frozenset({"com.microsoft:x"})


def test_inbound_scanner_passes_the_same_bytes_whatever_the_reads() -> None:
    """Headers and frames cut at every byte come out whole, in order, and unchanged."""
    close = _sdk_frame(CloseFrame(None))
    stream = b"AMQP\x00\x01\x00\x00" + close + close
    scanner = frames.InboundScanner()
    out = b"".join(scanner.feed(stream[i : i + 1]) for i in range(len(stream)))
    assert out == stream
    assert scanner.violation is None


# ------------------------------------------------------------------------------ messages


def _sdk_message(body: bytes, **kwargs: object) -> bytes:
    return _encoded(Message(data=[body], **kwargs))


def _encoded(message: object) -> bytes:
    buffer = bytearray()
    sdk_encode.encode_payload(buffer, message)
    return bytes(buffer)


def test_stamped_event_decodes_in_the_sdk_with_broker_annotations() -> None:
    raw = _sdk_message(
        b"payload",
        properties=Properties(message_id="m-1", content_type="application/json"),
        application_properties={"format": "envelope"},
        message_annotations={"x-opt-partition-key": "conv-1", "x-opt-offset": "forged"},
        delivery_annotations={"hop": 1},
    )
    event = messages.parse_event(raw)
    assert event.partition_key == "conv-1"
    stamped, header_length = messages.stamp(event, 41, "12345", 1_700_000_000_000)
    assert header_length == 0
    decoded = sdk_decode.decode_payload(memoryview(stamped))
    annotations = decoded.message_annotations
    assert annotations[b"x-opt-sequence-number"] == 41
    assert annotations[b"x-opt-offset"] == b"12345"  # a string, as EventData.offset needs
    assert annotations[b"x-opt-enqueued-time"] == 1_700_000_000_000
    assert annotations[b"x-opt-partition-key"] == b"conv-1"
    # The SDK writes delivery annotations last; the service keeps them there, and so do we.
    assert decoded.delivery_annotations == {b"hop": 1}
    assert decoded.data == [b"payload"]
    assert decoded.properties.message_id == b"m-1"
    assert decoded.application_properties == {b"format": b"envelope"}


def test_batch_transfer_is_unpacked_into_its_events() -> None:
    inner = [
        Message(data=[f"e{i}".encode()], message_annotations={"x-opt-partition-key": "k"})
        for i in range(3)
    ]
    batch = BatchMessage(
        data=[_encoded(m) for m in inner], message_annotations={"x-opt-partition-key": "k"}
    )
    raw = _encoded(batch)
    transfer = messages.parse_transfer(raw, messages.BATCH_MESSAGE_FORMAT)
    assert transfer.partition_key == "k"
    bodies = []
    for event in transfer.events:
        stamped, _ = messages.stamp(event, 0, "0", 0)
        bodies.append(sdk_decode.decode_payload(memoryview(stamped)).data)
    assert bodies == [[b"e0"], [b"e1"], [b"e2"]]
    # The same bytes with message-format 0 are one event whose body is the encoded messages.
    assert len(messages.parse_transfer(raw, 0).events) == 1


def test_header_is_kept_and_runtime_metrics_splice_after_it() -> None:
    from azure.eventhub._pyamqp.message import Header

    raw = _encoded(Message(data=[b"x"], header=Header(durable=True)))
    stamped, header_length = messages.stamp(messages.parse_event(raw), 1, "2", 3)
    assert header_length > 0
    metrics = messages.runtime_metrics(9, "99", 5, 6)
    decoded = sdk_decode.decode_payload(
        memoryview(stamped[:header_length] + metrics + stamped[header_length:])
    )
    assert decoded.header.durable is True
    assert decoded.delivery_annotations == {
        b"last_enqueued_sequence_number": 9,
        b"last_enqueued_offset": b"99",
        b"last_enqueued_time_utc": 5,
        b"runtime_info_retrieval_time_utc": 6,
    }


def test_key_from_the_batch_is_stamped_on_events_without_one() -> None:
    event = messages.parse_event(_sdk_message(b"x"))
    keyed = messages.with_partition_key(event, "abc")
    decoded = sdk_decode.decode_payload(memoryview(messages.stamp(keyed, 0, "0", 0)[0]))
    assert decoded.message_annotations[b"x-opt-partition-key"] == b"abc"


def test_garbage_is_a_decode_error() -> None:
    with pytest.raises(AmqpDecodeError):
        messages.parse_event(b"not amqp")
    with pytest.raises(AmqpDecodeError):
        messages.parse_event(_sdk_message(b"payload")[:-2])


# ------------------------------------------------------------------------------ positions


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("amqp.annotation.x-opt-offset > '-1'", ("offset", "-1", False)),
        ("amqp.annotation.x-opt-offset >= '@latest'", ("offset", "@latest", True)),
        ("amqp.annotation.x-opt-sequence-number > '17'", ("sequence", "17", False)),
        ("AMQP.ANNOTATION.X-OPT-ENQUEUED-TIME >= '1700000000000'", ("time", "1700000000000", True)),
    ],
)
def test_selector_filters_parse(expression: str, expected: tuple[str, str, bool]) -> None:
    position = positions.parse_selector(expression)
    assert (position.kind, position.value, position.inclusive) == expected


@pytest.mark.parametrize(
    "expression",
    ["amqp.annotation.x-opt-offset < '1'", "amqp.annotation.x-opt-sequence-number > 'ten'", "1=1"],
)
def test_bad_selector_filters_name_the_problem(expression: str) -> None:
    with pytest.raises(ValueError, match=r"selector|integer"):
        positions.parse_selector(expression)


# ------------------------------------------------------------------------------ storage


class FakeClock:
    def __init__(self, now_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = now_ms

    def advance(self, ms: int) -> int:
        self.now_ms += ms
        return self.now_ms

    def __call__(self) -> int:
        return self.now_ms


def _events(n: int, prefix: str = "e") -> list[messages.IncomingEvent]:
    return [messages.parse_event(_sdk_message(f"{prefix}{i}".encode())) for i in range(n)]


def _bodies(log: PartitionLog, start: int) -> list[bytes]:
    """Every body from `start` to the end (reads stop at segment ends, so read until dry)."""
    bodies = []
    while batch := log.read(start, 1000, 10**9):
        for event in batch:
            bodies.append(sdk_decode.decode_payload(memoryview(bytes(event.payload))).data[0])
        start = batch[-1].sequence_number + 1
    return bodies


def test_empty_log_reports_the_service_empty_values(tmp_path: Path) -> None:
    info = PartitionLog(tmp_path / "p").info()
    assert (info.begin_sequence_number, info.last_sequence_number, info.last_offset) == (
        0,
        -1,
        "-1",
    )
    assert info.last_enqueued_ms == NEVER_ENQUEUED_MS
    assert info.is_empty


def test_append_read_and_seek(tmp_path: Path) -> None:
    clock = FakeClock()
    log = PartitionLog(tmp_path / "p")
    assert log.append(_events(3, "a"), clock.now_ms) == 0
    assert log.append(_events(2, "b"), clock.advance(10)) == 3
    read = log.read(0, 100, 10**9)
    assert [e.sequence_number for e in read] == [0, 1, 2, 3, 4]
    offsets = [
        int(
            sdk_decode.decode_payload(memoryview(bytes(e.payload))).message_annotations[
                b"x-opt-offset"
            ]
        )
        for e in read
    ]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert log.seek_offset(offsets[2], inclusive=True) == 2
    assert log.seek_offset(offsets[2], inclusive=False) == 3
    assert log.seek_time(clock.now_ms, inclusive=True) == 3
    assert log.seek_time(clock.now_ms - 10, inclusive=False) == 3
    assert log.seek_time(clock.now_ms + 1, inclusive=True) == 5
    assert _bodies(log, 3) == [b"b0", b"b1"]
    assert len(log.read(0, 2, 10**9)) == 2
    assert len(log.read(0, 100, 1)) >= 1  # byte limit still yields progress
    info = log.info()
    assert (info.last_sequence_number, info.last_offset) == (4, str(offsets[-1]))


def test_restart_recovers_sequence_numbers_offsets_and_bodies(tmp_path: Path) -> None:
    clock = FakeClock()
    log = PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=300))
    for i in range(10):
        log.append(_events(2, f"r{i}-"), clock.advance(1))
    before = log.info()
    log.close()
    assert len(list((tmp_path / "p").glob("*.seg"))) > 1
    again = PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=300))
    assert again.info() == before
    assert _bodies(again, 0)[:3] == [b"r0-0", b"r0-1", b"r1-0"]
    assert again.append(_events(1, "new"), clock.advance(1)) == 20
    assert _bodies(again, 20) == [b"new0"]


def test_torn_tail_is_cut_off_on_recovery(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "p")
    log.append(_events(3), 1)
    log.close()
    segment = next((tmp_path / "p").glob("*.seg"))
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])  # a crash in the middle of the last record
    again = PartitionLog(tmp_path / "p")
    assert again.info().last_sequence_number == 1
    assert again.append(_events(1, "after"), 2) == 2
    assert _bodies(again, 0) == [b"e0", b"e1", b"after0"]


def test_crash_while_rolling_a_segment_is_recovered(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=100))
    log.append(_events(2), 1)
    log.close()
    (tmp_path / "p" / f"{10**9:020d}.seg").write_bytes(b"EHSEG")  # header cut short
    again = PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=100))
    assert again.append(_events(1, "x"), 2) == 2
    assert _bodies(again, 0) == [b"e0", b"e1", b"x0"]


def test_damaged_middle_segment_is_a_storage_error(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=100))
    for i in range(4):
        log.append(_events(1), i)
    log.close()
    first = sorted((tmp_path / "p").glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[-3] ^= 0xFF
    first.write_bytes(bytes(data))
    with pytest.raises(StorageError, match="damaged"):
        PartitionLog(tmp_path / "p", LogSettings(segment_max_bytes=100))


def test_retention_trims_whole_old_segments_and_keeps_numbering(tmp_path: Path) -> None:
    clock = FakeClock()
    settings_ = LogSettings(segment_max_age_ms=1000)
    log = PartitionLog(tmp_path / "p", settings_)
    log.append(_events(3, "old"), clock.now_ms)
    log.append(_events(2, "mid"), clock.advance(1500))  # rolls: "old" is in a closed segment
    assert log.trim(clock.now_ms - 1000) == 3
    assert log.begin_sequence_number == 3
    assert _bodies(log, 0) == [b"mid0", b"mid1"]  # reads of trimmed positions start at begin
    clock.advance(5000)
    assert log.trim(clock.now_ms - 1000) == 2  # the expired active segment rolls and goes too
    info = log.info()
    assert info.is_empty and info.begin_sequence_number == 5 and info.last_sequence_number == 4
    last_offset = info.last_offset
    log.close()
    again = PartitionLog(tmp_path / "p", settings_)
    assert again.info() == info
    assert again.append(_events(1, "new"), clock.now_ms) == 5
    assert int(again.info().last_offset) > int(last_offset)


def test_a_data_dir_serves_one_emulator_at_a_time(tmp_path: Path) -> None:
    first = DataDirLock(tmp_path)
    first.acquire()
    with pytest.raises(StorageError, match="in use by another emulator"):
        DataDirLock(tmp_path).acquire()
    first.release()
    second = DataDirLock(tmp_path)
    second.acquire()
    second.release()


def test_fsync_each_append_still_appends(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "p", LogSettings(fsync_each_append=True))
    assert log.append(_events(2), 1) == 0
    assert _bodies(log, 0) == [b"e0", b"e1"]


# ------------------------------------------------------------------------------ broker


class FakeReceiver:
    def __init__(self, owner_level: int | None) -> None:
        self.owner_level = owner_level
        self.notified = 0
        self.disconnected: str | None = None

    def on_events_available(self) -> None:
        self.notified += 1

    def disconnect(self, condition: str, description: str) -> None:
        self.disconnected = condition


def _broker(tmp_path: Path) -> Broker:
    document = {
        "UserConfig": {
            "NamespaceConfig": [
                {
                    "Type": "EventHub",
                    "Name": "ns",
                    "Entities": [{"Name": "hub", "PartitionCount": "2", "ConsumerGroups": []}],
                }
            ]
        }
    }
    return Broker(parse_config(document), tmp_path, retention_ms=3_600_000, clock=FakeClock())


def test_owner_levels_steal_refuse_and_limit(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    hub = broker.config.hubs[0]
    plain = [FakeReceiver(None) for _ in range(6)]
    assert [broker.attach_receiver(hub, "$Default", 0, r) for r in plain[:5]] == [None] * 5
    limit = broker.attach_receiver(hub, "$default", 0, plain[5])  # group names ignore case
    assert limit is not None and limit.condition == "amqp:resource-limit-exceeded"
    assert broker.attach_receiver(hub, "other", 0, FakeReceiver(None)) is None

    owner = FakeReceiver(3)
    assert broker.attach_receiver(hub, "$Default", 0, owner) is None
    assert {r.disconnected for r in plain[:5]} == {"amqp:link:stolen"}
    lower = broker.attach_receiver(hub, "$Default", 0, FakeReceiver(2))
    assert lower is not None and lower.condition == "amqp:link:stolen"
    without = broker.attach_receiver(hub, "$Default", 0, FakeReceiver(None))
    assert without is not None and "without epoch" in without.description
    equal = FakeReceiver(3)
    assert broker.attach_receiver(hub, "$Default", 0, equal) is None
    assert owner.disconnected == "amqp:link:stolen"
    assert broker.receiver_count(hub, 0) == 2  # `equal`, and the one in group "other"
    broker.close()


def test_publish_routes_and_notifies(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    hub = broker.config.hubs[0]
    watcher = FakeReceiver(None)
    broker.attach_receiver(hub, "$Default", 1, watcher)
    keyless = messages.Transfer(_events(1), None)
    assert [broker.publish(hub, None, keyless)[0] for _ in range(4)] == [0, 1, 0, 1]
    assert watcher.notified == 2
    keyed = messages.Transfer(_events(2), "conversation-7")
    partition, first = broker.publish(hub, None, keyed)
    assert partition == partition_index("conversation-7", 2)
    assert broker.publish(hub, 0, keyless) == (0, broker.log(hub, 0).next_sequence_number - 1)
    stored = broker.log(hub, partition).read(first, 2, 10**9)
    keys = {
        sdk_decode.decode_payload(memoryview(bytes(e.payload))).message_annotations[
            b"x-opt-partition-key"
        ]
        for e in stored
    }
    assert keys == {b"conversation-7"}
    broker.detach_receiver(hub, "$Default", 1, watcher)
    assert broker.receiver_count(hub, 1) == 0
    broker.close()


# ------------------------------------------------------------------------------ config


def test_shipped_config_has_the_project_hubs() -> None:
    config = load_config(ROOT / "devstack" / "eventhubs.config.json")
    hub = config.hub("GENESYS-EVENTS")
    assert hub is not None and hub.partition_count == 4
    assert hub.consumer_group("$default") == DEFAULT_CONSUMER_GROUP
    test_hub = config.hub("test-events")
    assert test_hub is not None and test_hub.partition_ids == ["0", "1"]


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({}, "UserConfig"),
        ({"UserConfig": {"NamespaceConfig": []}}, "exactly one namespace"),
        (
            {
                "UserConfig": {
                    "NamespaceConfig": [
                        {
                            "Type": "EventHub",
                            "Name": "n",
                            "Entities": [{"Name": "h", "PartitionCount": "x"}],
                        }
                    ]
                }
            },
            "not a number",
        ),
        (
            {
                "UserConfig": {
                    "NamespaceConfig": [
                        {
                            "Type": "EventHub",
                            "Name": "n",
                            "Entities": [{"Name": "h", "PartitionCount": 40}],
                        }
                    ]
                }
            },
            "between 1 and 32",
        ),
        (
            {
                "UserConfig": {
                    "NamespaceConfig": [
                        {
                            "Type": "EventHub",
                            "Name": "n",
                            "Entities": [
                                {"Name": "h", "PartitionCount": 1},
                                {"Name": "H", "PartitionCount": 1},
                            ],
                        }
                    ]
                }
            },
            "unique",
        ),
    ],
)
def test_bad_configs_say_what_is_wrong(document: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(document)


def test_unreadable_config_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "Config.json"
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.json")
    assert json.loads((ROOT / "devstack" / "eventhubs.config.json").read_text())["UserConfig"]


# ------------------------------------------------------------------------------ the door


def _scan(
    *chunks: bytes, max_frame_size: int = 1024
) -> tuple[bytes, frames.ProtocolViolation | None]:
    scanner = frames.InboundScanner(max_frame_size=max_frame_size)
    passed = b"".join(scanner.feed(chunk) for chunk in chunks)
    return passed, scanner.violation


def _raw_frame(body: bytes, frame_type: int = 0) -> bytes:
    return struct.pack(">IBBH", 8 + len(body), 2, frame_type, 0) + body


@pytest.mark.parametrize(
    "first",
    [b"\x16\x03\x01\x02\x00", b"G", b"AMQX", b"AMQP\x02\x01\x00\x00", b"AMQP\x00\x02\x00\x00"],
)
def test_anything_but_a_protocol_header_first_is_not_amqp(first: bytes) -> None:
    passed, violation = _scan(first)
    assert passed == b""
    assert violation is not None and violation.kind == "not-amqp"


def test_a_header_arriving_byte_by_byte_is_waited_for_then_passed() -> None:
    header = frames.SASL_HEADER
    passed, violation = _scan(*(header[i : i + 1] for i in range(8)))
    assert (passed, violation) == (header, None)


def test_sasl_frames_then_the_amqp_header_then_frames_pass_in_any_chunking() -> None:
    stream = (
        frames.SASL_HEADER
        + _raw_frame(b"\x00\x53\x41\x45", frames.SASL_FRAME)
        + frames.AMQP_HEADER
        + _raw_frame(b"")
        + _raw_frame(b"x" * 100)
    )
    for cut in range(1, len(stream)):
        passed, violation = _scan(stream[:cut], stream[cut:])
        assert (passed, violation) == (stream, None), cut


@pytest.mark.parametrize("size", [0, 7, 1025, 0x414D5150, 0xFFFFFFFF])
def test_frame_sizes_outside_8_to_max_stop_the_scan_without_buffering(size: int) -> None:
    scanner = frames.InboundScanner(max_frame_size=1024)
    assert scanner.feed(frames.AMQP_HEADER) == frames.AMQP_HEADER
    assert scanner.feed(struct.pack(">IBBH", size, 2, 0, 0)) == b""
    violation = scanner.violation
    assert violation is not None and violation.kind == "framing-error"
    assert "1024" in violation.description
    assert scanner.feed(b"more" * 1000) == b""  # nothing accepted after a violation


def test_a_protocol_header_where_a_frame_belongs_is_a_framing_error() -> None:
    # After the AMQP header only frames may follow: "AMQP" read as a size is ~1.1 GB.
    _, violation = _scan(frames.AMQP_HEADER + frames.AMQP_HEADER)
    assert violation is not None and violation.kind == "framing-error"


# ------------------------------------------------------------------------------ auth

_KEY = auth.SharedAccessKey()
_NOW = 1_800_000_000


def _token(
    resource: str = "sb://localhost:5672/hub",
    expiry_s: int = _NOW + 3600,
    key: auth.SharedAccessKey = _KEY,
    **replace: str,
) -> str:
    encoded = quote_plus(resource)
    fields = {
        "sr": encoded,
        "sig": quote_plus(key.sign(encoded, expiry_s)),
        "se": str(expiry_s),
        "skn": key.name,
        **replace,
    }
    return "SharedAccessSignature " + "&".join(f"{k}={v}" for k, v in fields.items())


def test_a_token_signed_with_the_key_is_valid_for_its_resource_and_below() -> None:
    assert auth.verify_token(_token(), _KEY, "sb://127.0.0.1/hub", _NOW) == _NOW + 3600
    below = "amqps://x/HUB/ConsumerGroups/$Default/Partitions/0"
    assert auth.verify_token(_token(), _KEY, below, _NOW) == _NOW + 3600
    namespace_wide = _token("sb://localhost/")
    assert auth.verify_token(namespace_wide, _KEY, "sb://localhost/any", _NOW) == _NOW + 3600


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (_token(key=auth.SharedAccessKey(key="other")), "InvalidSignature"),
        (_token(skn="Nobody"), "no shared access policy 'Nobody'"),
        (_token(expiry_s=_NOW), "ExpiredToken"),
        (_token("sb://localhost/other-hub"), "InvalidAudience"),
        (_token(se="soon"), "MalformedToken"),
        ("Bearer abc", "MalformedToken"),
        ("SharedAccessSignature sr=a&se=1", "has no sig, skn"),
    ],
)
def test_bad_tokens_say_why(token: str, reason: str) -> None:
    with pytest.raises(auth.Unauthorized, match=reason):
        auth.verify_token(token, _KEY, "sb://localhost/hub", _NOW)


def test_a_signature_from_the_javascript_sdk_form_verifies() -> None:
    # encodeURIComponent leaves some characters that quote_plus encodes: sign what is written.
    resource = "sb%3A%2F%2Flocalhost%2Fhub%2FConsumerGroups%2F%24default%2FPartitions%2F0"
    signature = _KEY.sign(resource, _NOW + 60)
    token = (
        f"SharedAccessSignature sr={resource}&sig={quote_plus(signature)}&se={_NOW + 60}"
        f"&skn={_KEY.name}"
    )
    audience = "sb://localhost/hub/ConsumerGroups/$default/Partitions/0"
    assert auth.verify_token(token, _KEY, audience, _NOW) == _NOW + 60


def test_claims_cover_entities_below_until_they_expire() -> None:
    claims = auth.Claims()
    claims.grant("sb://localhost/Hub/consumergroups/$Default", _NOW + 10)
    wanted = ("hub", "consumergroups", "$default", "partitions", "1")
    assert claims.allow(wanted, _NOW)
    assert not claims.allow(wanted, _NOW + 10)
    assert not claims.allow(("hub",), _NOW)
    assert not claims.allow(("hub", "consumergroups", "cg1", "partitions", "1"), _NOW)


def test_cbs_grants_valid_tokens_and_refuses_others_with_401() -> None:
    claims = auth.Claims()
    request = {"operation": "put-token", "name": "sb://localhost/hub", "type": auth.SAS_TOKEN_TYPE}
    assert management.answer_cbs(request, _token(), _KEY, claims, _NOW).status_code == 202
    assert claims.allow(("hub", "partitions", "0"), _NOW)
    refused = management.answer_cbs(request, _token(skn="x"), _KEY, auth.Claims(), _NOW)
    assert (refused.status_code, refused.condition) == (401, None)  # as the service: no condition
    jwt = management.answer_cbs({**request, "type": "jwt"}, "e30.e30.x", _KEY, claims, _NOW)
    assert jwt.status_code == 401 and "shared access signatures" in jwt.description


def test_management_reads_need_authorization_and_name_bad_partitions(tmp_path: Path) -> None:
    broker = _broker(tmp_path)
    read = {"operation": "READ", "type": management.PARTITION_TYPE, "name": "hub"}
    token = _token("sb://localhost/hub")
    ok = management.answer_management(
        broker, {**read, "partition": "1", "security_token": token}, _KEY, auth.Claims(), _NOW
    )
    assert ok.status_code == 200 and ok.body is not None and ok.body["partition"] == "1"
    anonymous = management.answer_management(
        broker, {**read, "partition": "1"}, _KEY, auth.Claims(), _NOW
    )
    assert (anonymous.status_code, anonymous.condition) == (401, "amqp:unauthorized-access")
    claims = auth.Claims()
    claims.grant("sb://localhost/hub/$management", _NOW + 60)  # what the JS SDK puts
    assert (
        management.answer_management(
            broker, {**read, "partition": "0"}, _KEY, claims, _NOW
        ).status_code
        == 200
    )
    for bad in ("2", "99", "boo", ""):
        reply = management.answer_management(
            broker, {**read, "partition": bad, "security_token": token}, _KEY, auth.Claims(), _NOW
        )
        assert (reply.status_code, reply.condition) == (400, "com.microsoft:argument-out-of-range")
        assert "between 0 and 1" in reply.description and repr(bad) in reply.description
    broker.close()


# ------------------------------------------------------------------------------ start positions


def test_starts_past_the_last_event_are_refused_in_the_service_words(tmp_path: Path) -> None:
    log = PartitionLog(tmp_path / "p")
    empty = log.info()
    sequence = positions.parse_selector("amqp.annotation.x-opt-sequence-number >= '0'")
    assert positions.beyond_end(sequence, empty) == (
        "The supplied sequence number '0' is invalid."
        " The last sequence number in the system is '-1'"
    )
    log.append(_events(3), 1_700_000_000_000)
    info = log.info()
    for expression, refused in [
        ("amqp.annotation.x-opt-sequence-number > '2'", False),
        ("amqp.annotation.x-opt-sequence-number >= '3'", True),
        (f"amqp.annotation.x-opt-offset > '{info.last_offset}'", False),
        (f"amqp.annotation.x-opt-offset > '{int(info.last_offset) + 1}'", True),
        ("amqp.annotation.x-opt-offset > '-1'", False),
        ("amqp.annotation.x-opt-offset > '@latest'", False),
        ("amqp.annotation.x-opt-enqueued-time > '99999999999999'", False),  # waits instead
    ]:
        position = positions.parse_selector(expression)
        assert (positions.beyond_end(position, info) is not None) == refused, expression


def test_every_connection_string_the_project_hands_out_carries_the_emulator_key() -> None:
    """The stack, the tests, the simulator and the bench all use these; the emulator checks them."""
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))
    for connection_string in (
        eventhubs_emulator_connection_string(),
        eventhubs_emulator_connection_string(5673),
        example["Values"]["EventHubConnection"],
    ):
        parts = parse_connection_string(connection_string)
        assert (parts["sharedaccesskeyname"], parts["sharedaccesskey"]) == (
            auth.DEFAULT_KEY_NAME,
            auth.DEFAULT_KEY,
        ), connection_string
