/** Chart.js with only the parts the application draws, and the Intl date adapter. */
import {
  _adapters,
  BarController,
  BarElement,
  Chart,
  Filler,
  Legend,
  LinearScale,
  LineController,
  LineElement,
  PointElement,
  TimeScale,
  Tooltip,
} from 'chart.js';
import * as dates from './intl-dates';

Chart.register(LineController, LineElement, PointElement, BarController, BarElement, LinearScale, TimeScale, Filler, Legend, Tooltip);

type AdapterThis = { options?: { locale?: string } };

_adapters._date.override({
  formats: () => ({
    datetime: 'datetime', millisecond: 'millisecond', second: 'second', minute: 'minute', hour: 'hour',
    day: 'day', week: 'week', month: 'month', quarter: 'quarter', year: 'year',
  }),
  parse: (value: unknown) => dates.parse(value),
  format(this: AdapterThis, time: number, key: string) {
    return dates.format(time, key, this.options?.locale ?? 'fr-BE');
  },
  add: (time: number, amount: number, unit: dates.TimeUnit) => dates.add(time, amount, unit),
  diff: (max: number, min: number, unit: dates.TimeUnit) => dates.diff(max, min, unit),
  startOf: (time: number, unit: dates.TimeUnit | 'isoWeek', weekday?: number) => dates.startOf(time, unit, weekday),
  endOf: (time: number, unit: dates.TimeUnit | 'isoWeek') => dates.endOf(time, unit),
});

export { Chart };

/** The application's palette, one colour per series in turn (distinct for the colour-blind too). */
export const SERIES_COLOURS = ['#0f766e', '#c2410c', '#7c3aed', '#0369a1', '#b91c1c', '#4d7c0f', '#a16207', '#be185d'];
