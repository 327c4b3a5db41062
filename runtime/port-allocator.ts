/**
 * Ephemeral ports of one local address (`IOS:api/net/port_util.hpp`,
 * runtime-semantics.md 3.4 and 3.6): the range 49152-65535 (RFC 6335
 * dynamic ports), a random first port, then sequential, skipping ports in
 * use. Masquerade and the stack's own outgoing sockets draw from the same
 * table for an address, so a NATed flow never takes a local socket's port.
 *
 * Randomness is injected (`random` returns [0, 1) like Math.random) so that
 * tests are deterministic. Running out is a value (-1), never an exception
 * (upstream threw inside the filter, 3.4 FIX).
 */

export const EPHEMERAL_FIRST = 49152;
export const EPHEMERAL_LAST = 65535;

export class PortAllocator {
  readonly first: number;
  readonly last: number;
  /** One byte per port: 1 = bound. */
  readonly #bound: Uint8Array;
  #cursor: number;
  #inUse = 0;

  constructor(random: () => number = Math.random, first = EPHEMERAL_FIRST, last = EPHEMERAL_LAST) {
    this.first = first;
    this.last = last;
    const count = Math.max(0, last - first + 1);
    this.#bound = new Uint8Array(count);
    this.#cursor = count === 0 ? 0 : Math.min(count - 1, Math.floor(random() * count));
  }

  /** Ports the range holds. */
  get size(): number {
    return this.#bound.length;
  }

  get inUse(): number {
    return this.#inUse;
  }

  /** The next free port after the previous one handed out, or -1 when every port is bound. */
  allocate(): number {
    const count = this.#bound.length;
    if (this.#inUse >= count) return -1;
    for (let tried = 0; tried < count; tried++) {
      const index = this.#cursor;
      this.#cursor = index + 1 === count ? 0 : index + 1;
      if (this.#bound[index] === 0) {
        this.#bound[index] = 1;
        this.#inUse++;
        return this.first + index;
      }
    }
    return -1;
  }

  /** Takes a specific port (a listening socket); false if it is outside the range or already bound. */
  bind(port: number): boolean {
    const index = port - this.first;
    if (!(index >= 0 && index < this.#bound.length) || this.#bound[index] === 1) return false;
    this.#bound[index] = 1;
    this.#inUse++;
    return true;
  }

  /** Frees a port; false if it was not bound (nothing changes). */
  release(port: number): boolean {
    const index = port - this.first;
    if (!(index >= 0 && index < this.#bound.length) || this.#bound[index] === 0) return false;
    this.#bound[index] = 0;
    this.#inUse--;
    return true;
  }

  isBound(port: number): boolean {
    const index = port - this.first;
    return index >= 0 && index < this.#bound.length && this.#bound[index] === 1;
  }
}
