/** Choices the sensor form offers: types with their usual measurement kind and units. */
import type { SensorStatus, SensorType } from '../api/client';

export const SENSOR_TYPES: SensorType[] = [
  'cold_water', 'hot_water', 'gas', 'electricity', 'cogeneration', 'heating', 'temperature', 'humidity',
];
export const STATUSES: SensorStatus[] = ['active', 'inactive', 'maintenance', 'faulty'];

const GAUGE_TYPES = new Set<SensorType>(['temperature', 'humidity', 'heating']);

export function defaultKind(type: SensorType): 'cumulative' | 'instantaneous' {
  return GAUGE_TYPES.has(type) ? 'instantaneous' : 'cumulative';
}

export const UNITS_BY_TYPE: Record<SensorType, string[]> = {
  cold_water: ['m³', 'L', 'L/h'],
  hot_water: ['m³', 'L', 'L/h'],
  gas: ['m³'],
  electricity: ['kWh', 'W'],
  cogeneration: ['kWh', 'kW'],
  heating: ['kWh', 'MWh', '°C'],
  temperature: ['°C'],
  humidity: ['%'],
};
