/*
 * Buffers for the packets the appliance builds itself (its TCP segments,
 * ICMP, syslog), carved out of shared 64 KiB blocks. `new Uint8Array(n)`
 * allocates and zeroes a backing store of its own, which cost about 0.8 us
 * per TCP segment - a sixth of what the load balancer spent per segment;
 * a view of a block costs a sixth of that. Blocks are never reused: a
 * buffer holds its block alive for as long as anyone keeps it (a driver's
 * queue, a capture), so handing it out is as safe as a fresh allocation.
 * Each buffer starts zeroed and on an 8-byte boundary of its block.
 */

const BLOCK = 64 * 1024;
/** Larger requests get a store of their own rather than most of a block. */
const LARGEST_CARVED = BLOCK / 8;

let block = new ArrayBuffer(BLOCK);
let used = 0;

/** `n` zeroed bytes that no other buffer shares; `.buffer` may hold other packets' bytes, so use byteOffset. */
export function freshBuffer(n: number): Uint8Array {
  if (n > LARGEST_CARVED) return new Uint8Array(n);
  if (used + n > BLOCK) {
    block = new ArrayBuffer(BLOCK);
    used = 0;
  }
  const bytes = new Uint8Array(block, used, n);
  used += (n + 7) & ~7;
  return bytes;
}
