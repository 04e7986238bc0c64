/**
 * Chart.js's time scale needs a date adapter; this one formats with Intl in the reader's language and computes in
 * the browser's local time, so no date library (nor its locale files) ships in the bundle.
 */
export type TimeUnit = 'millisecond' | 'second' | 'minute' | 'hour' | 'day' | 'week' | 'month' | 'quarter' | 'year';

const FORMATS: Record<string, Intl.DateTimeFormatOptions> = {
  datetime: { dateStyle: 'medium', timeStyle: 'medium' },
  millisecond: { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 },
  second: { hour: '2-digit', minute: '2-digit', second: '2-digit' },
  minute: { hour: '2-digit', minute: '2-digit' },
  hour: { hour: '2-digit', minute: '2-digit' },
  day: { day: 'numeric', month: 'short' },
  week: { day: 'numeric', month: 'short' },
  month: { month: 'short', year: 'numeric' },
  quarter: { month: 'short', year: 'numeric' },
  year: { year: 'numeric' },
};

const FIXED_MS: Partial<Record<TimeUnit, number>> = {
  millisecond: 1,
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
};

const formatters = new Map<string, Intl.DateTimeFormat>();

export function format(time: number, key: string, locale: string): string {
  const id = `${locale}|${key}`;
  let formatter = formatters.get(id);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat(locale, FORMATS[key] ?? FORMATS.datetime);
    formatters.set(id, formatter);
  }
  return formatter.format(time);
}

export function parse(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  const time = value instanceof Date ? value.getTime() : Date.parse(String(value));
  return Number.isNaN(time) ? null : time;
}

export function add(time: number, amount: number, unit: TimeUnit): number {
  const fixed = FIXED_MS[unit];
  if (fixed) return time + amount * fixed;
  const date = new Date(time);
  if (unit === 'day') date.setDate(date.getDate() + amount);
  else if (unit === 'week') date.setDate(date.getDate() + 7 * amount);
  else if (unit === 'month') date.setMonth(date.getMonth() + amount);
  else if (unit === 'quarter') date.setMonth(date.getMonth() + 3 * amount);
  else date.setFullYear(date.getFullYear() + amount);
  return date.getTime();
}

function months(max: Date, min: Date): number {
  const whole = (max.getFullYear() - min.getFullYear()) * 12 + (max.getMonth() - min.getMonth());
  // Not a whole month yet when the later date's day-and-time is before the earlier one's.
  const probe = new Date(min.getTime());
  probe.setMonth(probe.getMonth() + whole);
  return probe.getTime() > max.getTime() ? whole - 1 : whole;
}

export function diff(max: number, min: number, unit: TimeUnit): number {
  const fixed = FIXED_MS[unit];
  if (fixed) return (max - min) / fixed;
  if (unit === 'day' || unit === 'week') {
    const days = Math.round((startOf(max, 'day') - startOf(min, 'day')) / 86_400_000); // DST days are 23 or 25 h
    return unit === 'day' ? days : Math.trunc(days / 7);
  }
  const whole = months(new Date(max), new Date(min));
  return unit === 'month' ? whole : unit === 'quarter' ? Math.trunc(whole / 3) : Math.trunc(whole / 12);
}

export function startOf(time: number, unit: TimeUnit | 'isoWeek', weekday = 1): number {
  const date = new Date(time);
  switch (unit) {
    case 'millisecond':
      return time;
    case 'second':
      date.setMilliseconds(0);
      break;
    case 'minute':
      date.setSeconds(0, 0);
      break;
    case 'hour':
      date.setMinutes(0, 0, 0);
      break;
    case 'day':
      date.setHours(0, 0, 0, 0);
      break;
    case 'week':
    case 'isoWeek': {
      const first = unit === 'isoWeek' ? 1 : weekday;
      date.setHours(0, 0, 0, 0);
      date.setDate(date.getDate() - ((date.getDay() - first + 7) % 7));
      break;
    }
    case 'month':
      date.setHours(0, 0, 0, 0);
      date.setDate(1);
      break;
    case 'quarter':
      date.setHours(0, 0, 0, 0);
      date.setMonth(date.getMonth() - (date.getMonth() % 3), 1);
      break;
    case 'year':
      date.setHours(0, 0, 0, 0);
      date.setMonth(0, 1);
      break;
  }
  return date.getTime();
}

export function endOf(time: number, unit: TimeUnit | 'isoWeek'): number {
  const start = startOf(time, unit);
  return add(start, 1, unit === 'isoWeek' ? 'week' : unit) - 1;
}
