import fc from 'fast-check';
import type { Ir, IrExpr, IrStatement } from '../../compiler/ir.ts';

/** Constants a config compares fields with, and their neighbours: where bugs live. */
export function interestingValues(ir: Ir): number[] {
  const out = new Set<number>([0, 1, 255, 65535, 0xffffffff]);
  const add = (n: number) => {
    for (const d of [-1, 0, 1]) if (n + d >= 0 && n + d <= 0xffffffff) out.add(n + d);
  };
  const expr = (e: IrExpr): void => {
    if (e.kind === 'compare') add(e.value);
    else if (e.kind === 'in') e.ranges.forEach(([lo, hi]) => (add(lo), add(hi)));
    else if (e.kind === 'and' || e.kind === 'or') (expr(e.left), expr(e.right));
    else if (e.kind === 'not') expr(e.operand);
  };
  const stmt = (s: IrStatement): void => {
    if (s.kind === 'if') (expr(s.condition), s.then.forEach(stmt), s.else?.forEach(stmt));
    else if (s.kind === 'block') s.body.forEach(stmt);
  };
  ir.functions.forEach((f) => f.body.forEach(stmt));
  return [...out];
}

export interface RandomPacket {
  bytes: Uint8Array;
  ctState: number;
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
    })
    .map(({ raw, protocol, saddr, daddr, a, b, c, ttl, ctState }) => {
      const bytes = Uint8Array.from(raw);
      bytes[0] = 0x45;
      bytes[8] = ttl & 255;
      bytes[9] = protocol;
      const put32 = (at: number, n: number) => {
        bytes[at] = n >>> 24;
        bytes[at + 1] = (n >>> 16) & 255;
        bytes[at + 2] = (n >>> 8) & 255;
        bytes[at + 3] = n & 255;
      };
      put32(12, saddr >>> 0);
      put32(16, daddr >>> 0);
      // Ports / ICMP type: 16-bit fields take the low bits of a biased value.
      bytes[20] = (a >>> 8) & 255;
      bytes[21] = a & 255;
      bytes[22] = (b >>> 8) & 255;
      bytes[23] = b & 255;
      if (protocol === 1) bytes[20] = a & 255;
      if (protocol === 6) bytes[33] = c & 255;
      return { bytes, ctState };
    });
}
