import type { Nic } from './nic.ts';

/**
 * A NIC middleware that loses and damages frames, after smoltcp's
 * phy::FaultInjector: wrap any NIC to see how the stack above copes with a
 * bad link, without the stack knowing. Both directions suffer alike.
 */
export interface FaultInjectorOptions {
  /** Chance, 0 to 1, that a frame is lost; default 0. */
  dropRate?: number;
  /** Chance, 0 to 1, that a frame that is not lost has one bit flipped; default 0. */
  corruptRate?: number;
  /** Uniform in [0, 1), like Math.random (the default); pass `xorshift32(seed)` for runs that repeat. */
  rng?: () => number;
}

export interface FaultInjectorCounters {
  [name: string]: number;
  fault_rx_dropped: number;
  fault_rx_corrupted: number;
  fault_tx_dropped: number;
  fault_tx_corrupted: number;
}

/**
 * Wraps `nic`. Its counters are the wrapped NIC's plus the faults injected.
 * A corrupted frame is a copy: the sender's buffer (which may be kept for a
 * retransmission) and the driver's are left alone.
 */
export function faultInjector(nic: Nic, options: FaultInjectorOptions = {}): Nic & { readonly counters: FaultInjectorCounters } {
  const dropRate = checkRate('dropRate', options.dropRate ?? 0);
  const corruptRate = checkRate('corruptRate', options.corruptRate ?? 0);
  const rng = options.rng ?? Math.random;
  const faults = { fault_rx_dropped: 0, fault_rx_corrupted: 0, fault_tx_dropped: 0, fault_tx_corrupted: 0 };

  // One draw per decision, so a seeded rng gives the same faults for the same traffic.
  function pass(frames: readonly Uint8Array[], dropped: 'fault_rx_dropped' | 'fault_tx_dropped', corrupted: 'fault_rx_corrupted' | 'fault_tx_corrupted'): Uint8Array[] {
    const out: Uint8Array[] = [];
    for (const frame of frames) {
      if (dropRate > 0 && rng() < dropRate) {
        faults[dropped]++;
      } else if (corruptRate > 0 && frame.length > 0 && rng() < corruptRate) {
        faults[corrupted]++;
        out.push(flipBit(frame, rng));
      } else out.push(frame);
    }
    return out;
  }

  return {
    mac: nic.mac,
    mtu: nic.mtu,
    get counters() {
      return { ...nic.counters, ...faults };
    },
    send(frames) {
      const out = pass(frames, 'fault_tx_dropped', 'fault_tx_corrupted');
      if (out.length > 0) nic.send(out);
    },
    onReceive(handler) {
      nic.onReceive((frames) => {
        const out = pass(frames, 'fault_rx_dropped', 'fault_rx_corrupted');
        if (out.length > 0) handler(out);
      });
    },
    close() {
      return nic.close();
    },
  };
}

/**
 * A copy of `frame` with one bit flipped: smoltcp's choice, as the most
 * likely error and the hardest to detect (every checksum must catch it).
 */
function flipBit(frame: Uint8Array, rng: () => number): Uint8Array {
  const copy = new Uint8Array(frame);
  const bit = Math.min(frame.length * 8 - 1, Math.floor(rng() * frame.length * 8));
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
}

/**
 * Marsaglia's xorshift32 (J. Stat. Softw. 8(14), 2003), the generator
 * smoltcp's fault injector uses: a fixed sequence per seed, in [0, 1).
 */
export function xorshift32(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9; // 0 is the one state xorshift never leaves
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

function checkRate(name: string, rate: number): number {
  if (!(rate >= 0 && rate <= 1)) throw new RangeError(`faultInjector: ${name} is a probability from 0 to 1, got ${rate}`);
  return rate;
}
