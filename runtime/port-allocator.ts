/**
 * Ephemeral ports of one local address (`IOS:api/net/port_util.hpp`,
 * runtime-semantics.md 3.4 and 3.6): the range 49152-65535 (RFC 6335
 * dynamic ports), a random first port, then sequential, skipping ports in
 * use. Masquerade and the stack's own outgoing sockets draw from the same
 * table for an address, so a NATed flow never takes a local socket's port.
 *
 * A local socket's port is its own (`allocate`, `bind`). A masquerade port
 * may be shared: NATed flows to different remote sockets can use one port,
 * as in Linux, since conntrack tells their replies apart - so more flows
 * than the range holds fit, once every port is taken (`acquireShared`,
 * `releaseShared`, counted per port). Upstream gave each flow a port of its
 * own, 16384 flows per address at most.
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
  /** One byte per port: 1 = bound by a local socket or by the first NATed flow on it. */
  readonly #bound: Uint8Array;
  /** Per port: how many NATed flows hold it beyond the first (acquireShared); never on a local socket's port. */
  readonly #shared: Uint16Array;
  /** Per port: 1 when the holder of #bound is NAT (so others may share it). */
  readonly #nat: Uint8Array;
  /** The NAT-held ports, for a random pick in constant time, and where each sits in it (-1: not there). */
  readonly #natPorts: number[] = [];
  readonly #natSlot: Int32Array;
  #cursor: number;
  #inUse = 0;
  readonly #random: () => number;

  constructor(random: () => number = Math.random, first = EPHEMERAL_FIRST, last = EPHEMERAL_LAST) {
    this.first = first;
    this.last = last;
    const count = Math.max(0, last - first + 1);
    this.#bound = new Uint8Array(count);
    this.#shared = new Uint16Array(count);
    this.#nat = new Uint8Array(count);
    this.#natSlot = new Int32Array(count).fill(-1);
    this.#random = random;
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

  /** Frees a local socket's port; false if it was not bound by one (nothing changes: NAT ports go by releaseShared). */
  release(port: number): boolean {
    const index = port - this.first;
    if (!(index >= 0 && index < this.#bound.length) || this.#bound[index] === 0 || this.#nat[index] === 1) return false;
    this.#bound[index] = 0;
    this.#inUse--;
    return true;
  }

  /** A free port for a NATed flow, which later flows may share (`acquireShared`); -1 when none is free. */
  allocateShareable(): number {
    const port = this.allocate();
    if (port < 0) return -1;
    const index = port - this.first;
    this.#nat[index] = 1;
    this.#natSlot[index] = this.#natPorts.length;
    this.#natPorts.push(port);
    return port;
  }

  /**
   * A port NATed flows hold, picked at random, for one more flow to share;
   * -1 if none. The caller checks that its flow's tuple is unique with it,
   * then calls `acquireShared`.
   */
  shareCandidate(): number {
    const held = this.#natPorts.length;
    if (held === 0) return -1;
    const port = this.#natPorts[Math.min(held - 1, Math.floor(this.#random() * held))]!;
    return this.#shared[port - this.first]! < 0xffff ? port : -1;
  }

  /** One more NATed flow holds `port` (a shareCandidate); false if it is not a NAT port. */
  acquireShared(port: number): boolean {
    const index = port - this.first;
    if (!(index >= 0 && index < this.#bound.length) || this.#nat[index] === 0 || this.#shared[index] === 0xffff) return false;
    this.#shared[index]!++;
    return true;
  }

  /** A NATed flow lets go of `port`: the port is free once its last flow has. False if no NATed flow held it. */
  releaseShared(port: number): boolean {
    const index = port - this.first;
    if (!(index >= 0 && index < this.#bound.length) || this.#nat[index] === 0) return false;
    if (this.#shared[index]! > 0) {
      this.#shared[index]!--;
      return true;
    }
    // The last flow on it: the port is free again, and leaves the NAT-held list (swap with the last).
    const slot = this.#natSlot[index]!;
    const last = this.#natPorts.pop()!;
    if (last !== port) {
      this.#natPorts[slot] = last;
      this.#natSlot[last - this.first] = slot;
    }
    this.#natSlot[index] = -1;
    this.#nat[index] = 0;
    this.#bound[index] = 0;
    this.#inUse--;
    return true;
  }

  isBound(port: number): boolean {
    const index = port - this.first;
    return index >= 0 && index < this.#bound.length && this.#bound[index] === 1;
  }
}
