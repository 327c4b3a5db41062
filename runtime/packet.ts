/**
 * The per-packet view every runtime module shares, and the pool of buffers
 * packets live in.
 *
 * A `Packet` is four offsets into one `Uint8Array`; the header fields are
 * read and written in place with the `runtime/wire` views, never copied.
 * The stack keeps one `Packet` object per buffer and refills it with
 * `loadFrame` / `loadDatagram`, so the steady-state path allocates nothing
 * (architecture.md, "Performance design rules").
 */

import { ETHERNET_HEADER_LEN, EtherType, ethEtherType } from './wire/ethernet.ts';
import { bytesAvailable } from './wire/field.ts';
import { checkIpv4, ipv4HeaderLen, ipv4TotalLen, type Ipv4Error } from './wire/ipv4.ts';
import { isVlanTpid, VLAN_HEADER_LEN, vlanEtherType } from './wire/vlan.ts';

/** How conntrack classified the packet (`Conntrack.track` writes it; Linux keeps the same in `skb->_nfct`). */
export const CtInfo = {
  /** Not tracked: no entry, or not looked at yet. */
  None: -1,
  /** Travels in the direction of the flow's first packet. */
  Original: 0,
  /** Travels the other way. */
  Reply: 1,
  /** Bit set on an ICMP error that quotes a packet of the flow (RELATED); the low bit is still the direction. */
  Related: 2,
} as const;

export interface Packet {
  /** The frame (or datagram) buffer; may be longer than the packet. */
  bytes: Uint8Array;
  /** Offset of the IPv4 header. */
  l3: number;
  /** Offset of the transport header (l3 + IHL * 4). */
  l4: number;
  /** End of the IP datagram (l3 + total length): link padding after it is not the packet's. */
  end: number;
  /** A `CtInfo` value: direction, plus the Related bit; `CtInfo.None` until tracked. */
  ctInfo: number;
}

/**
 * 'not-ipv4': an EtherType other than IPv4 (ARP, IPv6, ...): not an error of
 * the frame, just not ours. 'stacked-tag': Q-in-Q, dropped and counted by
 * project decision (runtime-semantics.md 14).
 */
export type PacketError = Ipv4Error | 'not-ipv4' | 'stacked-tag';

/** An empty view, to be filled by `loadFrame` / `loadDatagram`. */
export function newPacket(): Packet {
  return { bytes: new Uint8Array(0), l3: 0, l4: 0, end: 0, ctInfo: CtInfo.None };
}

/**
 * Points `pkt` at the IPv4 datagram that starts at `l3` of `bytes` (up to
 * `length` bytes of the buffer are valid). Checks the header once, checksum
 * included unless `verifyChecksum` is false (upstream `drop_invalid_in`,
 * runtime-semantics.md 1.2 step 2), and trims link padding by taking `end`
 * from the total length. Leaves `pkt` unusable and returns the reason on bad
 * bytes.
 */
export function loadDatagram(
  pkt: Packet,
  bytes: Uint8Array,
  l3 = 0,
  length = bytes.length,
  verifyChecksum = true,
): PacketError | undefined {
  pkt.bytes = bytes;
  pkt.ctInfo = CtInfo.None;
  const error = checkIpv4(bytes, l3, length, verifyChecksum);
  if (error) {
    pkt.l3 = pkt.l4 = pkt.end = 0;
    return error;
  }
  pkt.l3 = l3;
  pkt.l4 = l3 + ipv4HeaderLen(bytes, l3);
  pkt.end = l3 + ipv4TotalLen(bytes, l3);
  return undefined;
}

/**
 * Points `pkt` at the IPv4 datagram inside an Ethernet frame, skipping one
 * 802.1Q tag if there is one (the VLAN itself is the caller's business:
 * runtime-semantics.md 5).
 */
export function loadFrame(pkt: Packet, frame: Uint8Array, length = frame.length, verifyChecksum = true): PacketError | undefined {
  pkt.bytes = frame;
  pkt.ctInfo = CtInfo.None;
  const l3 = frameIpv4Offset(frame, length);
  if (typeof l3 === 'string') {
    pkt.l3 = pkt.l4 = pkt.end = 0;
    return l3;
  }
  return loadDatagram(pkt, frame, l3, length, verifyChecksum);
}

/** Where the IPv4 header of a frame starts, or why the frame has none. */
export function frameIpv4Offset(frame: Uint8Array, length = frame.length): number | PacketError {
  if (bytesAvailable(frame, 0, length) < ETHERNET_HEADER_LEN) return 'truncated';
  let etherType = ethEtherType(frame, 0);
  let l3 = ETHERNET_HEADER_LEN;
  if (isVlanTpid(etherType)) {
    if (bytesAvailable(frame, l3, length) < VLAN_HEADER_LEN) return 'truncated';
    etherType = vlanEtherType(frame, l3);
    l3 += VLAN_HEADER_LEN;
    if (isVlanTpid(etherType)) return 'stacked-tag';
  }
  return etherType === EtherType.Ipv4 ? l3 : 'not-ipv4';
}

/** A fresh `Packet` over a frame, for control paths and tests (allocates the view object). */
export function packetFromFrame(frame: Uint8Array, length = frame.length, verifyChecksum = true): Packet | PacketError {
  const pkt = newPacket();
  return loadFrame(pkt, frame, length, verifyChecksum) ?? pkt;
}

/** A fresh `Packet` over a bare IPv4 datagram at `l3`. */
export function packetFromDatagram(bytes: Uint8Array, l3 = 0, verifyChecksum = true): Packet | PacketError {
  const pkt = newPacket();
  return loadDatagram(pkt, bytes, l3, bytes.length, verifyChecksum) ?? pkt;
}

// --- buffer pool -----------------------------------------------------------

export interface BufferPoolCounters {
  /** Buffers created so far; stops growing once the pool reached `capacity`. */
  allocations: number;
  /** `get` calls that found every buffer in use. */
  exhausted: number;
  /** Buffers currently handed out. */
  in_use: number;
  /** `release` of a buffer that is not out (already released, or not from this pool): ignored. */
  bad_release: number;
}

/**
 * Fixed-size receive/transmit buffers, reused. Buffers are created on demand
 * up to `capacity`; after warm-up `get` and `release` only move indices, so a
 * busy appliance allocates nothing per packet. When all are out, `get`
 * returns null and counts it: the caller drops the packet (like a NIC ring
 * with no free descriptor, runtime-semantics.md 6.3), nothing throws.
 */
export class BufferPool {
  readonly bufferSize: number;
  readonly capacity: number;
  readonly counters: BufferPoolCounters = { allocations: 0, exhausted: 0, in_use: 0, bad_release: 0 };
  readonly #buffers: Uint8Array[] = [];
  /** Buffer -> index into `#buffers`; lets `release` reject foreign buffers and double releases. */
  readonly #index = new Map<Uint8Array, number>();
  readonly #isFree: Uint8Array;
  /** Indices of free buffers, a stack: the most recently released (cache-warm) buffer goes out first. */
  readonly #free: Int32Array;
  #freeCount = 0;

  constructor(capacity: number, bufferSize = 2048) {
    this.capacity = Math.max(0, Math.floor(capacity));
    this.bufferSize = Math.max(0, Math.floor(bufferSize));
    this.#isFree = new Uint8Array(this.capacity);
    this.#free = new Int32Array(this.capacity);
  }

  get(): Uint8Array | null {
    if (this.#freeCount > 0) {
      const index = this.#free[--this.#freeCount]!;
      this.#isFree[index] = 0;
      this.counters.in_use++;
      return this.#buffers[index]!;
    }
    if (this.#buffers.length < this.capacity) {
      const buffer = new Uint8Array(this.bufferSize);
      this.#index.set(buffer, this.#buffers.length);
      this.#buffers.push(buffer);
      this.counters.allocations++;
      this.counters.in_use++;
      return buffer;
    }
    this.counters.exhausted++;
    return null;
  }

  /** Gives a buffer back. Its bytes are left as they are: the next user overwrites what it uses. */
  release(buffer: Uint8Array): void {
    const index = this.#index.get(buffer);
    if (index === undefined || this.#isFree[index] === 1) {
      this.counters.bad_release++;
      return;
    }
    this.#isFree[index] = 1;
    this.#free[this.#freeCount++] = index;
    this.counters.in_use--;
  }

  /** Buffers `get` can still hand out, created or not. */
  get available(): number {
    return this.capacity - this.counters.in_use;
  }
}
