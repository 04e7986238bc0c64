/** Device families (`GET /iot/devices/formats`): what a sensor reading one field of a device starts from. */
import type { SensorType } from '../api/client';

export interface DeviceFieldInfo {
  field: string;
  unit: string;
  kind: string;
}

export interface Suggestion {
  unit_of_measure: string;
  kind: 'cumulative' | 'instantaneous';
  sensor_type: SensorType | null;
}

// The sensor's unit for a device's unit: the platform converts (Wh -> kWh, m3 -> m³) before calibration.
const SENSOR_UNIT: Record<string, string> = {
  Wh: 'kWh', kWh: 'kWh', MWh: 'MWh', W: 'W', kW: 'kW', m3: 'm³', 'm³': 'm³', l: 'L', L: 'L', 'm3/h': 'L/h',
  'L/h': 'L/h', C: '°C', '°C': '°C', '%': '%', GJ: 'kWh',
};

const TYPE_BY_UNIT: Record<string, SensorType> = {
  kWh: 'electricity', W: 'electricity', kW: 'electricity', '°C': 'temperature', '%': 'humidity', 'm³': 'cold_water',
  'L/h': 'cold_water', L: 'cold_water',
};

/** What the form proposes for a field: the sensor's unit, its kind and a likely type (null: the person chooses). */
export function suggestFromField(field: DeviceFieldInfo): Suggestion {
  const unit = SENSOR_UNIT[field.unit] ?? field.unit;
  return {
    unit_of_measure: unit,
    kind: field.kind === 'instantaneous' ? 'instantaneous' : 'cumulative', // a snapshot is an index too
    sensor_type: TYPE_BY_UNIT[unit] ?? null,
  };
}
