"""What reading a point gives: a number, or a `Failure` saying why there is none."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from koprogo_iot.domain.bacnet import BacnetPoint


class Outcome(StrEnum):
    """Why a point has no value this time: the `result` label of `koprogo_bacnet_reads_total`."""

    UNREACHABLE = "unreachable"  # no answer within the timeout (address, port, network, controller off)
    WRONG_DEVICE = "wrong_device"  # the address answers, but not as the point's device instance
    UNKNOWN_OBJECT = "unknown_object"
    UNKNOWN_PROPERTY = "unknown_property"
    NOT_NUMERIC = "not_numeric"  # a value that is no finite number (null, text, NaN)
    REFUSED = "refused"  # any other error, reject or abort the controller answered
    ERROR = "error"  # a failure on our side (a bug, a socket error): logged with its traceback


@dataclass(frozen=True, slots=True)
class Failure:
    outcome: Outcome
    detail: str


Result = float | Failure


class PointReader(Protocol):
    """Reads points of one controller: `bacnet.client.BacnetClient` over BACnet/IP."""

    async def read(self, address: str, device_instance: int | None, points: Sequence[BacnetPoint]) -> list[Result]:
        """One result per point, in order; never raises for what a controller answers."""
        ...
