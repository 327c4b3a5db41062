import type { Clock } from './appliance.ts';

/**
 * One timer for the soonest of many deadlines: `armFor` moves it earlier
 * when a sooner deadline comes and ignores later ones (the owner re-arms
 * from its own state when it fires, so a deadline that moved later costs at
 * most one early wake). It waits at least 1 ms, so a deadline already past
 * runs at the next turn of the event loop, never in a loop of 0 ms timers.
 */
export class OneShotTimer {
  #handle: unknown;
  #at = Infinity;

  constructor(
    private readonly clock: Clock,
    private readonly fire: () => void,
  ) {}

  /** When it fires next; Infinity when it is not armed. */
  get at(): number {
    return this.#at;
  }

  /** Fire at `at` (clock ms) unless already due sooner. */
  armFor(at: number): void {
    if (at >= this.#at) return;
    this.clear();
    this.#at = at;
    this.#handle = this.clock.setTimer(Math.max(1, Math.ceil(at - this.clock.now())), () => {
      this.#handle = undefined;
      this.#at = Infinity;
      this.fire();
    });
  }

  clear(): void {
    if (this.#handle !== undefined) this.clock.clearTimer(this.#handle);
    this.#handle = undefined;
    this.#at = Infinity;
  }
}
