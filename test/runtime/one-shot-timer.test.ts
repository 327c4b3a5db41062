import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../runtime/clock.ts';
import { OneShotTimer } from '../../runtime/one-shot-timer.ts';

describe('a one-shot timer for the soonest of many deadlines', () => {
  function setup() {
    const clock = new ManualClock();
    const fired: number[] = [];
    const timer = new OneShotTimer(clock, () => fired.push(clock.now()));
    return { clock, fired, timer };
  }

  it('fires once, at the deadline', () => {
    const { clock, fired, timer } = setup();
    timer.armFor(250);
    clock.advance(1000);
    expect(fired).toEqual([250]);
    expect(timer.at).toBe(Infinity);
  });

  it('moves earlier for a sooner deadline and ignores a later one', () => {
    const { clock, fired, timer } = setup();
    timer.armFor(500);
    timer.armFor(200);
    timer.armFor(800);
    clock.advance(1000);
    expect(fired).toEqual([200]);
  });

  it('waits at least 1 ms for a deadline already past, rather than fire in a loop', () => {
    const { clock, fired, timer } = setup();
    clock.advance(100);
    timer.armFor(40);
    clock.advance(0);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([101]);
  });

  it('never fires once cleared, and may be armed again', () => {
    const { clock, fired, timer } = setup();
    timer.armFor(100);
    timer.clear();
    clock.advance(200);
    expect(fired).toEqual([]);
    timer.armFor(300);
    clock.advance(200);
    expect(fired).toEqual([300]);
  });
});
