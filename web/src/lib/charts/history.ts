/** History queries: which bucket length keeps a chart at most ~1000 points, and the ranges offered. */

export const RANGES = {
  '1h': 3_600,
  '24h': 86_400,
  '7d': 7 * 86_400,
  '30d': 30 * 86_400,
  '1y': 365 * 86_400,
} as const;
export type RangeKey = keyof typeof RANGES;

// Bucket lengths a person reads easily; hourly and longer ones are answered from the rollups.
const NICE_INTERVALS = [60, 300, 600, 900, 1_800, 3_600, 3 * 3_600, 6 * 3_600, 12 * 3_600, 86_400, 7 * 86_400];

/** The shortest nice bucket length giving at most `maxPoints` buckets over `rangeSeconds`. */
export function pickInterval(rangeSeconds: number, maxPoints = 1000): number {
  const found = NICE_INTERVALS.find((interval) => rangeSeconds / interval <= maxPoints);
  return found ?? Math.ceil(rangeSeconds / maxPoints);
}

/** [start, end) of the range ending now, as ISO strings for the API. */
export function rangeBounds(range: RangeKey, now: Date = new Date()): { start: string; end: string } {
  const end = new Date(Math.ceil(now.getTime() / 60_000) * 60_000); // the next whole minute: stable caching
  const start = new Date(end.getTime() - RANGES[range] * 1000);
  return { start: start.toISOString(), end: end.toISOString() };
}
