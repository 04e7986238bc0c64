"""The ingest worker's MQTT packet parser against hypothesis (issue 14): streams of well-formed packets with at most
one malformed or oversized packet among them, cut into arbitrary reads.

Properties: every message returned is exactly one PUBLISH of the stream (never bytes of two packets), in order, and
nothing after a malformed packet; no acknowledgement for a packet id that was not received; a malformed packet
raises `ProtocolError` (so the connection is dropped); never more than the maximum packet size held in memory.
Seeded (`derandomize`): the same STREAM_EXAMPLES + GARBAGE_EXAMPLES cases every run.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.ingest.mqtt_worker import PacketParser, PacketTooLarge, ProtocolError
from koprogo_iot.mqtt_codec import encode_varint

STREAM_EXAMPLES = 600
GARBAGE_EXAMPLES = 400
MAX_PACKET = 1024  # small, so that oversized announcements and long packets are both cheap to make


@dataclass(frozen=True)
class Published:
    """What the parser must make of one well-formed PUBLISH."""

    topic: str
    payload: bytes
    ack: int  # the acknowledgement word: 0 for QoS 0, PUBACK for QoS 1, PUBREC for QoS 2


def packet(first: int, body: bytes) -> bytes:
    return bytes([first]) + encode_varint(len(body)) + body


def publish(topic: str, payload: bytes, qos: int, packet_id: int) -> tuple[bytes, Published]:
    raw = topic.encode()
    body = len(raw).to_bytes(2, "big") + raw + (packet_id.to_bytes(2, "big") if qos else b"") + payload
    ack = {0: 0, 1: 0x4002_0000 | packet_id, 2: 0x5002_0000 | packet_id}[qos]
    return packet(0x30 | qos << 1, body), Published(raw.decode(), payload, ack)


publishes = st.builds(
    publish,
    st.text(max_size=30),
    st.binary(max_size=300),
    st.integers(0, 2),
    st.integers(1, 0xFFFF),
)
ids = st.integers(0, 0xFFFF).map(lambda i: i.to_bytes(2, "big"))
controls = st.one_of(
    st.just(b"\x20\x02\x00\x00"),  # CONNACK
    st.just(b"\xd0\x00"),  # PINGRESP
    st.just(b"\x90\x03\x00\x01\x01"),  # SUBACK
    ids.map(lambda i: packet(0x62, i)),  # PUBREL
    ids.map(lambda i: packet(0x40, i)),  # PUBACK
    ids.map(lambda i: packet(0xB0, i)),  # UNSUBACK
).map(lambda raw: (raw, None))
well_formed = st.one_of(publishes, publishes, publishes, controls)


def _topic_beyond_end(qos: int, topic_length: int, rest: bytes) -> bytes:
    """A PUBLISH whose topic length (and packet id) reach past its own end (issue 14: the next packet's bytes)."""
    room = len(rest) - (2 if qos else 0)
    return packet(0x30 | qos << 1, max(topic_length, room + 1).to_bytes(2, "big") + rest)


malformed = st.one_of(
    st.builds(_topic_beyond_end, st.integers(0, 2), st.integers(0, 0xFFFF), st.binary(max_size=40)),
    st.builds(lambda t: packet(0x32, len(t).to_bytes(2, "big") + t), st.binary(max_size=20)),  # QoS 1, no id
    st.builds(lambda t: packet(0x32, len(t).to_bytes(2, "big") + t + b"\x00"), st.binary(max_size=20)),  # half an id
    st.builds(lambda t: packet(0x32, len(t).to_bytes(2, "big") + t + b"\x00\x00x"), st.binary(max_size=20)),  # id 0
    st.builds(lambda i: packet(0x36, b"\x00\x01t" + i + b"x"), ids),  # QoS 3
    st.sampled_from([packet(0x30, b""), packet(0x32, b"\x00")]),  # no room for a topic length
    st.builds(  # a packet type or flags a broker never sends a client, or a control packet of the wrong length
        lambda first, body: packet(first, body),
        st.sampled_from([0x00, 0x10, 0x21, 0x41, 0x60, 0x80, 0x91, 0xA2, 0xC0, 0xE0, 0xF0]),
        st.binary(max_size=4),
    ),
    st.sampled_from([packet(0x20, b"\x00"), packet(0xD0, b"\x00"), packet(0x90, b"\x00\x01"), packet(0x62, b"\x00")]),
    st.just(b"\x30\xff\xff\xff\xff\x01"),  # a remaining length of more than four bytes
)
oversized = st.builds(
    lambda length, start: bytes([0x32]) + encode_varint(length) + start,
    # One byte of type, two or more of length: MAX_PACKET - 1 is already too large; up to what MQTT can encode (256 MB).
    st.integers(MAX_PACKET - 1, 268_435_455),
    st.binary(max_size=64),
)


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[bytes], list[Published], type[ProtocolError] | None]:
    """The stream cut into reads, the messages the parser must return, and the error it must raise (if any)."""
    before = draw(st.lists(well_formed, max_size=12))
    expected = [m for _, m in before if m is not None]
    raw = b"".join(p for p, _ in before)
    error: type[ProtocolError] | None = None
    bad = draw(st.none() | malformed.map(lambda b: (b, ProtocolError)) | oversized.map(lambda b: (b, PacketTooLarge)))
    if bad is not None:
        raw += bad[0]
        error = bad[1]
        raw += b"".join(p for p, _ in draw(st.lists(publishes, max_size=3)))  # must never come out
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(raw) - 1)), max_size=20)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True) if raw[a:b]]
    return pieces, expected, error


@settings(max_examples=STREAM_EXAMPLES, derandomize=True, deadline=None)
@given(case=streams())
def test_every_message_is_one_packet_and_nothing_passes_a_malformed_one(
    case: tuple[list[bytes], list[Published], type[ProtocolError] | None],
) -> None:
    pieces, expected, error = case
    parser, now = PacketParser(MAX_PACKET), utcnow()
    got: list[Published] = []
    raised: ProtocolError | None = None
    parsed = 0  # bytes of completed packets, as the parser reports them (what the worker's byte bound counts)
    for piece in pieces:
        try:
            messages, acks, _ = parser.feed(piece, now)
        except ProtocolError as exc:
            raised = exc
            break
        got += [Published(m.topic, m.payload, ack) for m, ack in zip(messages, acks, strict=True)]
        parsed += parser.parsed
        assert parser.buffered <= MAX_PACKET  # bounded memory, whatever a packet announces
    # Messages come out whole and in order; once the stream is malformed, nothing more (a read that raised hands
    # nothing over: it is neither stored nor acknowledged, and the broker delivers it again).
    assert got == expected[: len(got)]
    received_ids = {p.ack & 0xFFFF for p in expected if p.ack}
    assert all(p.ack & 0xFFFF in received_ids for p in got if p.ack)  # no acknowledgement of an id not received
    if error is None:
        assert raised is None and got == expected and parser.buffered == 0
        assert parsed == sum(map(len, pieces))
    elif error is PacketTooLarge:
        assert isinstance(raised, PacketTooLarge)  # from its header alone: its bytes were never waited for
    else:
        assert raised is not None and not isinstance(raised, PacketTooLarge)


@settings(max_examples=GARBAGE_EXAMPLES, derandomize=True, deadline=None)
@given(data=st.lists(st.binary(min_size=1, max_size=200), max_size=10))
def test_arbitrary_bytes_are_parsed_or_refused_never_crash_and_stay_bounded(data: list[bytes]) -> None:
    parser, now = PacketParser(MAX_PACKET), utcnow()
    for piece in data:
        try:
            messages, acks, control = parser.feed(piece, now)
        except ProtocolError:
            return
        assert len(messages) == len(acks)
        for message, ack in zip(messages, acks, strict=True):
            assert ack == 0 or ack >> 16 in (0x4002, 0x5002) and ack & 0xFFFF  # a real, non-zero packet id
            assert len(message.payload) < MAX_PACKET
        assert all(first in (0x20, 0x40, 0x50, 0x62, 0x70, 0x90, 0xB0, 0xD0) for first, _ in control)
        assert parser.buffered <= MAX_PACKET


# --- the cases issue 14 reported, by hand


def test_a_topic_longer_than_its_packet_is_refused_not_read_from_the_next_packet() -> None:
    bad = bytes([0x32, 4, 0x00, 0x06, 0x00, 0x01])  # QoS 1, 4 bytes, a topic length of 6
    good, _ = publish("a/b", b"xy", 1, 0x2276)
    with pytest.raises(ProtocolError, match="longer than"):
        PacketParser().feed(bad + good, utcnow())  # was: topic "\x00\x012\t\x00\x03" and a PUBACK for id 0x612F


def test_a_201_mb_announcement_is_refused_before_it_is_buffered() -> None:
    parser = PacketParser()
    with pytest.raises(PacketTooLarge):
        parser.feed(bytes([0x30, 0xFF, 0xFF, 0xFF, 0x5F]), utcnow())  # was: kept waiting for 201,326,596 bytes
    assert parser.buffered == 0
