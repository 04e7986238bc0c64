/**
 * Coalesces many "something changed" signals into one flush per animation frame, at most every `minInterval` ms:
 * a chart redraws a few times a second however many readings arrive.
 */
export interface Scheduler {
  now(): number;
  later(callback: () => void, ms: number): unknown;
  frame(callback: () => void): unknown;
}

export const browserScheduler: Scheduler = {
  now: () => performance.now(),
  later: (callback, ms) => setTimeout(callback, ms),
  frame: (callback) =>
    typeof requestAnimationFrame === 'function' ? requestAnimationFrame(() => callback()) : setTimeout(callback, 16),
};

export class FrameBatcher {
  private pending = false;
  private lastFlush = Number.NEGATIVE_INFINITY;
  private stopped = false;

  constructor(
    private readonly flush: () => void,
    private readonly minInterval = 250,
    private readonly scheduler: Scheduler = browserScheduler,
  ) {}

  /** Ask for a flush; calls before it happens are folded into it. */
  mark(): void {
    if (this.pending || this.stopped) return;
    this.pending = true;
    const wait = Math.max(0, this.lastFlush + this.minInterval - this.scheduler.now());
    this.scheduler.later(() => this.scheduler.frame(() => this.run()), wait);
  }

  stop(): void {
    this.stopped = true;
  }

  private run(): void {
    this.pending = false;
    if (this.stopped) return;
    this.lastFlush = this.scheduler.now();
    this.flush();
  }
}
