/*
 * Initial sequence numbers as RFC 6528 builds them: a 4-microsecond clock
 * plus a keyed function of the connection's addresses and ports, so that an
 * off-path host cannot predict another connection's numbers (upstream used
 * the C library's rand(), runtime-semantics.md 9 FIX). The keyed function
 * here is a multiply-xorshift mix over the tuple and a 128-bit boot secret:
 * the image runs without a crypto library, and the secret never leaves the
 * appliance.
 */
export function initialSequenceNumber(secret: Uint32Array, localAddress: number, localPort: number, remoteAddress: number, remotePort: number, nowMs: number): number {
  let h = secret[0]! ^ Math.imul(localAddress | 0, 0x9e3779b1);
  h = mix(h ^ secret[1]! ^ remoteAddress);
  h = mix(h ^ secret[2]! ^ ((localPort << 16) | remotePort));
  h = mix(h ^ secret[3]!);
  return (h + Math.floor(nowMs * 250)) >>> 0;
}

function mix(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return x ^ (x >>> 16);
}
