import fc from 'fast-check';
import { forEachComparedRange } from '../../appliances/random-packets.ts';
import type { Ir } from '../../compiler/ir.ts';
import { writeU16, writeU32 } from '../../runtime/wire/field.ts';

/** Constants a config compares fields with, and their neighbours: where bugs live. */
export function interestingValues(ir: Ir): number[] {
  const out = new Set<number>([0, 1, 255, 65535, 0xffffffff]);
  const add = (n: number) => {
    for (const d of [-1, 0, 1]) if (n + d >= 0 && n + d <= 0xffffffff) out.add(n + d);
  };
  forEachComparedRange(ir, (_field, lo, hi) => (add(lo), add(hi)));
  return [...out];
}

export interface RandomPacket {
  bytes: Uint8Array;
  ctState: number;
  /** What the NAT engine answers a dnat/snat on this packet: false, it refused the translation. */
  natResult: boolean;
}

/**
 * IPv4 packets with a 20-byte header and random header fields, biased so
 * that many fields take the config's interesting values. Protocol is TCP, UDP,
 * ICMP or another; the L4 header follows at offset 20.
 */
export function packets(values: number[]): fc.Arbitrary<RandomPacket> {
  const v32 = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...values) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) });
  return fc
    .record({
      raw: fc.uint8Array({ minLength: 60, maxLength: 60 }),
      protocol: fc.constantFrom(1, 6, 17, 6, 17, 47),
      saddr: v32,
      daddr: v32,
      a: v32,
      b: v32,
      c: v32,
      ttl: v32,
      ctState: fc.constantFrom(1, 2, 3),
      natResult: fc.boolean(),
    })
    .map(({ raw, protocol, saddr, daddr, a, b, c, ttl, ctState, natResult }) => {
      const bytes = Uint8Array.from(raw);
      bytes[0] = 0x45;
      bytes[8] = ttl & 255;
      bytes[9] = protocol;
      writeU32(bytes, 12, saddr);
      writeU32(bytes, 16, daddr);
      // Ports / ICMP type: 16-bit fields take the low bits of a biased value.
      writeU16(bytes, 20, a);
      writeU16(bytes, 22, b);
      if (protocol === 1) bytes[20] = a & 255;
      if (protocol === 6) bytes[33] = c & 255;
      return { bytes, ctState, natResult };
    });
}
