/**
 * The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 *
 * A checksum is the one's complement of the one's-complement sum of the
 * 16-bit words covered. Sums are kept unfolded in a JS number while adding
 * (exact up to 2^53, far beyond any packet) and folded once at the end.
 */

import { bytesAvailable } from './field.ts';

/**
 * One's-complement sum of `bytes[start, end)` as big-endian 16-bit words, an
 * odd last byte padded with zero (RFC 1071 section 4.1), plus `initial`
 * (for example a pseudo-header sum). Unfolded; pass it to `foldChecksum` or
 * `finishChecksum`. The range is clamped to the buffer.
 */
export function checksumSum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  const length = bytesAvailable(bytes, start, end);
  let sum = initial;
  let i = start;
  if (length >= WIDE_MIN) {
    sum += wideSum(bytes, start, length);
    i = start + (length & ~15);
  }
  const pairsEnd = start + (length & ~1);
  for (; i < pairsEnd; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (length & 1) sum += bytes[i]! << 8;
  return sum;
}

/*
 * Below this many bytes the per-call DataView costs more than the wide loop
 * saves (headers, ICMP errors); above it, reading 32-bit big-endian words
 * four at a time sums a full-sized segment about 2.5x faster than pairs of
 * bytes, which is most of what terminating TCP costs per byte.
 */
const WIDE_MIN = 64;

/** The sum of the first `length & ~15` bytes from `start`, as 16-bit words; the caller adds the rest. */
function wideSum(bytes: Uint8Array, start: number, length: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stop = start + (length & ~15);
  // Two accumulators of 16-bit halves: each stays below 2^31 for any 64 KiB range.
  let high = 0;
  let low = 0;
  for (let i = start; i < stop; i += 16) {
    const w0 = view.getUint32(i);
    const w1 = view.getUint32(i + 4);
    const w2 = view.getUint32(i + 8);
    const w3 = view.getUint32(i + 12);
    high += (w0 >>> 16) + (w1 >>> 16) + (w2 >>> 16) + (w3 >>> 16);
    low += (w0 & 0xffff) + (w1 & 0xffff) + (w2 & 0xffff) + (w3 & 0xffff);
  }
  return high + low;
}

/** Folds the carries back in until the sum fits in 16 bits (end-around carry). */
export function foldChecksum(sum: number): number {
  // Integer ops while the sum fits in 32 bits (every packet-sized sum does); float ops beyond.
  while (sum > 0xffffffff) sum = (sum % 0x10000) + Math.floor(sum / 0x10000);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The checksum field value for a sum: its folded one's complement. */
export function finishChecksum(sum: number): number {
  return ~foldChecksum(sum) & 0xffff;
}

/** The checksum of `bytes[start, end)` with the checksum field itself zeroed. */
export function internetChecksum(bytes: Uint8Array, start: number, end: number, initial = 0): number {
  return finishChecksum(checksumSum(bytes, start, end, initial));
}

/**
 * True when the covered range, checksum field included, sums to all ones:
 * the receiver's check from RFC 1071 section 1 (a correct checksum of either
 * zero representation passes).
 */
export function checksumIsValid(bytes: Uint8Array, start: number, end: number, initial = 0): boolean {
  return foldChecksum(checksumSum(bytes, start, end, initial)) === 0xffff;
}

/**
 * The (unfolded) sum of the IPv4 pseudo-header TCP and UDP checksums cover
 * (RFC 793 section 3.1, RFC 768): source, destination, zero, protocol and
 * the transport length. Addresses are unsigned 32-bit numbers.
 */
export function pseudoHeaderSum(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + (protocol & 0xff) + (length & 0xffff);
}

/**
 * RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for one 16-bit word changing from
 * `oldWord` to `newWord`. Unlike the older RFC 1141 form it never yields
 * 0xFFFF where a full recomputation gives 0x0000, so for any checksum a full
 * computation could have produced the result is exactly what recomputing
 * from scratch gives (and a wrong checksum stays wrong by the same amount).
 */
export function updateChecksum16(checksum: number, oldWord: number, newWord: number): number {
  const sum = (~checksum & 0xffff) + (~oldWord & 0xffff) + (newWord & 0xffff);
  return ~foldChecksum(sum) & 0xffff;
}

/** As `updateChecksum16` for a 32-bit field (an address, a sequence number): two words at once. */
export function updateChecksum32(checksum: number, oldValue: number, newValue: number): number {
  const sum =
    (~checksum & 0xffff) +
    ((~oldValue >>> 16) & 0xffff) +
    (~oldValue & 0xffff) +
    ((newValue >>> 16) & 0xffff) +
    (newValue & 0xffff);
  return ~foldChecksum(sum) & 0xffff;
}

/**
 * UDP over IPv4 sends a computed checksum of 0 as 0xFFFF, because 0 on the
 * wire means "no checksum" (RFC 768). Both are the same one's-complement zero,
 * so receivers verify either the same way.
 */
export function udpChecksumForWire(computed: number): number {
  return computed === 0 ? 0xffff : computed;
}

/**
 * `updateChecksum16` for a UDP checksum field: a datagram sent without a
 * checksum (0) keeps none, and a result of 0 goes out as 0xFFFF. NAT needs
 * this rule; upstream skipped UDP entirely (runtime-semantics.md 3.5).
 */
export function updateUdpChecksum16(checksum: number, oldWord: number, newWord: number): number {
  if (checksum === 0) return 0;
  return udpChecksumForWire(updateChecksum16(checksum, oldWord, newWord));
}

/** `updateUdpChecksum16` for a 32-bit field (an address in the pseudo-header). */
export function updateUdpChecksum32(checksum: number, oldValue: number, newValue: number): number {
  if (checksum === 0) return 0;
  return udpChecksumForWire(updateChecksum32(checksum, oldValue, newValue));
}
