"""`koprogo-iot sensors` and `koprogo-iot devices`: register sensors (native or of a device family), list them, see
what each family offers and which devices were heard that no sensor reads."""

from __future__ import annotations

import argparse
from typing import Any
from uuid import UUID

from koprogo_iot import bootstrap
from koprogo_iot.cli.ista import operator
from koprogo_iot.config import Settings
from koprogo_iot.devices.catalog import FORMATS
from koprogo_iot.domain.sensors import DeviceFormat, SensorType
from koprogo_iot.services.audit import AuditLog
from koprogo_iot.services.devices import Devices
from koprogo_iot.services.provisioning import Provisioning
from koprogo_iot.storage.ports import Storage


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sensors = commands.add_parser("sensors", help="register and list sensors")
    actions = sensors.add_subparsers(dest="sensors_command", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="register a sensor (a device family's value with --device-format)")
    add.add_argument("--building", type=UUID, required=True)
    add.add_argument("--unit", type=UUID, help="the unit (apartment); none: a common meter")
    add.add_argument("--sensor-id", required=True, help="serial number, DevEUI, Shelly id, wM-Bus meter id...")
    add.add_argument("--type", required=True, choices=[t.value for t in SensorType], help="sensor type")
    add.add_argument("--unit-of-measure", required=True, help="e.g. m³, L, kWh, °C")
    add.add_argument("--device-format", default="native", choices=[f.value for f in DeviceFormat])
    add.add_argument("--device-field", default="", help="the device value it reads (`devices formats` lists them)")
    add.add_argument("--kind", choices=["cumulative", "instantaneous"], help="default: the sensor type's usual")
    add.add_argument("--manufacturer", default="unknown")
    add.add_argument("--model", default="unknown")
    add.add_argument("--location", default="", help="where it is installed (default: the device field or id)")
    add.add_argument("--rollover", type=float, help=_ROLLOVER)
    add.add_argument("--main-meter", action="store_true", help=_MAIN_METER)
    rollover = actions.add_parser("set-rollover", help="set or clear a counter's register size (its rollover)")
    rollover.add_argument("sensor", type=UUID, help="the sensor's id (`sensors list`)")
    rollover.add_argument("value", type=_register, help=f"{_ROLLOVER}; `none` to clear it")
    main = actions.add_parser("set-main-meter", help="make a common counter the building's main meter, or not")
    main.add_argument("sensor", type=UUID, help="the sensor's id (`sensors list`)")
    main.add_argument("value", choices=["yes", "no"], help=_MAIN_METER)
    listed = actions.add_parser("list", help="the organization's sensors and the topic each device publishes to")
    listed.add_argument("--building", type=UUID)

    devices = commands.add_parser("devices", help="device families, and devices heard that no sensor reads")
    device_actions = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    device_actions.add_parser("formats", help="each device family: its device id, fields and topic")
    unclaimed = device_actions.add_parser("unclaimed", help="devices heard sending values no sensor reads yet")
    unclaimed.add_argument("--building", type=UUID)
    for action in (add, rollover, main, listed, unclaimed):
        action.add_argument("--organization", type=UUID, required=True, help="the organization's id")
        action.add_argument("--data-dir", help="where embedded data lives (KOPROGO_DATA_DIR, default ./data)")
        action.add_argument("--database-url", help="postgresql://... or sqlite:///path (KOPROGO_DATABASE_URL)")


_ROLLOVER = "a counter's register size: the index at which it returns to 0, e.g. 100000 for a 99999.999 m³ register"

_MAIN_METER = "the building's main meter of its type, balanced against the units' counters (one per building and type)"


def _register(text: str) -> float | None:
    """A register size, or None for `none` (the sensor validates the number itself)."""
    return None if text.strip().lower() == "none" else float(text)


def formats() -> str:
    lines = []
    for info in FORMATS.values():
        lines.append(f"{info.format.value}: {info.label}; sensor id = {info.device_id}")
        lines.append(f"  topic  {info.format.topic('<organization>', '<building>', '<sensor id>')}")
        lines.append(f"  fields {info.field_rule}")
        lines += [f"    {f.field:<34} {f.unit or '-':<5} {f.kind.value}" for f in info.fields]
    return "\n".join(lines)


async def execute(settings: Settings, args: argparse.Namespace) -> int:
    if args.command == "devices" and args.devices_command == "formats":
        print(formats())
        return 0
    storage = await bootstrap.open_storage(settings.resolved_database_url, settings.encryption_secret())
    try:
        await storage.tenancy.get_organization(args.organization)
        print(await _run(storage, args))
    finally:
        await storage.close()
    return 0


async def _run(storage: Storage, args: argparse.Namespace) -> str:
    principal = operator(args.organization)
    provisioning = Provisioning(storage.tenancy, storage.sensors, AuditLog(storage.audit))
    if args.command == "devices":
        found = await Devices(storage.devices, provisioning).unclaimed(principal, args.building)
        lines = []
        for device in found:
            s = device.sighting
            lines.append(f"{s.device_format.value} {s.device_id}  last heard {s.last_seen_at:%Y-%m-%d %H:%M:%S}")
            for name, seen in s.fields.items():
                reader = device.readers[name]
                lines.append(
                    f"    {name:<34} {seen.value:>14g} {seen.unit:<5} {'sensor ' + str(reader) if reader else ''}"
                )
        return "\n".join(lines) or "no device heard that sensors do not read"
    if args.sensors_command == "list":
        sensors = await provisioning.list_sensors(principal, args.building)
        return (
            "\n".join(
                f"{s.id}  {s.sensor_id:<28} {s.device_field or '-':<26} {s.unit_of_measure:<5} {s.mqtt_topic}"
                for s in sensors
            )
            or "no sensor"
        )
    if args.sensors_command == "set-rollover":
        sensor = await provisioning.update_sensor(principal, args.sensor, {"rollover": args.value})
        size = "unknown (a wrap counts as a reset)" if sensor.rollover is None else f"{sensor.rollover:g}"
        return f"sensor {sensor.id}: register size {size}; its rollups are recomputed"
    if args.sensors_command == "set-main-meter":
        sensor = await provisioning.update_sensor(principal, args.sensor, {"main_meter": args.value == "yes"})
        role = "the building's main meter" if sensor.main_meter else "not a main meter"
        return f"sensor {sensor.id}: {role} of {sensor.sensor_type.value}"
    fields: dict[str, Any] = {
        "building_id": args.building,
        "unit_id": args.unit,
        "sensor_id": args.sensor_id,
        "sensor_type": args.type,
        "unit_of_measure": args.unit_of_measure,
        "device_format": args.device_format,
        "device_field": args.device_field,
        "kind": args.kind,
        "manufacturer": args.manufacturer,
        "model": args.model,
        "location": args.location or args.device_field or args.sensor_id,
        "rollover": args.rollover,
        "main_meter": args.main_meter,
    }
    sensor = await provisioning.create_sensor(principal, fields)
    return f"registered sensor {sensor.id}: publish to {sensor.mqtt_topic}"
