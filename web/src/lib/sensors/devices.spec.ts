import { describe, expect, it } from 'vitest';
import { suggestFromField } from './devices';

describe('a device field suggests the sensor', () => {
  it('converts the device unit to the sensor unit and keeps the kind', () => {
    expect(suggestFromField({ field: 'emdata:0.total_act', unit: 'Wh', kind: 'cumulative' })).toEqual({
      unit_of_measure: 'kWh', kind: 'cumulative', sensor_type: 'electricity',
    });
    expect(suggestFromField({ field: 'total_m3', unit: 'm3', kind: 'cumulative' }).unit_of_measure).toBe('m³');
    expect(suggestFromField({ field: 'flow_temperature_c', unit: 'C', kind: 'instantaneous' })).toEqual({
      unit_of_measure: '°C', kind: 'instantaneous', sensor_type: 'temperature',
    });
  });

  it('takes a snapshot as an index, and leaves an unknown unit as it is', () => {
    expect(suggestFromField({ field: 'target_m3', unit: 'm3', kind: 'snapshot' }).kind).toBe('cumulative');
    expect(suggestFromField({ field: 'ENERGY.Factor', unit: '', kind: 'instantaneous' })).toEqual({
      unit_of_measure: '', kind: 'instantaneous', sensor_type: null,
    });
  });
});
