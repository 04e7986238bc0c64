/** Numbers, measures, dates and durations in the reader's language, all through Intl. */

// Units Intl formats itself (ECMA-402 sanctioned units and their "-per-" compounds); others follow the number.
const INTL_UNITS: Record<string, string> = {
  '°C': 'celsius',
  '%': 'percent',
  'L/h': 'liter-per-hour',
  L: 'liter',
  h: 'hour',
};

const cache = new Map<string, Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>();

function cached<T extends Intl.NumberFormat | Intl.DateTimeFormat | Intl.RelativeTimeFormat>(
  key: string,
  make: () => T,
): T {
  let found = cache.get(key) as T | undefined;
  if (!found) {
    found = make();
    cache.set(key, found);
  }
  return found;
}

/** Fraction digits that suit the magnitude: 1 234, 123.4, 12.34, 0.123. */
export function digitsFor(value: number): number {
  const magnitude = Math.abs(value);
  if (magnitude >= 1000) return 0;
  if (magnitude >= 100) return 1;
  if (magnitude >= 1) return 2;
  return 3;
}

export function formatNumber(value: number, locale: string, digits = digitsFor(value)): string {
  return cached(`n|${locale}|${digits}`, () => new Intl.NumberFormat(locale, { maximumFractionDigits: digits })).format(
    value,
  );
}

/** A value with its unit of measure: "12,5 L/h", "21,3 °C", "1 234 m³". */
export function formatMeasure(value: number | null | undefined, unit: string, locale: string, digits?: number): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const fraction = digits ?? digitsFor(value);
  const intlUnit = INTL_UNITS[unit];
  if (intlUnit) {
    const format = cached(
      `u|${locale}|${intlUnit}|${fraction}`,
      () => new Intl.NumberFormat(locale, { style: 'unit', unit: intlUnit, maximumFractionDigits: fraction }),
    );
    return format.format(value);
  }
  return unit ? `${formatNumber(value, locale, fraction)}\u00a0${unit}` : formatNumber(value, locale, fraction);
}

export function formatPercent(value: number | null | undefined, locale: string, signed = false): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return '–';
  const format = cached(
    `p|${locale}|${signed}`,
    () =>
      new Intl.NumberFormat(locale, {
        style: 'unit',
        unit: 'percent',
        maximumFractionDigits: 1,
        signDisplay: signed ? 'exceptZero' : 'auto',
      }),
  );
  return format.format(value);
}

const DATE_STYLES = {
  datetime: { dateStyle: 'medium', timeStyle: 'short' },
  date: { dateStyle: 'medium' },
  time: { timeStyle: 'medium' },
  short: { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit' },
} as const satisfies Record<string, Intl.DateTimeFormatOptions>;

export function formatDate(
  value: string | number | Date | null | undefined,
  locale: string,
  style: keyof typeof DATE_STYLES = 'datetime',
): string {
  if (value === null || value === undefined) return '–';
  const date = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(date.getTime())) return '–';
  return cached(`d|${locale}|${style}`, () => new Intl.DateTimeFormat(locale, DATE_STYLES[style])).format(date);
}

const STEPS: [Intl.RelativeTimeFormatUnit, number][] = [
  ['second', 60],
  ['minute', 60],
  ['hour', 24],
  ['day', 30],
  ['month', 12],
  ['year', Number.POSITIVE_INFINITY],
];

/** "il y a 12 s", "5 min ago": how long ago `value` was, from `now` (both ms or dates). */
export function formatAgo(value: string | number | Date | null | undefined, now: number, locale: string): string {
  if (value === null || value === undefined) return '–';
  const then = value instanceof Date ? value.getTime() : new Date(value).getTime();
  if (Number.isNaN(then)) return '–';
  let amount = Math.max(0, (now - then) / 1000);
  const format = cached(
    `r|${locale}`,
    () => new Intl.RelativeTimeFormat(locale, { numeric: 'always', style: 'short' }),
  );
  for (const [unit, size] of STEPS) {
    if (amount < size) return format.format(-Math.floor(amount), unit);
    amount /= size;
  }
  return '–';
}

/** A duration in seconds as its largest sensible unit: "4 min", "2,5 h", "3 j". */
export function formatDuration(seconds: number | null | undefined, locale: string): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const [unit, value] =
    seconds < 60
      ? (['second', seconds] as const)
      : seconds < 3600
        ? (['minute', seconds / 60] as const)
        : seconds < 86_400
          ? (['hour', seconds / 3600] as const)
          : (['day', seconds / 86_400] as const);
  return cached(
    `t|${locale}|${unit}`,
    () => new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'short', maximumFractionDigits: 1 }),
  ).format(value);
}
