/**
 * IPv4 reassembly (RFC 791 section 3.2) for datagrams addressed to the
 * appliance (runtime-semantics.md 1.2 step 7), and, before conntrack, for
 * every datagram arriving on an Iface that tracks connections (Linux's
 * nf_defrag; conntrack needs the ports of the first fragment for all).
 *
 * Kept from upstream: 64 datagrams at most, a 15 s lifetime counted from
 * the first fragment and never extended. Made robust where upstream simply
 * discarded: fragments may arrive in any order (upstream required the first
 * one first), there is no 400-byte minimum for fragments, and memory is
 * bounded by a byte budget as well as by the slot count (the oldest
 * datagram is evicted to make room, as Linux does). Overlapping fragments
 * discard the whole datagram, including fragments still to come (RFC 5722,
 * which the same attacks motivate for IPv4); an exact duplicate is ignored.
 *
 * Nothing here throws on packet bytes; every discarded fragment is counted.
 * The reassembled datagram is a fresh buffer: fragments are the slow path,
 * forwarded or delivered.
 */

import { CtInfo, type Packet } from './packet.ts';
import { copyBytes } from './wire/field.ts';
import {
  fillIpv4Checksum,
  IPV4_MAX_TOTAL_LEN,
  IPV4_MIN_HEADER_LEN,
  ipv4Dst,
  ipv4FragOffset,
  ipv4HeaderLen,
  ipv4Ident,
  ipv4IsFragment,
  ipv4MoreFrags,
  ipv4Protocol,
  ipv4Src,
  setIpv4FragOffset,
  setIpv4MoreFrags,
  setIpv4TotalLen,
} from './wire/ipv4.ts';

export interface ReassemblyOptions {
  /** Datagrams being reassembled at once; default 64 (upstream). */
  readonly maxDatagrams?: number;
  /** Bytes held for all of them, fragment bookkeeping included; default 1 MiB. */
  readonly maxBytes?: number;
  /** ms from the first fragment; default 15 s (upstream). */
  readonly lifetime?: number;
  /** Fragments one datagram may consist of; default 1024 (65535 bytes in 64-byte pieces). */
  readonly maxFragments?: number;
}

export interface ReassemblyCounters {
  /** Fragments received. */
  fragments: number;
  reassembled: number;
  /** Datagrams still incomplete when their lifetime ended. */
  timeouts: number;
  /** Datagrams discarded for overlapping fragments. */
  overlaps: number;
  /** Fragments identical to one already held: ignored. */
  duplicates: number;
  /** Datagrams that would exceed 65535 bytes, or whose fragments disagree on the end. */
  too_big: number;
  /** Fragments that cannot be part of any datagram: empty, or a non-last one not a multiple of 8 bytes. */
  bad_fragment: number;
  /** Datagrams dropped to make room (slots or bytes). */
  evicted: number;
  /** Datagrams dropped because they alone exceed the byte budget or the fragment limit. */
  no_memory: number;
  /** Fragments of a datagram already discarded (RFC 5722). */
  discarded_fragments: number;
}

/** Bookkeeping charged per fragment on top of its bytes, so that tiny fragments cannot exhaust memory cheaply. */
const FRAGMENT_OVERHEAD = 64;

interface Fragment {
  /** Payload offset in bytes. */
  readonly offset: number;
  readonly data: Uint8Array;
}

interface Datagram {
  readonly src: number;
  readonly dst: number;
  readonly protocol: number;
  readonly ident: number;
  readonly started: number;
  /** The first fragment's header (its options are the datagram's, RFC 791 3.2). */
  header: Uint8Array | null;
  /** Payload length, known once the last fragment arrived; -1 before. */
  total: number;
  received: number;
  /** Sorted by offset, never overlapping. */
  fragments: Fragment[];
  /** Bytes charged to the budget. */
  charge: number;
  /** Discarded (RFC 5722): later fragments are dropped until the lifetime ends. */
  dead: boolean;
}

export class Reassembler {
  readonly counters: ReassemblyCounters = {
    fragments: 0,
    reassembled: 0,
    timeouts: 0,
    overlaps: 0,
    duplicates: 0,
    too_big: 0,
    bad_fragment: 0,
    evicted: 0,
    no_memory: 0,
    discarded_fragments: 0,
  };
  readonly #maxDatagrams: number;
  readonly #maxBytes: number;
  readonly #lifetime: number;
  readonly #maxFragments: number;
  /** Oldest first; at most 64 by default, so a scan is cheaper than building a key. */
  readonly #datagrams: Datagram[] = [];
  #bytes = 0;

  constructor(options: ReassemblyOptions = {}) {
    this.#maxDatagrams = Math.max(1, options.maxDatagrams ?? 64);
    this.#maxBytes = Math.max(0, options.maxBytes ?? 1 << 20);
    this.#lifetime = options.lifetime ?? 15_000;
    this.#maxFragments = Math.max(1, options.maxFragments ?? 1024);
  }

  /** Datagrams in progress (discarded ones waiting out their lifetime included). */
  get size(): number {
    return this.#datagrams.length;
  }

  /** Bytes held now. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Feeds one datagram. A packet that is not a fragment comes back as it is;
   * a fragment comes back as the whole datagram once it completes one (a
   * new buffer, header at offset 0), and as null otherwise - kept, or
   * dropped and counted.
   */
  add(pkt: Packet, now: number): Packet | null {
    const { bytes, l3, l4, end } = pkt;
    if (!(l4 - l3 >= IPV4_MIN_HEADER_LEN && end >= l4 && end <= bytes.length)) {
      this.counters.bad_fragment++;
      return null;
    }
    if (!ipv4IsFragment(bytes, l3)) return pkt;
    this.counters.fragments++;
    this.sweep(now);

    const offset = ipv4FragOffset(bytes, l3);
    const length = end - l4;
    const more = ipv4MoreFrags(bytes, l3);
    // RFC 791: every fragment but the last carries a multiple of 8 bytes.
    if (length === 0 || (more && length % 8 !== 0)) {
      this.counters.bad_fragment++;
      return null;
    }
    const datagram = this.#find(bytes, l3, now);
    if (datagram === null) return null;
    if (datagram.dead) {
      this.counters.discarded_fragments++;
      return null;
    }
    const fragEnd = offset + length;
    if (ipv4HeaderLen(bytes, l3) + fragEnd > IPV4_MAX_TOTAL_LEN || (!more && datagram.total >= 0 && datagram.total !== fragEnd) || (datagram.total >= 0 && fragEnd > datagram.total)) {
      this.counters.too_big++;
      this.#discard(datagram);
      return null;
    }
    if (!more && datagram.received > 0 && this.#lastEnd(datagram) > fragEnd) {
      this.counters.too_big++;
      this.#discard(datagram);
      return null;
    }

    const at = this.#insertionPoint(datagram, offset);
    const before = at > 0 ? datagram.fragments[at - 1]! : null;
    const after = at < datagram.fragments.length ? datagram.fragments[at]! : null;
    if (after !== null && after.offset === offset && after.data.length === length) {
      this.counters.duplicates++;
      return null;
    }
    if ((before !== null && before.offset + before.data.length > offset) || (after !== null && fragEnd > after.offset)) {
      this.counters.overlaps++;
      this.#discard(datagram);
      return null;
    }
    if (datagram.fragments.length >= this.#maxFragments) {
      this.counters.no_memory++;
      this.#discard(datagram);
      return null;
    }

    const charge = length + FRAGMENT_OVERHEAD + (offset === 0 ? l4 - l3 : 0);
    if (!this.#makeRoom(charge, datagram)) {
      this.counters.no_memory++;
      this.#discard(datagram);
      return null;
    }
    datagram.fragments.splice(at, 0, { offset, data: bytes.slice(l4, end) });
    if (offset === 0) datagram.header = bytes.slice(l3, l4);
    if (!more) datagram.total = fragEnd;
    datagram.received += length;
    datagram.charge += charge;
    this.#bytes += charge;

    if (datagram.total < 0 || datagram.received !== datagram.total || datagram.header === null) return null;
    return this.#assemble(datagram);
  }

  /** Drops datagrams whose lifetime has ended; returns how many were still incomplete. Call it every second or so (`add` calls it too). */
  sweep(now: number): number {
    let timedOut = 0;
    while (this.#datagrams.length > 0 && now - this.#datagrams[0]!.started >= this.#lifetime) {
      const datagram = this.#datagrams.shift()!;
      this.#bytes -= datagram.charge;
      if (!datagram.dead) {
        timedOut++;
        this.counters.timeouts++;
      }
    }
    return timedOut;
  }

  /** The datagram this fragment belongs to, starting one if needed (evicting the oldest when all slots are taken). */
  #find(bytes: Uint8Array, l3: number, now: number): Datagram | null {
    const src = ipv4Src(bytes, l3);
    const dst = ipv4Dst(bytes, l3);
    const protocol = ipv4Protocol(bytes, l3);
    const ident = ipv4Ident(bytes, l3);
    for (const d of this.#datagrams) {
      if (d.ident === ident && d.src === src && d.dst === dst && d.protocol === protocol) return d;
    }
    if (this.#datagrams.length >= this.#maxDatagrams) {
      const oldest = this.#datagrams.shift()!;
      this.#bytes -= oldest.charge;
      this.counters.evicted++;
    }
    const datagram: Datagram = { src, dst, protocol, ident, started: now, header: null, total: -1, received: 0, fragments: [], charge: 0, dead: false };
    this.#datagrams.push(datagram);
    return datagram;
  }

  #insertionPoint(datagram: Datagram, offset: number): number {
    const fragments = datagram.fragments;
    let lo = 0;
    let hi = fragments.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (fragments[mid]!.offset < offset) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #lastEnd(datagram: Datagram): number {
    const last = datagram.fragments[datagram.fragments.length - 1];
    return last === undefined ? 0 : last.offset + last.data.length;
  }

  /** Frees the budget for `charge` more bytes by evicting other datagrams, oldest first; false if even that is not enough. */
  #makeRoom(charge: number, keep: Datagram): boolean {
    if (keep.charge + charge > this.#maxBytes) return false;
    for (let i = 0; this.#bytes + charge > this.#maxBytes && i < this.#datagrams.length; ) {
      const victim = this.#datagrams[i]!;
      if (victim === keep || victim.charge === 0) {
        i++;
        continue;
      }
      this.#datagrams.splice(i, 1);
      this.#bytes -= victim.charge;
      if (!victim.dead) this.counters.evicted++;
    }
    return this.#bytes + charge <= this.#maxBytes;
  }

  /** RFC 5722: drop what was collected and keep discarding the rest of the datagram until its lifetime ends. */
  #discard(datagram: Datagram): void {
    this.#bytes -= datagram.charge;
    datagram.charge = 0;
    datagram.fragments = [];
    datagram.header = null;
    datagram.dead = true;
  }

  #assemble(datagram: Datagram): Packet | null {
    const header = datagram.header!;
    const headerLen = header.length;
    const totalLen = headerLen + datagram.total;
    this.#datagrams.splice(this.#datagrams.indexOf(datagram), 1);
    this.#bytes -= datagram.charge;
    if (totalLen > IPV4_MAX_TOTAL_LEN) {
      // The first fragment's options made it longer than any datagram can be.
      this.counters.too_big++;
      return null;
    }
    const bytes = new Uint8Array(totalLen);
    copyBytes(header, 0, bytes, 0, headerLen);
    for (const fragment of datagram.fragments) copyBytes(fragment.data, 0, bytes, headerLen + fragment.offset, fragment.data.length);
    setIpv4TotalLen(bytes, 0, totalLen);
    setIpv4MoreFrags(bytes, 0, false);
    setIpv4FragOffset(bytes, 0, 0);
    fillIpv4Checksum(bytes, 0);
    this.counters.reassembled++;
    return { bytes, l3: 0, l4: headerLen, end: totalLen, ctInfo: CtInfo.None };
  }
}
