"""MQTT 3.1.1 encoding shared by our two hand-written clients (the ingest worker and the load generator)."""

from __future__ import annotations

CONNECT = 0x10
PROTOCOL_LEVEL = 4  # MQTT 3.1.1
PINGREQ = b"\xc0\x00"
DISCONNECT = b"\xe0\x00"
CONNACK_REASONS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}


def connack_reason(code: int) -> str:
    """Why a broker refused a connection, from its CONNACK return code."""
    return CONNACK_REASONS.get(code, f"return code {code}")


def encode_string(text: str) -> bytes:
    """A UTF-8 string prefixed with its two-byte length."""
    raw = text.encode()
    return len(raw).to_bytes(2, "big") + raw


def encode_varint(length: int) -> bytes:
    """MQTT's remaining-length encoding: 7 bits per byte, high bit set when more bytes follow."""
    out = bytearray()
    while True:
        length, digit = divmod(length, 128)
        out.append(digit | 0x80 if length else digit)
        if not length:
            return bytes(out)


def connect_packet(
    client_id: str, username: str | None, password: str | None, *, keepalive: int, clean_session: bool
) -> bytes:
    """CONNECT; without a clean session the broker keeps what was not acknowledged for the next connection."""
    flags = 0x02 if clean_session else 0x00
    payload = encode_string(client_id)
    if username is not None or password is not None:
        flags |= 0x80  # MQTT 3.1.1 forbids a password without a user name, so an empty one goes with it
        payload += encode_string(username or "")
    if password is not None:
        flags |= 0x40
        payload += encode_string(password)
    variable = encode_string("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + keepalive.to_bytes(2, "big")
    return bytes([CONNECT]) + encode_varint(len(variable) + len(payload)) + variable + payload
