import { describe, expect, it } from 'vitest';
import { FrameBatcher, type Scheduler } from './frame-batcher';
import { pickInterval, RANGES, rangeBounds } from './history';
import { RingBuffer } from './ring-buffer';

describe('RingBuffer', () => {
  it('keeps the newest items, oldest first, never more than its capacity', () => {
    const ring = new RingBuffer<number>(3);
    expect(ring.toArray()).toEqual([]);
    for (const n of [1, 2]) ring.push(n);
    expect(ring.toArray()).toEqual([1, 2]);
    for (const n of [3, 4, 5]) ring.push(n);
    expect(ring.toArray()).toEqual([3, 4, 5]);
    expect(ring.length).toBe(3);
    ring.clear();
    expect(ring.length).toBe(0);
    expect(ring.toArray()).toEqual([]);
  });

  it('holds a year of 10-second readings in constant memory', () => {
    const ring = new RingBuffer<number>(360);
    for (let i = 0; i < 3_153_600; i += 1) ring.push(i);
    const kept = ring.toArray();
    expect(kept.length).toBe(360);
    expect(kept[0]).toBe(3_153_600 - 360);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RingBuffer(0)).toThrow(RangeError);
    expect(() => new RingBuffer(1.5)).toThrow(RangeError);
  });
});

/** A scheduler whose time only moves when the test says so. */
function manualScheduler() {
  let now = 0;
  let timers: { at: number; run: () => void }[] = [];
  const scheduler: Scheduler = {
    now: () => now,
    later: (run, ms) => timers.push({ at: now + ms, run }),
    frame: (run) => timers.push({ at: now + 16, run }),
  };
  const advance = (ms: number) => {
    const until = now + ms;
    for (;;) {
      const next = timers.filter((t) => t.at <= until).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      timers = timers.filter((t) => t !== next);
      now = next.at;
      next.run();
    }
    now = until;
  };
  return { scheduler, advance };
}

describe('FrameBatcher', () => {
  it('folds a burst of changes into one flush on the next frame', () => {
    const { scheduler, advance } = manualScheduler();
    let flushes = 0;
    const batcher = new FrameBatcher(() => (flushes += 1), 250, scheduler);
    for (let i = 0; i < 500; i += 1) batcher.mark();
    expect(flushes).toBe(0);
    advance(20);
    expect(flushes).toBe(1);
  });

  it('flushes at most once per interval under a steady stream', () => {
    const { scheduler, advance } = manualScheduler();
    let flushes = 0;
    const batcher = new FrameBatcher(() => (flushes += 1), 250, scheduler);
    for (let ms = 0; ms < 1000; ms += 10) {
      batcher.mark(); // 100 readings a second
      advance(10);
    }
    advance(300);
    expect(flushes).toBeGreaterThanOrEqual(4);
    expect(flushes).toBeLessThanOrEqual(5);
  });

  it('does nothing once stopped', () => {
    const { scheduler, advance } = manualScheduler();
    let flushes = 0;
    const batcher = new FrameBatcher(() => (flushes += 1), 250, scheduler);
    batcher.mark();
    batcher.stop();
    advance(1000);
    batcher.mark();
    advance(1000);
    expect(flushes).toBe(0);
  });
});

describe('history ranges', () => {
  it('keeps every range at or under 1000 points with a readable bucket', () => {
    expect(pickInterval(RANGES['1h'])).toBe(60);
    expect(pickInterval(RANGES['24h'])).toBe(300);
    expect(pickInterval(RANGES['7d'])).toBe(900);
    expect(pickInterval(RANGES['30d'])).toBe(3600);
    expect(pickInterval(RANGES['1y'])).toBe(43_200);
    for (const seconds of Object.values(RANGES)) expect(seconds / pickInterval(seconds)).toBeLessThanOrEqual(1000);
    expect(pickInterval(10 * 365 * 86_400, 100)).toBe(Math.ceil((10 * 365 * 86_400) / 100));
  });

  it('ends a range at the next whole minute', () => {
    const { start, end } = rangeBounds('1h', new Date('2026-11-28T10:00:30Z'));
    expect(end).toBe('2026-11-28T10:01:00.000Z');
    expect(start).toBe('2026-11-28T09:01:00.000Z');
  });
});
