"""ISTA use cases with tenancy checks: import a file, list and link meters, cross-check against the IoT meters."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from uuid import UUID

from koprogo_iot.domain.access import Principal
from koprogo_iot.domain.errors import Forbidden, InvalidValue
from koprogo_iot.domain.ista import IstaMeter, IstaReading, ReadingKind
from koprogo_iot.domain.rollups import Rollups, rollup_results
from koprogo_iot.domain.sensors import IoTSensor, MeasurementKind
from koprogo_iot.domain.tenancy import Building, Unit
from koprogo_iot.domain.units import conversion_factor
from koprogo_iot.ista.csv_format import IstaRow, RowError, parse
from koprogo_iot.ista.periods import IstaPeriod, ista_periods, reading_instant
from koprogo_iot.ista.report import (
    DEFAULT_THRESHOLD_PERCENT,
    IstaReport,
    MeterReport,
    PeriodComparison,
    PeriodStatus,
    compare,
    uncompared,
)
from koprogo_iot.storage.ports import IstaRepository, ReadingSource, SensorRepository, TenancyRepository


@dataclass(frozen=True, slots=True)
class ImportResult:
    imported: int  # readings stored by this import
    skipped_duplicates: int  # rows identical to a reading already stored (or earlier in the file)
    errors: list[RowError]  # rows refused, by line


def _folded(name: str) -> str:
    return " ".join(name.split()).casefold()


class _Places:
    """The organization's buildings and units, found by name as a syndic types them."""

    def __init__(self, buildings: Iterable[Building], units: Iterable[Unit]) -> None:
        self.buildings: dict[str, list[Building]] = {}
        self.units: dict[tuple[UUID, str], list[Unit]] = {}
        self.names: dict[UUID, str] = {}
        for building in buildings:
            self.buildings.setdefault(_folded(building.name), []).append(building)
            self.names[building.id] = building.name
        for unit in units:
            self.units.setdefault((unit.building_id, _folded(unit.name)), []).append(unit)
            self.names[unit.id] = unit.name

    def locate(self, building_name: str, unit_name: str) -> tuple[UUID, UUID | None]:
        buildings = self.buildings.get(_folded(building_name), [])
        if len(buildings) != 1:
            problem = "no building" if not buildings else f"{len(buildings)} buildings"
            raise InvalidValue(f"{problem} named {building_name!r} in the organization")
        building = buildings[0]
        if not unit_name:
            return building.id, None
        units = self.units.get((building.id, _folded(unit_name)), [])
        if len(units) != 1:
            problem = "no unit" if not units else f"{len(units)} units"
            raise InvalidValue(f"{problem} named {unit_name!r} in building {building.name!r}")
        return building.id, units[0].id

    def describe(self, meter: IstaMeter) -> str:
        where = self.names.get(meter.building_id, str(meter.building_id))
        if meter.unit_id is not None:
            where += f" / {self.names.get(meter.unit_id, meter.unit_id)}"
        return f"a {meter.meter_type.value} meter of {where}"


def _overlaps(period: IstaPeriod, start: date | None, end: date | None) -> bool:
    return (end is None or period.start < end) and (start is None or period.end > start)


def _within(day: date, start: date | None, end: date | None) -> bool:
    return (start is None or day >= start) and (end is None or day < end)


def _automatic_link(meter: IstaMeter, sensors: list[IoTSensor]) -> UUID | None:
    """The one cumulative sensor whose manufacturer id is the meter number (and whose unit fits, if several)."""
    candidates = [s for s in sensors if s.measurement_kind is MeasurementKind.CUMULATIVE]
    if len(candidates) > 1:  # one device, several counters (a heat meter's energy and volume): pick by unit
        reference = meter.meter_type.reference_unit
        candidates = [s for s in candidates if conversion_factor(reference, s.unit_of_measure) is not None]
    return candidates[0].id if len(candidates) == 1 else None


class IstaService:
    def __init__(
        self,
        repository: IstaRepository,
        tenancy: TenancyRepository,
        sensors: SensorRepository,
        source: ReadingSource,
    ) -> None:
        self.repository = repository
        self.tenancy = tenancy
        self.sensors = sensors
        self.source = source

    @staticmethod
    def _require_syndic(principal: Principal) -> None:
        if not principal.role.manages:
            raise Forbidden("ISTA readings are for syndics")

    async def _places(self, organization_id: UUID) -> _Places:
        return _Places(
            await self.tenancy.list_buildings(organization_id), await self.tenancy.list_units(organization_id)
        )

    # --- import

    async def import_csv(self, principal: Principal, data: bytes) -> ImportResult:
        """Store the file's valid rows; a row already stored is skipped, a bad row is reported with its line."""
        self._require_syndic(principal)
        organization_id = principal.organization_id
        parsed = parse(data)
        places = await self._places(organization_id)
        known = {meter.meter_number: meter for meter in await self.repository.meters(organization_id)}
        new_meters: dict[str, IstaMeter] = {}
        accepted: list[IstaRow] = []
        errors = list(parsed.errors)
        for row in parsed.rows:
            try:
                building_id, unit_id = places.locate(row.building, row.unit)
            except InvalidValue as exc:
                errors.append(RowError(row.line, str(exc)))
                continue
            meter = IstaMeter(organization_id, row.meter_number, building_id, unit_id, row.meter_type)
            existing = known.get(row.meter_number) or new_meters.setdefault(row.meter_number, meter)
            if dataclasses.replace(existing, sensor_id=None) != meter:  # another place or type (a link is no matter)
                errors.append(RowError(row.line, f"meter {row.meter_number} is {places.describe(existing)}"))
                continue
            accepted.append(row)
        links = await self._automatic_links(
            organization_id,
            [known.get(number) or new_meters[number] for number in {row.meter_number for row in accepted}],
        )
        saved = await self.repository.save(
            organization_id,
            list(new_meters.values()),
            [(row.meter_number, row.reading) for row in accepted],
            links,
        )
        for position, kept in saved.conflicts:
            row = accepted[position]
            errors.append(
                RowError(
                    row.line,
                    f"the {row.reading.kind.value} reading of meter {row.meter_number} on {row.reading.reading_date} "
                    f"is already stored as {kept.value:g} {kept.unit_of_measure}, not {row.reading.value:g} "
                    f"{row.reading.unit_of_measure}",
                )
            )
        return ImportResult(saved.imported, saved.duplicates, sorted(errors, key=lambda error: error.line))

    async def _automatic_links(self, organization_id: UUID, meters: list[IstaMeter]) -> dict[str, UUID]:
        unlinked = [meter for meter in meters if meter.sensor_id is None]
        if not unlinked:
            return {}
        by_device: dict[str, list[IoTSensor]] = {}
        for sensor in await self.sensors.select(organization_id):
            by_device.setdefault(sensor.sensor_id, []).append(sensor)
        links = {m.meter_number: _automatic_link(m, by_device.get(m.meter_number, [])) for m in unlinked}
        return {number: sensor_id for number, sensor_id in links.items() if sensor_id is not None}

    # --- meters

    async def meters(self, principal: Principal, building_id: UUID | None = None) -> list[IstaMeter]:
        self._require_syndic(principal)
        if building_id is not None:
            await self.tenancy.get_building(principal.organization_id, building_id)
        return await self.repository.meters(principal.organization_id, building_id)

    async def link_sensor(self, principal: Principal, meter_number: str, sensor_id: UUID | None) -> IstaMeter:
        """Link the meter to a sensor of the organization (another organization's is not found); None unlinks."""
        self._require_syndic(principal)
        await self.repository.get_meter(principal.organization_id, meter_number)
        if sensor_id is not None:
            await self.sensors.get(principal.organization_id, sensor_id)
        await self.repository.link(principal.organization_id, meter_number, sensor_id)
        return await self.repository.get_meter(principal.organization_id, meter_number)

    # --- report

    async def report(
        self,
        principal: Principal,
        start: date | None = None,
        end: date | None = None,
        threshold_percent: float = DEFAULT_THRESHOLD_PERCENT,
        building_id: UUID | None = None,
    ) -> IstaReport:
        """Each meter's periods overlapping [start, end), ISTA against IoT; estimated readings listed apart."""
        self._require_syndic(principal)
        if not (math.isfinite(threshold_percent) and threshold_percent >= 0):
            raise InvalidValue("threshold must be a percentage of 0 or more")
        if start is not None and end is not None and end <= start:
            raise InvalidValue(f"end {end} must be after start {start}")
        organization_id = principal.organization_id
        meters = await self.meters(principal, building_id)
        readings = await self.repository.readings(organization_id)
        places = await self._places(organization_id)
        reports = []
        for meter in meters:
            own = readings.get(meter.meter_number, [])
            periods = [p for p in ista_periods(self._in_reference_unit(meter, own)) if _overlaps(p, start, end)]
            reports.append(
                MeterReport(
                    meter=meter,
                    building_name=places.names.get(meter.building_id, ""),
                    unit_name=None if meter.unit_id is None else places.names.get(meter.unit_id),
                    periods=tuple(await self._compare(meter, periods, threshold_percent)),
                    estimated=tuple(
                        r for r in own if r.kind is ReadingKind.ESTIMATED and _within(r.reading_date, start, end)
                    ),
                )
            )
        return IstaReport(start, end, threshold_percent, tuple(reports))

    @staticmethod
    def _in_reference_unit(meter: IstaMeter, readings: list[IstaReading]) -> list[IstaReading]:
        reference = meter.meter_type.reference_unit
        if not meter.meter_type.measures_physical_quantity:
            return readings
        converted = []
        for reading in readings:
            factor = conversion_factor(reading.unit_of_measure, reference)
            if factor is None:  # the import checks units: only a hand-edited database gets here
                raise InvalidValue(f"meter {meter.meter_number} has a reading in {reading.unit_of_measure!r}")
            converted.append(dataclasses.replace(reading, value=reading.value * factor, unit_of_measure=reference))
        return converted

    async def _compare(
        self, meter: IstaMeter, periods: list[IstaPeriod], threshold_percent: float
    ) -> list[PeriodComparison]:
        reference = meter.meter_type.reference_unit

        def without_iot(status: PeriodStatus, note: str | None) -> list[PeriodComparison]:
            return [uncompared(period, reference, status, note) for period in periods]

        if not meter.meter_type.measures_physical_quantity:
            return without_iot(PeriodStatus.NOT_COMPARABLE, "heat cost allocators count ISTA's own units")
        if meter.sensor_id is None:
            return without_iot(PeriodStatus.NO_IOT_SENSOR, None)
        sensor = await self.sensors.get(meter.organization_id, meter.sensor_id)
        if sensor.measurement_kind is not MeasurementKind.CUMULATIVE:
            return without_iot(PeriodStatus.NOT_COMPARABLE, f"sensor {sensor.sensor_id} is a gauge, not a meter index")
        factor = conversion_factor(reference, sensor.unit_of_measure)
        if factor is None:
            note = f"ISTA counts {reference}, sensor {sensor.sensor_id} counts {sensor.unit_of_measure}"
            return without_iot(PeriodStatus.NOT_COMPARABLE, note)
        if not periods:
            return []
        # ISTA's periods run from local midnight to local midnight: whole daily rollups, which give the reference's
        # consumption (domain.rollups) and stay when retention has dropped the raw readings of past years.
        grid = [(reading_instant(period.start), reading_instant(period.end)) for period in periods]
        found = await self.source.counter_rows(
            meter.organization_id, [sensor.id], grid[0][0], grid[-1][1], Rollups.DAILY
        )
        results = rollup_results(found[sensor.id], grid)
        return [
            compare(period, factor, result, sensor.unit_of_measure, threshold_percent)
            for period, result in zip(periods, results, strict=True)
        ]
