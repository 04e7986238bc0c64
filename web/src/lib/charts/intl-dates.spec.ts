import { describe, expect, it } from 'vitest';
import { add, diff, endOf, format, parse, startOf } from './intl-dates';

const local = (y: number, m: number, d: number, h = 0, min = 0) => new Date(y, m, d, h, min).getTime();

describe('Intl date adapter', () => {
  it('parses numbers, dates and ISO strings', () => {
    expect(parse(5)).toBe(5);
    expect(parse(new Date(7))).toBe(7);
    expect(parse('2026-11-28T10:00:00Z')).toBe(Date.UTC(2026, 10, 28, 10));
    expect(parse('nope')).toBeNull();
    expect(parse(null)).toBeNull();
  });

  it('formats ticks in the chosen language', () => {
    const t = local(2026, 10, 28, 14, 5);
    expect(format(t, 'hour', 'fr-BE')).toBe('14:05');
    expect(format(t, 'day', 'fr-BE')).toMatch(/^28 nov/);
    expect(format(t, 'day', 'en-GB')).toBe('28 Nov');
    expect(format(t, 'month', 'nl-BE')).toMatch(/nov.* 2026/);
  });

  it('adds calendar units in local time', () => {
    expect(add(local(2026, 0, 31), 1, 'day')).toBe(local(2026, 1, 1));
    expect(add(local(2026, 0, 15), 1, 'month')).toBe(local(2026, 1, 15));
    expect(add(local(2026, 0, 15), 1, 'quarter')).toBe(local(2026, 3, 15));
    expect(add(local(2026, 0, 15), 2, 'year')).toBe(local(2028, 0, 15));
    expect(add(0, 3, 'minute')).toBe(180_000);
  });

  it('counts whole units between two times', () => {
    expect(diff(local(2026, 2, 15), local(2026, 0, 15), 'month')).toBe(2);
    expect(diff(local(2026, 2, 14), local(2026, 0, 15), 'month')).toBe(1);
    expect(diff(local(2027, 0, 1), local(2026, 0, 1), 'year')).toBe(1);
    expect(diff(local(2026, 0, 15), local(2026, 0, 1), 'week')).toBe(2);
    expect(diff(local(2026, 0, 3), local(2026, 0, 1), 'day')).toBe(2);
    expect(diff(90_000, 0, 'minute')).toBe(1.5);
  });

  it('finds the start and end of units', () => {
    const t = local(2026, 10, 28, 14, 35); // a Saturday
    expect(startOf(t, 'hour')).toBe(local(2026, 10, 28, 14));
    expect(startOf(t, 'day')).toBe(local(2026, 10, 28));
    expect(startOf(t, 'isoWeek')).toBe(local(2026, 10, 23)); // Monday
    expect(startOf(t, 'month')).toBe(local(2026, 10, 1));
    expect(startOf(t, 'quarter')).toBe(local(2026, 9, 1));
    expect(startOf(t, 'year')).toBe(local(2026, 0, 1));
    expect(endOf(t, 'day')).toBe(local(2026, 10, 29) - 1);
    expect(endOf(t, 'month')).toBe(local(2026, 11, 1) - 1);
  });
});
