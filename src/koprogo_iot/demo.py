"""A demo building: its organization, units, people and sensors, and a simulator that makes them talk."""

from __future__ import annotations

import asyncio
import logging
import math
import random
import ssl
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from koprogo_iot.domain.clock import utcnow
from koprogo_iot.domain.errors import NotFound
from koprogo_iot.domain.readings import IoTReading
from koprogo_iot.domain.rules import effective_rules
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind, SensorType
from koprogo_iot.domain.tenancy import Building, Organization, Role, Unit, User
from koprogo_iot.mqtt_url import MqttEndpoint
from koprogo_iot.services.accounts import hash_password
from koprogo_iot.storage.ports import Ingested, Storage

log = logging.getLogger(__name__)

# Fixed ids (uuid5 of a name) make provisioning idempotent: `up --demo` twice on one data dir finds them.
_NAMESPACE = uuid.UUID("5b0f6c52-8a1e-4f7e-9d57-0c8f3a1f6b10")
DEMO_PASSWORD = "koprogo-demo"
SYNDIC_EMAIL = "syndic@demo.koprogo.be"
OWNER_EMAIL = "owner@demo.koprogo.be"
ADMIN_EMAIL = "admin@demo.koprogo.be"
SIMULATOR_LOGIN = "Simulateur de la démo"  # the device credential the simulator publishes with
TRIAL_LOGIN = "Essai MQTT (démo)"  # the one printed at start, to publish by hand
MAIN_METER_EXCESS = 1.02  # the main water meter counts 2 % more than the flats' meters (under the balance rule's 3 %)
DEMO_INTERVAL = 10  # seconds: the shortest sampling interval, so a demo visibly moves
# History written before the demo starts (charts, analytics and forecasts need it): 16 months (a forecast's yearly
# profile looks a year back from weeks ago), hourly over the last month and every 6 hours before, which keeps a
# first start within seconds (about 45,000 readings).
HISTORY = timedelta(days=485)
RECENT, RECENT_STEP, OLDER_STEP = timedelta(days=31), timedelta(hours=1), timedelta(hours=6)
_ZONE = ZoneInfo("Europe/Brussels")


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


@dataclass(frozen=True, slots=True)
class Demo:
    organization: Organization
    building: Building
    sensors: list[IoTSensor]


def _demo_sensors(org: uuid.UUID, building: uuid.UUID, units: list[Unit]) -> list[IoTSensor]:
    def sensor(
        device: str, sensor_type: SensorType, uom: str, where: str, unit: Unit | None = None, **extra: object
    ) -> IoTSensor:
        return IoTSensor(
            id=_id(device),
            organization_id=org,
            building_id=building,
            unit_id=unit.id if unit else None,
            sensor_id=device,
            sensor_type=sensor_type,
            location=where,
            unit_of_measure=uom,
            sampling_interval=DEMO_INTERVAL,
            floor=unit.floor if unit else -1,
            **extra,  # type: ignore[arg-type]
        )

    sensors = [
        sensor(
            "KAM-MC21-60011234",
            SensorType.COLD_WATER,
            "m³",
            "Sous-sol, compteur d'eau général",
            manufacturer="Kamstrup",
            model="MULTICAL 21",
            main_meter=True,  # against the flats' cold water meters: the building balance
        ),
        sensor(
            "KAM-FLOWIQ-60020042",
            SensorType.COLD_WATER,
            "L/h",
            "Sous-sol, débit d'eau général",
            manufacturer="Kamstrup",
            model="flowIQ 2200",
            kind=MeasurementKind.INSTANTANEOUS,
            alert_threshold_max=50.0,
        ),
        sensor(
            "shellypro3em-a8032abe54dc",
            SensorType.ELECTRICITY,
            "kWh",
            "Sous-sol, tableau des communs",
            manufacturer="Shelly",
            model="Pro 3EM",
        ),
        sensor(
            "ELSTER-BKG4-778120",
            SensorType.GAS,
            "m³",
            "Chaufferie, compteur de gaz",
            manufacturer="Elster",
            model="BK-G4",
        ),
        sensor(
            "SIEMENS-PXC-AI03",
            SensorType.HEATING,
            "°C",
            "Chaufferie, température de départ",
            manufacturer="Siemens",
            model="Desigo PXC",
            alert_threshold_min=35.0,
            alert_threshold_max=85.0,
        ),
    ]
    for unit in units:
        tag = unit.name.replace(" ", "").replace(".", "")
        sensors += [
            sensor(
                f"KAM-MC21-{tag}-CW",
                SensorType.COLD_WATER,
                "m³",
                f"{unit.name}, cuisine",
                unit,
                manufacturer="Kamstrup",
                model="MULTICAL 21",
            ),
            sensor(
                f"KAM-MC21-{tag}-HW",
                SensorType.HOT_WATER,
                "m³",
                f"{unit.name}, salle de bain",
                unit,
                manufacturer="Kamstrup",
                model="MULTICAL 21",
            ),
            sensor(
                f"SHELLY-HT-{tag}",
                SensorType.TEMPERATURE,
                "°C",
                f"{unit.name}, séjour",
                unit,
                manufacturer="Shelly",
                model="H&T Gen3",
            ),
        ]
    return sensors


async def provision(storage: Storage) -> Demo:
    """Create the demo organization once; later calls return what exists."""
    org = Organization(id=_id("organization"), name="Résidence du Parc (demo)")
    building = Building(
        id=_id("building"),
        organization_id=org.id,
        name="Résidence du Parc",
        address="Avenue du Parc 12, 1060 Saint-Gilles",
    )
    units = [
        Unit(id=_id(f"unit {name}"), organization_id=org.id, building_id=building.id, name=name, floor=floor)
        for name, floor in (("App. 0.1", 0), ("App. 1.1", 1), ("App. 1.2", 1), ("App. 2.1", 2))
    ]
    try:
        await storage.tenancy.get_organization(org.id)
    except NotFound:
        await storage.tenancy.add_organization(org)
        await storage.tenancy.add_building(building)
        for unit in units:
            await storage.tenancy.add_unit(unit)
        hashed = hash_password(DEMO_PASSWORD)
        people = [
            (ADMIN_EMAIL, "Platform Admin", Role.SUPERADMIN, frozenset[uuid.UUID]()),
            (SYNDIC_EMAIL, "Sophie Syndic", Role.SYNDIC, frozenset[uuid.UUID]()),
            (OWNER_EMAIL, "Olivier Owner", Role.OWNER, frozenset({units[1].id})),
        ]
        for email, name, role, unit_ids in people:
            await storage.tenancy.add_user(User(org.id, email, name, role, hashed, unit_ids, id=_id(email)))
        sensors = _demo_sensors(org.id, building.id, units)
        for sensor in sensors:
            await storage.sensors.add(sensor)
        log.info("provisioned the demo organization %s; writing a year of hourly history...", org.id)
        await backfill(storage, sensors, utcnow())
        log.info("demo history written")
    return Demo(org, building, await storage.sensors.select(org.id))


def _season(sensor: IoTSensor, moment: datetime) -> float:
    """How much more (or less) than the yearly mean a sensor uses at this time of year (peak in mid-January)."""
    winter = math.cos((moment.timetuple().tm_yday - 15) / 365 * 2 * math.pi)  # 1 in January, -1 in July
    swing = {SensorType.GAS: 0.8, SensorType.HOT_WATER: 0.25, SensorType.ELECTRICITY: 0.2}.get(sensor.sensor_type, -0.1)
    return 1 + swing * winter


def _usage(moment: datetime) -> float:
    """Household rhythm in local time: low at night, peaks morning and evening, a little more at weekends."""
    local = moment.astimezone(_ZONE)
    hour = local.hour + local.minute / 60
    peaks = math.exp(-(((hour - 7.5) / 1.5) ** 2)) + 1.2 * math.exp(-(((hour - 19.5) / 2.5) ** 2))
    return (0.15 + peaks) * (1.15 if local.weekday() >= 5 else 1.0)


def _history_value(sensor: IoTSensor, moment: datetime, previous: float, hours: float, rng: random.Random) -> float:
    """The value at `moment`, `hours` after the previous one (a counter's index `previous`)."""
    if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        per_hour = {SensorType.ELECTRICITY: 2.5, SensorType.GAS: 1.2}.get(sensor.sensor_type, 0.012)
        usage = math.fsum(_usage(moment - timedelta(hours=h)) for h in range(round(hours)))  # each hour of the step
        step = per_hour * usage * _season(sensor, moment) * rng.uniform(0.7, 1.3)
        return round(previous + step, 4)
    local_hour = moment.astimezone(_ZONE).hour
    if sensor.sensor_type is SensorType.COLD_WATER:  # flow, L/h
        return round(25 * _usage(moment) * rng.uniform(0.3, 1.0), 1)
    if sensor.sensor_type is SensorType.HEATING:  # flow temperature follows the outside cold
        return round(55 + 12 * (_season(sensor, moment) - 0.9) + 3 * math.sin(local_hour / 24 * 2 * math.pi), 1)
    outside = 4 * -math.cos((moment.timetuple().tm_yday - 15) / 365 * 2 * math.pi)
    return round(20.5 + 0.3 * outside + 1.2 * math.sin((local_hour - 9) / 24 * 2 * math.pi) + rng.uniform(-0.2, 0.2), 1)


async def backfill(storage: Storage, sensors: list[IoTSensor], now: datetime, history: timedelta = HISTORY) -> int:
    """Readings of `sensors` over `history` before `now` (see RECENT), and their rollups; return how many.

    Deterministic (seeded per sensor), so every demo tells the same year: counters follow the household rhythm and
    the seasons (gas and hot water in winter), the heating flow temperature the outside cold.
    """
    start = (now - history).replace(minute=0, second=0, microsecond=0)
    moments, moment = [], start
    while moment < now:
        moments.append(moment)
        moment += RECENT_STEP if moment >= now - RECENT else OLDER_STEP
    # the history ends at `now`, not at the last whole hour: the window rules' first run would otherwise find every
    # sensor silent for up to an hour before the simulator's first reading, and announce 17 "offline" alerts
    moments.append(now)
    written = 0
    # A main meter counts what its building's unit meters of its type count, and a little more (common pipes):
    # written after them, from the sum of their steps.
    drawn: dict[SensorType, list[float]] = {}
    for sensor in sorted(sensors, key=lambda s: s.main_meter):
        rng = random.Random(sensor.sensor_id)
        rules = effective_rules(sensor)
        value = round(rng.uniform(100, 2000), 3) if sensor.measurement_kind is MeasurementKind.CUMULATIVE else 0.0
        battery, batch = 100.0, []
        previous = start - OLDER_STEP
        units = drawn.setdefault(sensor.sensor_type, [0.0] * len(moments))
        for position, moment in enumerate(moments):
            if sensor.main_meter:
                value = round(value + units[position] * MAIN_METER_EXCESS * rng.uniform(0.99, 1.01), 4)
            else:
                before = value
                value = _history_value(sensor, moment, value, (moment - previous) / RECENT_STEP, rng)
                if sensor.unit_id is not None and sensor.measurement_kind is MeasurementKind.CUMULATIVE:
                    units[position] += value - before
            previous = moment
            battery = max(25.0, battery - 0.005)
            reading = IoTReading.measured(sensor, moment, value, round(battery, 1), -70, moment, rules)
            batch.append(Ingested(reading))
            if len(batch) == 2000:
                written += len(await storage.readings.ingest(batch))
                batch = []
        written += len(await storage.readings.ingest(batch))
    if sensors:
        await storage.rollups.rebuild(sensors[0].organization_id)
    return written


class _NativePayload(msgspec.Struct):
    timestamp: datetime
    value: float
    battery_level: float | None
    signal_strength: int | None


@dataclass
class _Device:
    """One simulated device: its current value and its battery."""

    sensor: IoTSensor
    value: float
    battery: float = field(default_factory=lambda: random.uniform(40, 100))
    rssi: int = field(default_factory=lambda: random.randint(-95, -55))
    meters: float = 1.0  # how many households it counts: a main meter, its building's flats and a little more


def _initial(sensor: IoTSensor) -> float:
    if sensor.last_value is not None:
        return sensor.last_value
    if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        return round(random.uniform(100, 2000), 3)
    return {SensorType.HEATING: 65.0, SensorType.TEMPERATURE: 20.5}.get(sensor.sensor_type, 10.0)


def _next_value(device: _Device, now: datetime, step: float) -> float:
    """A plausible next value: usage follows the hour of the day; the flow meter spikes now and then."""
    sensor = device.sensor
    hour = now.hour + now.minute / 60
    daytime = 0.3 + 0.7 * max(0.0, math.sin((hour - 6) / 16 * math.pi))  # low at night, high by day
    if sensor.measurement_kind is MeasurementKind.CUMULATIVE:
        per_hour = {SensorType.ELECTRICITY: 4.0, SensorType.GAS: 1.5}.get(sensor.sensor_type, 0.02)
        return round(device.value + device.meters * per_hour * daytime * step / 3600 * random.uniform(0.5, 1.5), 4)
    if sensor.sensor_type is SensorType.COLD_WATER:  # flow in L/h; every few minutes a burst above 50 L/h
        return 75.0 if now.minute % 5 == 0 and now.second < 35 else round(30 * daytime * random.uniform(0.2, 1), 1)
    if sensor.sensor_type is SensorType.HEATING:
        return round(60 + 10 * math.sin(hour / 24 * 2 * math.pi) + random.uniform(-1, 1), 1)
    return round(20.5 + 1.5 * math.sin((hour - 9) / 24 * 2 * math.pi) + random.uniform(-0.2, 0.2), 1)


async def simulate(
    sensors: list[IoTSensor], endpoint: MqttEndpoint, speed: float = 1.0, tls: ssl.SSLContext | None = None
) -> None:
    """Publish native readings over MQTT (QoS 1) for `sensors`, each at its sampling interval, until cancelled.
    `tls`: the context of an mqtts endpoint (default: the system's trusted CAs)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"koprogo-simulator-{uuid.uuid4().hex[:8]}")
    if endpoint.username:
        client.username_pw_set(endpoint.username, endpoint.password)
    if endpoint.tls:
        client.tls_set_context(tls or ssl.create_default_context())
    client.connect_async(endpoint.host, endpoint.port)
    client.loop_start()
    devices = [_Device(s, _initial(s)) for s in sensors]
    for device in devices:
        if device.sensor.main_meter:
            flats = sum(s.unit_id is not None and s.sensor_type is device.sensor.sensor_type for s in sensors)
            device.meters = flats * MAIN_METER_EXCESS
    # Stagger first readings over one interval so the building does not speak all at once.
    due = {id(d): random.uniform(0, d.sensor.sampling_interval / speed) for d in devices}
    encoder = msgspec.json.Encoder()
    clock = asyncio.get_running_loop().time
    started = clock()
    try:
        while True:
            now, elapsed = utcnow(), clock() - started
            for device in devices:
                if due[id(device)] > elapsed:
                    continue
                interval = device.sensor.sampling_interval / speed
                due[id(device)] = elapsed + interval
                device.value = _next_value(device, now, device.sensor.sampling_interval)
                device.battery = max(0.0, device.battery - 0.001)
                payload = _NativePayload(
                    now.astimezone(UTC).replace(microsecond=now.microsecond // 1000 * 1000),
                    device.value,
                    round(device.battery, 1),
                    device.rssi + random.randint(-3, 3),
                )
                client.publish(device.sensor.mqtt_topic, encoder.encode(payload), qos=1)
            await asyncio.sleep(0.25)
    finally:
        client.disconnect()
        client.loop_stop()
