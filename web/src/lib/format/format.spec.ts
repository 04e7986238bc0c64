import { describe, expect, it } from 'vitest';
import { digitsFor, formatAgo, formatDate, formatDuration, formatMeasure, formatNumber, formatPercent } from './format';

const nbsp = /[\u00a0\u202f ]/g; // Intl separates thousands and units with (narrow) no-break spaces
const plain = (s: string) => s.replace(nbsp, ' ');

describe('numbers and measures', () => {
  it('chooses fraction digits by magnitude', () => {
    expect([digitsFor(1234.5), digitsFor(123.45), digitsFor(12.345), digitsFor(0.12345)]).toEqual([0, 1, 2, 3]);
  });

  it('formats numbers in the reader language', () => {
    expect(plain(formatNumber(1234.5, 'fr-BE'))).toBe('1 235');
    expect(formatNumber(12.345, 'fr-BE')).toBe('12,35');
    expect(formatNumber(12.345, 'en-GB')).toBe('12.35');
    expect(formatNumber(12.5, 'nl-BE')).toBe('12,5');
  });

  it('lets Intl write the units it knows, and appends the others', () => {
    expect(plain(formatMeasure(21.34, '°C', 'fr-BE'))).toBe('21,34 °C');
    expect(plain(formatMeasure(12.5, 'L/h', 'en-GB'))).toMatch(/^12\.5 [lL]\/hr?$/);
    expect(plain(formatMeasure(1234.567, 'm³', 'fr-BE'))).toBe('1 235 m³');
    expect(plain(formatMeasure(0.5, 'kWh', 'nl-BE'))).toBe('0,5 kWh');
    expect(formatMeasure(null, 'kWh', 'fr-BE')).toBe('–');
    expect(formatMeasure(Number.NaN, 'kWh', 'fr-BE')).toBe('–');
  });

  it('formats percentages, signed on demand', () => {
    expect(plain(formatPercent(12.34, 'fr-BE', true))).toBe('+12,3 %');
    expect(formatPercent(-5, 'en-GB', true)).toBe('-5%');
    expect(formatPercent(null, 'en-GB')).toBe('–');
  });
});

describe('dates and durations', () => {
  const at = Date.UTC(2026, 10, 28, 10, 0, 0);

  it('says how long ago, in the largest whole unit', () => {
    expect(formatAgo(at - 12_000, at, 'en-GB')).toMatch(/^12 sec\.? ago$/); // ICU versions differ on the dot
    expect(formatAgo(at - 5 * 60_000, at, 'en-GB')).toMatch(/^5 min\.? ago$/);
    expect(plain(formatAgo(new Date(at - 3 * 3_600_000), at, 'fr-BE'))).toBe('il y a 3 h');
    expect(formatAgo(at + 5000, at, 'en-GB')).toMatch(/^0 sec\.? ago$/); // a clock slightly ahead is "now"
    expect(formatAgo(null, at, 'en-GB')).toBe('–');
  });

  it('formats dates per language', () => {
    const iso = '2026-11-28T10:00:00Z';
    expect(formatDate(iso, 'fr-BE', 'date')).toMatch(/28 nov\.? 2026/);
    expect(formatDate(iso, 'nl-BE', 'date')).toMatch(/28 nov\.? 2026/);
    expect(formatDate(iso, 'en-GB', 'date')).toBe('28 Nov 2026');
    expect(formatDate('not a date', 'en-GB')).toBe('–');
  });

  it('formats durations in their largest unit', () => {
    expect(formatDuration(42, 'en-GB')).toMatch(/^42 secs?$/);
    expect(formatDuration(240, 'en-GB')).toMatch(/^4 mins?$/);
    expect(formatDuration(9000, 'en-GB')).toMatch(/^2\.5 hrs?$/);
    expect(plain(formatDuration(3 * 86_400, 'fr-BE'))).toBe('3 j');
  });
});
