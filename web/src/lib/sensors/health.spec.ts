import { describe, expect, it } from 'vitest';
import type { DeadLetter } from '../api/client';
import { concernsSensor, health, signalBars } from './health';

describe('sensor health', () => {
  const now = Date.UTC(2026, 10, 28, 12);
  it('is ok while readings arrive within three sampling intervals', () => {
    expect(health('active', now - 25_000, 10, now)).toBe('ok');
    expect(health('active', now - 59_000, 10, now)).toBe('ok');
    expect(health('active', now - 61_000, 10, now)).toBe('silent');
    expect(health('active', null, 10, now)).toBe('waiting');
  });
  it('follows the status when the sensor is not active', () => {
    expect(health('faulty', now, 10, now)).toBe('faulty');
    expect(health('maintenance', now, 10, now)).toBe('maintenance');
    expect(health('inactive', null, 10, now)).toBe('inactive');
  });
  it('turns signal strength into bars', () => {
    expect([-50, -70, -85, -100, -115, null].map(signalBars)).toEqual([4, 3, 2, 1, 0, 0]);
  });
});

describe('dead letters of a new sensor', () => {
  const sensor = { sensor_id: 'KAM-123', mqtt_topic: 'koprogo/o/b/KAM-123/readings' };
  const letter = (topic: string, payload = '{}'): DeadLetter => ({
    id: 1, organization_id: null, topic, payload_excerpt: payload, payload_size: payload.length,
    reason: 'invalid_json', detail: '', received_at: '2026-11-28T12:00:00Z',
  });
  it('are those sent to its topic or naming its device id', () => {
    expect(concernsSensor(letter('koprogo/o/b/KAM-123/readings'), sensor)).toBe(true);
    expect(concernsSensor(letter('koprogo/o/other-building/kam-123/readings'), sensor)).toBe(true);
    expect(concernsSensor(letter('wmbus/x', '{"id": "KAM-123"}'), sensor)).toBe(true);
    expect(concernsSensor(letter('koprogo/o/b/KAM-1234/readings'), sensor)).toBe(false);
  });
});
