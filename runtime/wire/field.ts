/**
 * Big-endian field access shared by every header view. Plain byte arithmetic
 * instead of a DataView: creating a DataView per packet allocates, and V8
 * inlines these small functions into the callers. Reads past the end of the
 * buffer yield 0 bits and writes past it are dropped (typed-array semantics),
 * so a getter on an unchecked buffer can return nonsense but never throws;
 * validators make sure that does not happen on the data path.
 */

export function readU16(bytes: Uint8Array, at: number): number {
  return (bytes[at]! << 8) | bytes[at + 1]!;
}

export function writeU16(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 8;
  bytes[at + 1] = value;
}

/** Unsigned: `>>> 0` keeps addresses and sequence numbers in 0..2^32-1. */
export function readU32(bytes: Uint8Array, at: number): number {
  return ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0;
}

export function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value >>> 24;
  bytes[at + 1] = value >>> 16;
  bytes[at + 2] = value >>> 8;
  bytes[at + 3] = value;
}

/**
 * How many bytes a header starting at `offset` may use: up to `end`, never
 * past the buffer, and 0 for an offset that is not inside it. Validators
 * start here so that any caller-supplied length, however wrong, is safe.
 */
export function bytesAvailable(bytes: Uint8Array, offset: number, end: number): number {
  // Every packet takes this branch: small integers, no calls.
  if ((offset | 0) === offset && (end | 0) === end && offset >= 0) {
    const stop = end < bytes.length ? end : bytes.length;
    return stop > offset ? stop - offset : 0;
  }
  const stop = Math.min(end, bytes.length);
  if (!Number.isInteger(offset) || offset < 0 || !(stop > offset)) return 0;
  return Math.floor(stop) - offset;
}

/**
 * Copies `length` bytes. `TypedArray.set` throws when the range does not fit,
 * so it is only used once the bounds are known good; otherwise the copy goes
 * byte by byte, where out-of-range reads give 0 and writes are dropped.
 */
export function copyBytes(from: Uint8Array, fromAt: number, to: Uint8Array, toAt: number, length: number): void {
  if (
    length > 0 &&
    fromAt >= 0 &&
    toAt >= 0 &&
    fromAt + length <= from.length &&
    toAt + length <= to.length &&
    Number.isInteger(fromAt + toAt + length)
  ) {
    to.set(from.subarray(fromAt, fromAt + length), toAt);
    return;
  }
  for (let i = 0; i < length && i < to.length; i++) to[toAt + i] = from[fromAt + i] ?? 0;
}
