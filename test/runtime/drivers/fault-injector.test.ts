import { describe, expect, it } from 'vitest';
import { faultInjector, xorshift32 } from '../../../runtime/drivers/fault-injector.ts';
import { MemoryNetwork, type MemoryNic } from '../../../runtime/drivers/memory.ts';
import { parseMac } from '../../../runtime/wire/ethernet.ts';
import { PING_REPLY, PING_REQUEST } from '../wire/frames.ts';

const MAC_A = parseMac('02:00:00:00:00:0a')!;
const MAC_B = parseMac('02:00:00:00:00:0b')!;

function wired(): { net: MemoryNetwork; a: MemoryNic; b: MemoryNic } {
  const net = new MemoryNetwork();
  const a = net.createNic({ name: 'a', mac: MAC_A });
  const b = net.createNic({ name: 'b', mac: MAC_B });
  net.wire(a, b);
  return { net, a, b };
}

function collect(nic: { onReceive(h: (frames: readonly Uint8Array[]) => void): void }): Uint8Array[] {
  const got: Uint8Array[] = [];
  nic.onReceive((frames) => got.push(...frames.map((f) => Uint8Array.from(f))));
  return got;
}

/** Positions of the bits in which `a` and `b` (of one length) differ. */
function differingBits(a: Uint8Array, b: Uint8Array): number[] {
  const bits: number[] = [];
  for (let i = 0; i < a.length; i++) for (let bit = 0; bit < 8; bit++) if (((a[i]! ^ b[i]!) >> bit) & 1) bits.push(i * 8 + bit);
  return bits;
}

describe('fault injector', () => {
  it('passes every frame untouched when both rates are zero', () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(a, { rng: xorshift32(1) });
    const atB = collect(b);
    faulty.send([PING_REQUEST, PING_REPLY]);
    net.flush();
    expect(atB).toEqual([PING_REQUEST, PING_REPLY]);
  });

  it('loses every frame sent at drop rate 1, and counts them', () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(a, { dropRate: 1 });
    const atB = collect(b);
    faulty.send([PING_REQUEST, PING_REPLY]);
    net.flush();
    expect(atB).toEqual([]);
    expect(faulty.counters).toMatchObject({ fault_tx_dropped: 2, tx_frames: 0 });
  });

  it('loses received frames too', () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(b, { dropRate: 1 });
    const atB = collect(faulty);
    a.send([PING_REQUEST]);
    net.flush();
    expect(atB).toEqual([]);
    expect(faulty.counters).toMatchObject({ fault_rx_dropped: 1, rx_frames: 1 });
  });

  it("flips exactly one bit of a copy, leaving the sender's buffer alone", () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(a, { corruptRate: 1, rng: xorshift32(7) });
    const atB = collect(b);
    const frame = Uint8Array.from(PING_REQUEST);
    faulty.send([frame]);
    net.flush();
    expect(frame).toEqual(PING_REQUEST);
    expect(differingBits(atB[0]!, PING_REQUEST)).toHaveLength(1);
    expect(faulty.counters.fault_tx_corrupted).toBe(1);
  });

  it('corrupts received frames with one flipped bit as well', () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(b, { corruptRate: 1, rng: xorshift32(3) });
    const atB = collect(faulty);
    a.send([PING_REPLY]);
    net.flush();
    expect(differingBits(atB[0]!, PING_REPLY)).toHaveLength(1);
    expect(faulty.counters.fault_rx_corrupted).toBe(1);
  });

  it('injects the same faults into the same traffic for the same seed', () => {
    const run = (seed: number): Uint8Array[] => {
      const { net, a, b } = wired();
      const faulty = faultInjector(a, { dropRate: 0.3, corruptRate: 0.3, rng: xorshift32(seed) });
      const atB = collect(b);
      faulty.send(Array.from({ length: 50 }, () => PING_REQUEST));
      net.flush();
      return atB;
    };
    expect(run(42)).toEqual(run(42));
    expect(run(42)).not.toEqual(run(43));
  });

  it('drops about the share of frames it is asked to', () => {
    const { net, a, b } = wired();
    const faulty = faultInjector(a, { dropRate: 0.25, rng: xorshift32(99) });
    collect(b);
    for (let i = 0; i < 40; i++) faulty.send(Array.from({ length: 100 }, () => PING_REQUEST));
    net.flush();
    expect(faulty.counters.fault_tx_dropped).toBeGreaterThan(900);
    expect(faulty.counters.fault_tx_dropped).toBeLessThan(1100);
  });

  it('refuses a rate that is not a probability', () => {
    const { a } = wired();
    expect(() => faultInjector(a, { dropRate: 1.5 })).toThrow(/dropRate is a probability from 0 to 1/);
    expect(() => faultInjector(a, { corruptRate: Number.NaN })).toThrow(/corruptRate/);
  });
});

describe('xorshift32', () => {
  it('yields numbers in [0, 1), the same sequence for the same seed', () => {
    const one = xorshift32(5);
    const two = xorshift32(5);
    const xs = Array.from({ length: 1000 }, () => one());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => two()));
    expect(xs.every((x) => x >= 0 && x < 1)).toBe(true);
  });

  it('does not get stuck at zero when seeded with zero', () => {
    const rng = xorshift32(0);
    expect(rng()).not.toBe(rng());
  });
});
