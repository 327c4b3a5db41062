import type { Clock } from './appliance.ts';

/*
 * Clocks for the appliance. The tender uses the system clock; simulations
 * and tests use a manual one whose time moves only when told, so timeouts
 * (ARP retries, conntrack expiry, Timers) run in microseconds of real time.
 */

export function systemClock(): Clock {
  const start = performance.now();
  return {
    now: () => performance.now() - start,
    setTimer: (ms, fn) => {
      const t = setTimeout(fn, ms);
      t.unref?.();
      return t;
    },
    clearTimer: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    wallTime: () => Date.now(),
  };
}

export class ManualClock implements Clock {
  private time = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  constructor(private readonly wallStart = Date.UTC(2026, 0, 1)) {}

  now(): number {
    return this.time;
  }

  wallTime(): number {
    return this.wallStart + this.time;
  }

  setTimer(ms: number, fn: () => void): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }

  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }

  /** Moves time forward, running each timer that falls due, in order. */
  advance(ms: number, between?: () => void): void {
    const target = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].at <= target && (!next || entry[1].at < next[1].at)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = Math.max(this.time, next[1].at);
      next[1].fn();
      between?.();
    }
    this.time = target;
  }
}
