"""The poller's own BACnet/IP device (bacpypes3), reading other controllers' properties by address.

Controllers are addressed directly by IP:port, as the points configure them: no Who-Is broadcast is needed, so the
poller works across routed subnets and on a host whose broadcast domain it does not share. A controller's points
due together are read with one ReadPropertyMultiple (in chunks); a controller that refuses the service is read with
ReadProperty from then on. Every outcome is a number or a `Failure` saying why not: nothing here raises for a
controller's answer, so one controller cannot stop the poller.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import math
import socket
from collections.abc import Sequence
from typing import Any

from bacpypes3.apdu import AbortPDU, ErrorPDU, ErrorRejectAbortNack, RejectPDU
from bacpypes3.app import Application
from bacpypes3.basetypes import ErrorType
from bacpypes3.local.device import DeviceObject
from bacpypes3.local.networkport import NetworkPortObject
from bacpypes3.pdu import Address
from bacpypes3.primitivedata import ObjectIdentifier

from koprogo_iot.bacnet.outcomes import Failure, Outcome, Result
from koprogo_iot.domain.bacnet import BacnetPoint

log = logging.getLogger(__name__)

# Properties per ReadPropertyMultiple: about 15 bytes each in the answer, well inside the 1476-byte APDU of
# BACnet/IP, so no controller needs to segment its answer (small controllers may not support segmentation).
READS_PER_REQUEST = 20
# The vendor identifier of the poller's own device object: 999, as bacpypes3's samples (no registered vendor).
VENDOR_IDENTIFIER = 999


def _number(value: Any) -> Result:
    """A property value as a float (REAL, Double, Unsigned or Integer), or why it is none."""
    if isinstance(value, ErrorType):
        return _error(str(value.errorClass), str(value.errorCode))
    if isinstance(value, int | float):  # bacpypes3's Real, Double, Unsigned and Integer subclass these
        number = float(value)
        if math.isfinite(number):
            return number
    return Failure(Outcome.NOT_NUMERIC, f"the value {value!r} is not a finite number")


def _error(error_class: str, code: str) -> Failure:
    outcome = {"unknown-object": Outcome.UNKNOWN_OBJECT, "unknown-property": Outcome.UNKNOWN_PROPERTY}.get(code)
    return Failure(outcome or Outcome.REFUSED, f"the controller answered {error_class}: {code}")


def _refusal(answer: ErrorRejectAbortNack) -> Failure:
    """What an error, reject or abort of a whole request means for each point in it."""
    if isinstance(answer, ErrorPDU):
        return _error(str(answer.errorClass), str(answer.errorCode))
    reason = str(answer.apduAbortRejectReason)
    if isinstance(answer, AbortPDU) and reason == "no-response":
        return Failure(Outcome.UNREACHABLE, "no answer (controller off, wrong address or port, or network down)")
    kind = "rejected" if isinstance(answer, RejectPDU) else "aborted"
    return Failure(Outcome.REFUSED, f"the controller {kind} the request: {reason}")


def _request(point: BacnetPoint) -> tuple[ObjectIdentifier, str]:
    return ObjectIdentifier(point.object_identifier), point.property_identifier.value


def check_free(host: str, port: int) -> None:
    """Raise a clear error when (host, port) cannot be bound.

    bacpypes3 binds with SO_REUSEPORT and retries a failed bind forever, in silence: a port taken by a BMS
    workstation would be shared (each datagram going to one of the two at random) or the poller would wait for ever.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise OSError(f"UDP port {port} is in use on {host}: give the poller another BACnet port") from exc
            raise OSError(f"cannot listen on {host}:{port} for BACnet/IP: {exc.strerror}") from exc


class BacnetClient:
    """One local BACnet/IP device; `read` is safe to call for several controllers at once."""

    def __init__(self, app: Any, timeout: float) -> None:
        self._app = app
        self._timeout = timeout
        self._single_reads: set[str] = set()  # controllers that refused ReadPropertyMultiple

    @classmethod
    async def open(cls, host: str, port: int, device_instance: int, timeout: float = 3.0) -> BacnetClient:
        """Listen on UDP `host:port` (port 0: any free port) as BACnet device `device_instance`.

        `timeout`: seconds to wait for a controller's answer before it counts as unreachable (one attempt: the next
        poll is the retry).
        """
        check_free(host, port)
        device = DeviceObject(
            objectIdentifier=("device", device_instance),
            objectName=f"KoproGo poller {device_instance}",
            vendorIdentifier=VENDOR_IDENTIFIER,
            apduTimeout=max(1, round(timeout * 1000)),
            numberOfApduRetries=0,
        )
        # A /32 address: the poller needs no broadcast listener, it only ever talks to configured addresses.
        port_object = NetworkPortObject(
            f"{host}/32:{port}", objectIdentifier=("network-port", 1), objectName="NetworkPort-1"
        )
        app = Application.from_object_list([device, port_object])
        link = next(iter(app.link_layers.values()))
        # The socket is bound by background tasks (a private attribute of the pinned version): wait for them here,
        # so that a failure is an error at start rather than a first poll that never ends.
        try:
            await asyncio.wait_for(asyncio.gather(*link.server._transport_tasks), timeout=10)
        except TimeoutError:
            app.close()
            raise OSError(f"could not listen on {host}:{port} for BACnet/IP") from None
        return cls(app, timeout)

    def close(self) -> None:
        self._app.close()

    async def read(self, address: str, device_instance: int | None, points: Sequence[BacnetPoint]) -> list[Result]:
        """One result per point, in order. With `device_instance`, the controller must answer as that device first."""
        if not points:
            return []
        try:
            if device_instance is not None:
                mismatch = await self._check_device(address, device_instance)
                if mismatch is not None:
                    return [mismatch] * len(points)
            if address in self._single_reads or len(points) == 1:
                return [await self._read_one(address, p) for p in points]
            results: list[Result] = []
            for start in range(0, len(points), READS_PER_REQUEST):
                results += await self._read_many(address, points[start : start + READS_PER_REQUEST])
            return results
        except Exception as exc:  # a bug or a socket error must cost these points one poll, not the poller
            log.exception("reading %d point(s) of %s failed", len(points), address)
            return [Failure(Outcome.ERROR, f"{type(exc).__name__}: {exc}")] * len(points)

    async def _ask(self, request: Any) -> Any:
        """Await a bacpypes3 request; its answers of error, reject and abort come back as values, not raised.

        bacpypes3 raises them as `BaseException`s (so that `except Exception` does not catch them): they are caught
        here, where they are expected, and nowhere else. The outer deadline only guards against a stack that never
        answers at all (its own timeout is the APDU timeout).
        """
        try:
            return await asyncio.wait_for(request, timeout=self._timeout + 5)
        except ErrorRejectAbortNack as answer:
            return answer

    async def _check_device(self, address: str, device_instance: int) -> Failure | None:
        device = ObjectIdentifier(f"device,{device_instance}")
        answer = await self._ask(self._app.read_property(Address(address), device, "object-identifier"))
        if isinstance(answer, ErrorRejectAbortNack):
            failure = _refusal(answer)
            if failure.outcome is Outcome.UNKNOWN_OBJECT:
                return Failure(Outcome.WRONG_DEVICE, f"{address} is not BACnet device {device_instance}")
            return failure
        return None

    async def _read_one(self, address: str, point: BacnetPoint) -> Result:
        answer = await self._ask(self._app.read_property(Address(address), *_request(point)))
        return _refusal(answer) if isinstance(answer, ErrorRejectAbortNack) else _number(answer)

    async def _read_many(self, address: str, points: Sequence[BacnetPoint]) -> list[Result]:
        specification: list[Any] = []
        for point in points:
            object_id, prop = _request(point)
            specification += [object_id, [prop]]  # bacpypes3 wants the pairs flattened
        answer = await self._ask(self._app.read_property_multiple(Address(address), specification))
        if isinstance(answer, ErrorRejectAbortNack):
            failure = _refusal(answer)
            if failure.outcome is Outcome.UNREACHABLE:
                return [failure] * len(points)
            # Some controllers refuse the service, or refuse the whole request for one bad object: ReadProperty
            # then tells each point's own answer.
            log.info("%s refused ReadPropertyMultiple (%s): reading its points one by one", address, failure.detail)
            self._single_reads.add(address)
            return [await self._read_one(address, p) for p in points]
        # The answer lists (object, property, index, value or error) in the order of the request.
        return [_number(value) for _object, _property, _index, value in answer]
