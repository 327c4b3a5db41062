/**
 * Connection tracking (runtime-semantics.md 2, with the project decisions of
 * section 14).
 *
 * One connection = one entry, stored under two keys: the original tuple (as
 * the first packet was seen) and the reply tuple (what a reply will look
 * like; NAT rewrites it with `setReplyTuple`). A key is protocol + source
 * address/port + destination address/port; ICMP queries use the echo
 * identifier as both ports (2.1).
 *
 * Layout: struct-of-arrays. An entry is an integer handle indexing typed
 * arrays, and an open-addressing hash table (linear probing, backward-shift
 * deletion, so no tombstones) maps both keys to `handle * 2 + direction`.
 * Looking up or refreshing an existing flow allocates nothing, and an entry
 * costs about 60 bytes (`bytesPerEntry`) instead of the hundreds a JS object
 * per connection plus two Map keys would.
 *
 * Time is the caller's: every call that needs it takes `now` in
 * milliseconds. Packet bytes are never trusted: anything malformed is
 * reported as "no entry" (-1) and counted, never thrown.
 *
 * Usage by the stack, once per packet journey (a packet that already has a
 * handle keeps it; tracking a NATed packet again would see a tuple that is
 * not a key and open a second entry):
 *
 *   const h = ct.track(pkt, now);     // ingress (before prerouting) or output
 *   ... chains: ct.packetState(h, pkt) is what `ct.state` compares against
 *   ct.confirm(h, now);               // before input, or at egress before postrouting
 *   ct.sweep(now);                    // from a timer, every few seconds
 */

import { CT_STATE, type IrConntrack, type IrTimeouts } from '../compiler/ir.ts';
import { CtInfo, type Packet } from './packet.ts';
import { ICMPV4_HEADER_LEN, Icmpv4Type } from './wire/icmpv4.ts';
import {
  IPV4_MIN_HEADER_LEN,
  IpProtocol,
  ipv4Dst,
  ipv4FragOffset,
  ipv4HeaderLen,
  ipv4Protocol,
  ipv4Src,
  ipv4Version,
} from './wire/ipv4.ts';
import { readU16 } from './wire/field.ts';
import { TCP_MIN_HEADER_LEN, TcpFlag, tcpFlags } from './wire/tcp.ts';
import { UDP_HEADER_LEN } from './wire/udp.ts';

export type ConntrackTimeouts = IrConntrack['timeouts'];

export interface ConntrackSettings {
  /** Seconds, per protocol and phase (2.6). */
  readonly timeouts: ConntrackTimeouts;
  /** Maximum connections, 0 = unlimited. Counts connections, not keys (section 14). */
  readonly limit: number;
  /** Connections to size the tables for up front (upstream: map keys, 2.7). */
  readonly reserve: number;
  /** Use the TCP state machine of 2.5 instead of the generic tracker. */
  readonly statefulTcp: boolean;
  /** Hash seed; random by default so that nobody can precompute colliding tuples. */
  readonly hashSeed?: number;
}

/** Upstream defaults, seconds (`IOS:api/net/conntrack.hpp`, 2.6). */
export const DEFAULT_CONNTRACK_TIMEOUTS: ConntrackTimeouts = {
  unconfirmed: { tcp: 10, udp: 10, icmp: 10 },
  confirmed: { tcp: 30, udp: 10, icmp: 10 },
  established: { tcp: 300, udp: 10, icmp: 10 },
};

/** Internal TCP states of the stateful tracker (`Entry::other` upstream, 2.5). */
export const TcpCtState = {
  None: 0,
  SynSent: 1,
  SynRecv: 2,
  Established: 3,
  FinWait: 4,
  CloseWait: 5,
  TimeWait: 6,
  LastAck: 7,
  Close: 8,
} as const;

/** Hard-coded timeouts of the stateful tracker, indexed by `TcpCtState` (`IOS:api/net/tcp/tcp_conntrack.hpp`). */
const TCP_STATE_TIMEOUT_MS = Float64Array.of(
  30 * 60_000, // None
  120_000, // SynSent
  60_000, // SynRecv
  24 * 3_600_000, // Established
  120_000, // FinWait
  720_000, // CloseWait
  120_000, // TimeWait
  30_000, // LastAck
  10_000, // Close
);

/** Per-entry flag bits. */
const CONFIRMED = 1;
/** A reply-direction packet was seen (upstream: the absence of UNREPLIED). */
const SEEN_REPLY = 2;
/** Protected from early eviction: a reply was seen (generic) or the handshake completed (stateful TCP). */
const ASSURED = 4;

/** Why an entry went away, passed to close listeners. */
export type CloseReason = 'expired' | 'evicted' | 'removed';
export type CloseListener = (handle: number, reason: CloseReason) => void;

export interface ConntrackCounters {
  /** Connections in the table now. */
  entries: number;
  created: number;
  confirmed: number;
  expired: number;
  /** Removed early to make room for a new flow (2.7 FIX). */
  evicted: number;
  /** Removed by `remove`. */
  removed: number;
  /** New flows refused: table full and nothing evictable (2.7). */
  refused_full: number;
  /** IP protocols other than TCP, UDP and ICMP (2.1). */
  untracked: number;
  /** Non-first fragments: no ports to key on (2.1 FIX). */
  fragments: number;
  /** Headers too short to hold the ports, or otherwise unreadable. */
  malformed: number;
  /** A new flow whose reply tuple is already a key of another (NATed) entry. */
  clash: number;
  /** ICMP errors matched to the flow they quote (RELATED). */
  related: number;
  /** ICMP errors quoting no known flow. */
  related_unmatched: number;
  /** Stateful TCP: a segment of no known connection that is not a SYN (2.5). */
  tcp_not_syn: number;
}

/** Table capacity when neither `reserve` nor `limit` says otherwise. */
const DEFAULT_CAPACITY = 1024;
const MIN_CAPACITY = 16;
/** Keeps `handle * 2 + 1` a positive int32. */
const MAX_CAPACITY = 1 << 26;
const EMPTY = -1;
/** A slot of the table being migrated whose key has moved to the new one: lookups probe past it. */
const MOVED = -2;
/** Old-table slots migrated per sweep, on top of those each new entry migrates. */
const SWEEP_MIGRATION = 1 << 16;
/** List ids for eviction order: unconfirmed entries, then confirmed ones not assured. */
const LIST_UNCONFIRMED = 0;
const LIST_UNASSURED = 1;
const NO_LIST = -1;

/** Is the ICMP type an error message that quotes a datagram (RFC 792, RFC 1122 3.2.2)? */
export function isIcmpError(type: number): boolean {
  return (
    type === Icmpv4Type.DestUnreachable ||
    type === 4 /* source quench */ ||
    type === 5 /* redirect */ ||
    type === Icmpv4Type.TimeExceeded ||
    type === 12 /* parameter problem */
  );
}

/** Did the packet travel in the reply direction (whether or not it is RELATED)? */
export function isReply(pkt: Packet): boolean {
  return pkt.ctInfo >= 0 && (pkt.ctInfo & CtInfo.Reply) !== 0;
}

/** Is the packet an ICMP error about a tracked flow? */
export function isRelated(pkt: Packet): boolean {
  return pkt.ctInfo >= 0 && (pkt.ctInfo & CtInfo.Related) !== 0;
}

function timeoutFor(timeouts: IrTimeouts, protocol: number): number {
  const seconds = protocol === IpProtocol.Tcp ? timeouts.tcp : protocol === IpProtocol.Udp ? timeouts.udp : timeouts.icmp;
  return seconds * 1000;
}

/** murmur3's 32-bit block mix. */
function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function hashTuple(seed: number, protocol: number, src: number, sport: number, dst: number, dport: number): number {
  let h = mix(seed, src);
  h = mix(h, dst);
  h = mix(h, (sport << 16) | dport);
  h = mix(h, protocol);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

export class Conntrack {
  readonly counters: ConntrackCounters = {
    entries: 0,
    created: 0,
    confirmed: 0,
    expired: 0,
    evicted: 0,
    removed: 0,
    refused_full: 0,
    untracked: 0,
    fragments: 0,
    malformed: 0,
    clash: 0,
    related: 0,
    related_unmatched: 0,
    tcp_not_syn: 0,
  };

  readonly statefulTcp: boolean;
  /** 0 = unlimited. */
  readonly limit: number;
  readonly #seed: number;
  /** Per phase, seconds (converted by `timeoutFor`). */
  readonly #unconfirmed: IrTimeouts;
  readonly #confirmed: IrTimeouts;
  readonly #established: IrTimeouts;

  // --- entries (struct of arrays, indexed by handle) ---
  #capacity = 0;
  /** Handles below this have been used at least once; above it the arrays are untouched. */
  #highWater = 0;
  #size = 0;
  /** 0 = free slot; otherwise 1 (ICMP), 6 (TCP) or 17 (UDP). */
  #proto = new Uint8Array(0);
  #oSrc = new Uint32Array(0);
  #oDst = new Uint32Array(0);
  #oSport = new Uint16Array(0);
  #oDport = new Uint16Array(0);
  #rSrc = new Uint32Array(0);
  #rDst = new Uint32Array(0);
  #rSport = new Uint16Array(0);
  #rDport = new Uint16Array(0);
  /** CT_STATE.new or CT_STATE.established (RELATED is per packet, not per entry). */
  #state = new Uint8Array(0);
  #flags = new Uint8Array(0);
  #tcp = new Uint8Array(0);
  /** A byte owned by the NAT engine (which ports it allocated); reset on create. */
  #nat = new Uint8Array(0);
  /** Absolute expiry time, ms. */
  #expires = new Float64Array(0);
  /** Eviction lists (oldest first); `#next` also chains the free handles. */
  #prev = new Int32Array(0);
  #next = new Int32Array(0);
  #freeHead = EMPTY;
  readonly #listHead = Int32Array.of(EMPTY, EMPTY);
  readonly #listTail = Int32Array.of(EMPTY, EMPTY);

  // --- hash table: slot = handle * 2 + direction, or EMPTY ---
  #slots = new Int32Array(0);
  #mask = 0;
  /**
   * While the table grows, the previous one, whose keys move to the new one
   * a few at a time (each new entry moves `#migrationStep` slots, each sweep
   * many more), so a doubling at a million entries is not a 100 ms pause.
   * Lookups that miss the new table look here; null once all have moved.
   */
  #oldSlots: Int32Array | null = null;
  #oldMask = 0;
  #migrated = 0;
  #migrationStep = 0;

  readonly #listeners: CloseListener[] = [];

  constructor(settings: ConntrackSettings) {
    this.statefulTcp = settings.statefulTcp;
    this.limit = Math.max(0, Math.floor(settings.limit));
    this.#seed = settings.hashSeed ?? (Math.random() * 0x1_0000_0000) >>> 0;
    this.#unconfirmed = settings.timeouts.unconfirmed;
    this.#confirmed = settings.timeouts.confirmed;
    this.#established = settings.timeouts.established;
    const wanted = Math.max(MIN_CAPACITY, settings.reserve > 0 ? Math.floor(settings.reserve) : DEFAULT_CAPACITY);
    this.#resize(Math.min(this.limit > 0 ? this.limit : MAX_CAPACITY, wanted, MAX_CAPACITY));
  }

  /** Connections in the table (expired ones not yet swept included). */
  get size(): number {
    return this.#size;
  }

  /** Connections the arrays hold before they grow. */
  get capacity(): number {
    return this.#capacity;
  }

  /** Memory per connection slot: the entry arrays plus the share of the hash table. */
  bytesPerEntry(): number {
    const perEntry =
      this.#proto.BYTES_PER_ELEMENT +
      this.#oSrc.BYTES_PER_ELEMENT +
      this.#oDst.BYTES_PER_ELEMENT +
      this.#oSport.BYTES_PER_ELEMENT +
      this.#oDport.BYTES_PER_ELEMENT +
      this.#rSrc.BYTES_PER_ELEMENT +
      this.#rDst.BYTES_PER_ELEMENT +
      this.#rSport.BYTES_PER_ELEMENT +
      this.#rDport.BYTES_PER_ELEMENT +
      this.#state.BYTES_PER_ELEMENT +
      this.#flags.BYTES_PER_ELEMENT +
      this.#tcp.BYTES_PER_ELEMENT +
      this.#nat.BYTES_PER_ELEMENT +
      this.#expires.BYTES_PER_ELEMENT +
      this.#prev.BYTES_PER_ELEMENT +
      this.#next.BYTES_PER_ELEMENT;
    return perEntry + (this.#slots.byteLength + (this.#oldSlots?.byteLength ?? 0)) / this.#capacity;
  }

  /** Called for every entry that goes away, before its handle is reused; the entry is still readable. Returns an unsubscribe function. */
  onClose(listener: CloseListener): () => void {
    this.#listeners.push(listener);
    return () => {
      const at = this.#listeners.indexOf(listener);
      if (at >= 0) this.#listeners.splice(at, 1);
    };
  }

  // --- the packet path ------------------------------------------------------

  /**
   * Looks the packet up, creating an entry for the first packet of a flow,
   * and updates the entry for the direction seen. Returns the handle, or -1
   * when the packet is not tracked (other protocol, non-first fragment,
   * malformed, table full, stateful TCP without SYN, ICMP error about no
   * known flow). Sets `pkt.ctInfo` (direction, Related bit).
   *
   * `assumeFlow`: the packet belongs to a flow already under way (a packet
   * SPEC's `ct=` in trace and test), so stateful TCP takes it without a SYN.
   */
  track(pkt: Packet, now: number, assumeFlow = false): number {
    pkt.ctInfo = CtInfo.None;
    const { bytes, l3, l4, end } = pkt;
    if (!(l4 - l3 >= IPV4_MIN_HEADER_LEN && end <= bytes.length && end > l4)) {
      this.counters.malformed++;
      return -1;
    }
    // A non-first fragment carries no ports; upstream read payload bytes as ports (2.1 FIX).
    if (ipv4FragOffset(bytes, l3) !== 0) {
      this.counters.fragments++;
      return -1;
    }
    const protocol = ipv4Protocol(bytes, l3);
    const available = end - l4;
    let sport: number;
    let dport: number;
    if (protocol === IpProtocol.Tcp || protocol === IpProtocol.Udp) {
      if (available < (protocol === IpProtocol.Tcp ? TCP_MIN_HEADER_LEN : UDP_HEADER_LEN)) {
        this.counters.malformed++;
        return -1;
      }
      sport = readU16(bytes, l4);
      dport = readU16(bytes, l4 + 2);
    } else if (protocol === IpProtocol.Icmp) {
      if (available < ICMPV4_HEADER_LEN) {
        this.counters.malformed++;
        return -1;
      }
      if (isIcmpError(bytes[l4]!)) return this.#trackRelated(pkt, now);
      sport = dport = readU16(bytes, l4 + 4);
    } else {
      this.counters.untracked++;
      return -1;
    }
    const src = ipv4Src(bytes, l3);
    const dst = ipv4Dst(bytes, l3);

    let slot = this.#find(protocol, src, sport, dst, dport);
    if (slot !== EMPTY && this.#expires[slot >> 1]! <= now) {
      // Lazy expiry: a flow that outlived its timeout starts over.
      this.#kill(slot >> 1, 'expired');
      slot = EMPTY;
    }
    if (slot !== EMPTY) {
      const handle = slot >> 1;
      const direction = slot & 1;
      if (protocol === IpProtocol.Tcp && this.statefulTcp) this.#updateTcp(handle, direction, tcpFlags(bytes, l4), now);
      else this.#updateGeneric(handle, direction, now);
      pkt.ctInfo = direction;
      return handle;
    }

    let tcpState: number = TcpCtState.None;
    if (protocol === IpProtocol.Tcp && this.statefulTcp) {
      // Only a connection attempt opens an entry (2.5). A lone SYN-ACK is not
      // one: accepting it would record the flow back to front.
      const flags = tcpFlags(bytes, l4);
      if ((flags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) === TcpFlag.Syn) tcpState = TcpCtState.SynSent;
      else if (assumeFlow) tcpState = TcpCtState.Established;
      else {
        this.counters.tcp_not_syn++;
        return -1;
      }
    }
    const handle = this.#create(protocol, src, sport, dst, dport, tcpState, now);
    if (handle >= 0) pkt.ctInfo = CtInfo.Original;
    return handle;
  }

  /**
   * The packet passed a confirmation point (before input; at egress before
   * postrouting, 1.2 step 8 and 1.3 step 7): the entry becomes confirmed and
   * gets the confirmed timeout. No-op for -1 and for confirmed entries.
   */
  confirm(handle: number, now: number): void {
    if (!this.#alive(handle)) return;
    const flags = this.#flags[handle]!;
    if (flags & CONFIRMED) return;
    this.#unlink(handle);
    this.#flags[handle] = flags | CONFIRMED;
    this.#expires[handle] = now + timeoutFor(this.#confirmed, this.#proto[handle]!);
    this.#linkTail(this.#listOf(handle), handle);
    this.counters.confirmed++;
  }

  /**
   * What `ct.state` compares against for this packet: RELATED for an ICMP
   * error about the flow, otherwise the entry's NEW / ESTABLISHED, and
   * INVALID (0) for no entry (runtime-semantics.md 1.5 DECIDE). The first
   * packet of a flow is NEW at every hook (section 14).
   */
  packetState(handle: number, pkt: Packet): number {
    if (!this.#alive(handle)) return CT_STATE.invalid;
    if (isRelated(pkt)) return CT_STATE.related;
    return this.#state[handle]!;
  }

  /** The entry's own state: CT_STATE.new or CT_STATE.established; invalid for a dead handle. */
  state(handle: number): number {
    return this.#alive(handle) ? this.#state[handle]! : CT_STATE.invalid;
  }

  /** Removes every entry whose timeout has passed; returns how many. Run it every few seconds (upstream: 10 s, 2.6). */
  sweep(now: number): number {
    if (this.#oldSlots !== null) this.#migrate(SWEEP_MIGRATION);
    let removed = 0;
    for (let h = 0; h < this.#highWater; h++) {
      if (this.#proto[h] !== 0 && this.#expires[h]! <= now) {
        this.#kill(h, 'expired');
        removed++;
      }
    }
    return removed;
  }

  /** Ends a connection now (close listeners run). */
  remove(handle: number): void {
    if (this.#alive(handle)) this.#kill(handle, 'removed');
  }

  /** Handle of the entry that has this tuple as its original or reply key, or -1. */
  lookup(protocol: number, src: number, sport: number, dst: number, dport: number): number {
    const slot = this.#find(protocol, src, sport, dst, dport);
    return slot === EMPTY ? -1 : slot >> 1;
  }

  /**
   * NAT: the reply will look like this (2.1, 3.1). Re-keys the table. False,
   * and nothing changed, when another entry already owns that tuple (or it
   * equals this entry's original tuple) - the caller must not use it.
   */
  setReplyTuple(handle: number, src: number, sport: number, dst: number, dport: number): boolean {
    if (!this.#alive(handle)) return false;
    if (
      this.#rSrc[handle] === src &&
      this.#rSport[handle] === sport &&
      this.#rDst[handle] === dst &&
      this.#rDport[handle] === dport
    ) {
      return true;
    }
    if (this.#find(this.#proto[handle]!, src, sport, dst, dport) !== EMPTY) return false;
    if (!this.#replyIsOriginal(handle)) this.#delete(handle * 2 + 1);
    this.#rSrc[handle] = src;
    this.#rSport[handle] = sport;
    this.#rDst[handle] = dst;
    this.#rDport[handle] = dport;
    this.#insert(handle * 2 + 1);
    return true;
  }

  // --- accessors (handles of live entries) ----------------------------------

  isAlive(handle: number): boolean {
    return this.#alive(handle);
  }

  protocol(handle: number): number {
    return this.#proto[handle] ?? 0;
  }

  origSrc(handle: number): number {
    return this.#oSrc[handle] ?? 0;
  }

  origSport(handle: number): number {
    return this.#oSport[handle] ?? 0;
  }

  origDst(handle: number): number {
    return this.#oDst[handle] ?? 0;
  }

  origDport(handle: number): number {
    return this.#oDport[handle] ?? 0;
  }

  replySrc(handle: number): number {
    return this.#rSrc[handle] ?? 0;
  }

  replySport(handle: number): number {
    return this.#rSport[handle] ?? 0;
  }

  replyDst(handle: number): number {
    return this.#rDst[handle] ?? 0;
  }

  replyDport(handle: number): number {
    return this.#rDport[handle] ?? 0;
  }

  isConfirmed(handle: number): boolean {
    return this.#alive(handle) && (this.#flags[handle]! & CONFIRMED) !== 0;
  }

  isAssured(handle: number): boolean {
    return this.#alive(handle) && (this.#flags[handle]! & ASSURED) !== 0;
  }

  /** A `TcpCtState` (stateful TCP only; None otherwise). */
  tcpState(handle: number): number {
    return this.#tcp[handle] ?? TcpCtState.None;
  }

  /** Absolute expiry, ms. */
  expiresAt(handle: number): number {
    return this.#expires[handle] ?? 0;
  }

  natFlags(handle: number): number {
    return this.#nat[handle] ?? 0;
  }

  setNatFlags(handle: number, flags: number): void {
    if (this.#alive(handle)) this.#nat[handle] = flags;
  }

  // --- state machines ---------------------------------------------------------

  /** The first reply to a confirmed entry: rules see the flow established from now on (2.3). */
  #replySeen(handle: number): void {
    this.#state[handle] = CT_STATE.established;
    this.#setFlags(handle, this.#flags[handle]! | SEEN_REPLY);
  }

  /**
   * 2.3: a reply turns a confirmed NEW entry ESTABLISHED; every packet
   * refreshes the timeout. While unconfirmed (the first packet never got past
   * a confirmation point) a "reply" establishes nothing: it answers a packet
   * that was dropped, so it is unsolicited.
   *
   * The entry is assured - kept when a full table evicts - only once the
   * original side speaks again after the reply, as Linux assures TCP after
   * the handshake's last ACK. A server's SYN-ACK to a spoofed SYN is a reply
   * nobody answers, so a SYN flood fills the table with evictable entries
   * instead of locking new flows out for the established timeout.
   */
  #updateGeneric(handle: number, direction: number, now: number): void {
    const protocol = this.#proto[handle]!;
    const flags = this.#flags[handle]!;
    if (direction === CtInfo.Reply && flags & CONFIRMED && this.#state[handle] === CT_STATE.new) {
      this.#replySeen(handle);
    } else if (direction === CtInfo.Original && (flags & (SEEN_REPLY | ASSURED)) === SEEN_REPLY) {
      this.#setFlags(handle, flags | ASSURED);
    }
    const timeouts = this.#state[handle] === CT_STATE.established ? this.#established : this.#confirmed;
    this.#expires[handle] = now + timeoutFor(timeouts, protocol);
  }

  /**
   * 2.5, the stateful TCP tracker. Deviations, each safer than upstream: a
   * FIN moves FIN_WAIT / CLOSE_WAIT on only when the other side sends it (a
   * retransmitted FIN does not close the connection); a reply while
   * unconfirmed establishes nothing (as in the generic tracker); an
   * unconfirmed entry keeps the short unconfirmed timeout; a new SYN on a
   * closed connection reopens it (port reuse, as Linux does).
   */
  #updateTcp(handle: number, direction: number, tcpFlagsByte: number, now: number): void {
    const syn = (tcpFlagsByte & TcpFlag.Syn) !== 0;
    const ack = (tcpFlagsByte & TcpFlag.Ack) !== 0;
    const fin = (tcpFlagsByte & TcpFlag.Fin) !== 0;
    const original = direction === CtInfo.Original;
    let flags = this.#flags[handle]!;
    let state = this.#tcp[handle]!;
    if (tcpFlagsByte & TcpFlag.Rst) {
      state = TcpCtState.Close;
      // A reset answering the SYN is a reply like a SYN-ACK: rules see it
      // established (Linux: ESTABLISHED_REPLY), so "allow established" lets
      // a refused connection fail at once instead of timing out.
      if (!original && flags & CONFIRMED && this.#state[handle] === CT_STATE.new) this.#replySeen(handle);
    } else if (syn && !ack && original && (state === TcpCtState.Close || state === TcpCtState.TimeWait)) {
      state = TcpCtState.SynSent;
      this.#state[handle] = CT_STATE.new;
      this.#setFlags(handle, flags & ~(SEEN_REPLY | ASSURED));
    } else {
      switch (state) {
        case TcpCtState.SynSent:
          if (!original && syn && ack && flags & CONFIRMED) {
            state = TcpCtState.SynRecv;
            this.#replySeen(handle);
          }
          break;
        case TcpCtState.SynRecv:
          if (original && ack && !syn) {
            state = TcpCtState.Established;
            this.#setFlags(handle, flags | ASSURED);
          }
          break;
        case TcpCtState.Established:
          if (fin) state = original ? TcpCtState.FinWait : TcpCtState.CloseWait;
          break;
        case TcpCtState.FinWait:
          if (fin && !original) state = TcpCtState.TimeWait;
          break;
        case TcpCtState.CloseWait:
          if (fin && original) state = TcpCtState.LastAck;
          break;
        case TcpCtState.LastAck:
        case TcpCtState.TimeWait:
          if (ack) state = TcpCtState.Close;
          break;
      }
    }
    this.#tcp[handle] = state;
    flags = this.#flags[handle]!;
    this.#expires[handle] =
      now + (flags & CONFIRMED ? TCP_STATE_TIMEOUT_MS[state]! : timeoutFor(this.#unconfirmed, IpProtocol.Tcp));
  }

  /**
   * An ICMP error belongs to the flow of the datagram it quotes (2.1 FIX):
   * the quote is a packet that flow sent towards the error's source, so its
   * tuple reversed is a key in the direction the error travels. Nothing is
   * created or refreshed.
   */
  #trackRelated(pkt: Packet, now: number): number {
    const { bytes, l4, end } = pkt;
    const q = l4 + ICMPV4_HEADER_LEN;
    if (end - q < IPV4_MIN_HEADER_LEN || ipv4Version(bytes, q) !== 4) return this.#unmatched();
    const qHeaderLen = ipv4HeaderLen(bytes, q);
    const qProtocol = ipv4Protocol(bytes, q);
    const ql4 = q + qHeaderLen;
    if (qHeaderLen < IPV4_MIN_HEADER_LEN || ipv4FragOffset(bytes, q) !== 0) return this.#unmatched();
    let sport: number;
    let dport: number;
    if (qProtocol === IpProtocol.Tcp || qProtocol === IpProtocol.Udp) {
      if (end - ql4 < 4) return this.#unmatched();
      sport = readU16(bytes, ql4);
      dport = readU16(bytes, ql4 + 2);
    } else if (qProtocol === IpProtocol.Icmp) {
      // Never an error about an error (RFC 1122 3.2.2).
      if (end - ql4 < 6 || isIcmpError(bytes[ql4]!)) return this.#unmatched();
      sport = dport = readU16(bytes, ql4 + 4);
    } else {
      return this.#unmatched();
    }
    const slot = this.#find(qProtocol, ipv4Dst(bytes, q), dport, ipv4Src(bytes, q), sport);
    if (slot === EMPTY || this.#expires[slot >> 1]! <= now) return this.#unmatched();
    pkt.ctInfo = (slot & 1) | CtInfo.Related;
    this.counters.related++;
    return slot >> 1;
  }

  #unmatched(): number {
    this.counters.related_unmatched++;
    return -1;
  }

  // --- entries ---------------------------------------------------------------

  #alive(handle: number): boolean {
    return handle >= 0 && handle < this.#highWater && this.#proto[handle] !== 0;
  }

  #create(protocol: number, src: number, sport: number, dst: number, dport: number, tcpState: number, now: number): number {
    // The reply of the new flow may already be a key: another entry's NAT
    // mapping took it. Two entries under one key would make lookups depend on
    // probe order, so the newcomer is refused.
    const taken = this.#find(protocol, dst, dport, src, sport);
    if (taken !== EMPTY) {
      if (this.#expires[taken >> 1]! > now) {
        this.counters.clash++;
        return -1;
      }
      this.#kill(taken >> 1, 'expired');
    }
    const handle = this.#allocate();
    if (handle < 0) {
      this.counters.refused_full++;
      return -1;
    }
    this.#proto[handle] = protocol;
    this.#oSrc[handle] = src;
    this.#oSport[handle] = sport;
    this.#oDst[handle] = dst;
    this.#oDport[handle] = dport;
    this.#rSrc[handle] = dst;
    this.#rSport[handle] = dport;
    this.#rDst[handle] = src;
    this.#rDport[handle] = sport;
    this.#state[handle] = CT_STATE.new;
    this.#flags[handle] = 0;
    this.#tcp[handle] = tcpState;
    this.#nat[handle] = 0;
    this.#expires[handle] = now + timeoutFor(this.#unconfirmed, protocol);
    this.#insert(handle * 2);
    if (!this.#replyIsOriginal(handle)) this.#insert(handle * 2 + 1);
    this.#linkTail(LIST_UNCONFIRMED, handle);
    this.#size++;
    this.counters.entries = this.#size;
    this.counters.created++;
    return handle;
  }

  /**
   * A free handle, growing the arrays while under the limit. When the table
   * is full, the oldest unconfirmed entry makes room, else the oldest
   * confirmed one that is not assured (2.7 FIX); -1 if neither exists.
   */
  #allocate(): number {
    if (this.limit > 0 && this.#size >= this.limit) {
      let victim = this.#listHead[LIST_UNCONFIRMED]!;
      if (victim === EMPTY) victim = this.#listHead[LIST_UNASSURED]!;
      if (victim === EMPTY) return -1;
      this.#kill(victim, 'evicted');
    }
    if (this.#freeHead !== EMPTY) {
      const handle = this.#freeHead;
      this.#freeHead = this.#next[handle]!;
      return handle;
    }
    if (this.#oldSlots !== null) this.#migrate(this.#migrationStep);
    if (this.#highWater === this.#capacity) {
      const ceiling = this.limit > 0 ? Math.min(this.limit, MAX_CAPACITY) : MAX_CAPACITY;
      if (this.#capacity >= ceiling) return -1;
      this.#resize(Math.min(ceiling, this.#capacity * 2));
    }
    return this.#highWater++;
  }

  #kill(handle: number, reason: CloseReason): void {
    for (let i = 0; i < this.#listeners.length; i++) this.#listeners[i]!(handle, reason);
    this.#delete(handle * 2);
    if (!this.#replyIsOriginal(handle)) this.#delete(handle * 2 + 1);
    this.#unlink(handle);
    this.#proto[handle] = 0;
    this.#next[handle] = this.#freeHead;
    this.#freeHead = handle;
    this.#size--;
    this.counters.entries = this.#size;
    this.counters[reason]++;
  }

  /** A flow from an address/port to itself has one key, stored once. */
  #replyIsOriginal(handle: number): boolean {
    return (
      this.#rSrc[handle] === this.#oSrc[handle] &&
      this.#rSport[handle] === this.#oSport[handle] &&
      this.#rDst[handle] === this.#oDst[handle] &&
      this.#rDport[handle] === this.#oDport[handle]
    );
  }

  /** Flag changes that move an entry between eviction lists go through here. */
  #setFlags(handle: number, flags: number): void {
    this.#unlink(handle);
    this.#flags[handle] = flags;
    this.#linkTail(this.#listOf(handle), handle);
  }

  #listOf(handle: number): number {
    const flags = this.#flags[handle]!;
    if (!(flags & CONFIRMED)) return LIST_UNCONFIRMED;
    return flags & ASSURED ? NO_LIST : LIST_UNASSURED;
  }

  #linkTail(list: number, handle: number): void {
    if (list === NO_LIST) {
      this.#prev[handle] = this.#next[handle] = EMPTY;
      return;
    }
    const tail = this.#listTail[list]!;
    this.#prev[handle] = tail;
    this.#next[handle] = EMPTY;
    if (tail === EMPTY) this.#listHead[list] = handle;
    else this.#next[tail] = handle;
    this.#listTail[list] = handle;
  }

  #unlink(handle: number): void {
    const list = this.#listOf(handle);
    if (list === NO_LIST) return;
    const prev = this.#prev[handle]!;
    const next = this.#next[handle]!;
    if (prev === EMPTY) this.#listHead[list] = next;
    else this.#next[prev] = next;
    if (next === EMPTY) this.#listTail[list] = prev;
    else this.#prev[next] = prev;
    this.#prev[handle] = this.#next[handle] = EMPTY;
  }

  #resize(capacity: number): void {
    const grow = <T extends Uint8Array | Uint16Array | Uint32Array | Int32Array | Float64Array>(old: T, make: (n: number) => T): T => {
      const fresh = make(capacity);
      fresh.set(old as never);
      return fresh;
    };
    this.#proto = grow(this.#proto, (n) => new Uint8Array(n));
    this.#oSrc = grow(this.#oSrc, (n) => new Uint32Array(n));
    this.#oDst = grow(this.#oDst, (n) => new Uint32Array(n));
    this.#oSport = grow(this.#oSport, (n) => new Uint16Array(n));
    this.#oDport = grow(this.#oDport, (n) => new Uint16Array(n));
    this.#rSrc = grow(this.#rSrc, (n) => new Uint32Array(n));
    this.#rDst = grow(this.#rDst, (n) => new Uint32Array(n));
    this.#rSport = grow(this.#rSport, (n) => new Uint16Array(n));
    this.#rDport = grow(this.#rDport, (n) => new Uint16Array(n));
    this.#state = grow(this.#state, (n) => new Uint8Array(n));
    this.#flags = grow(this.#flags, (n) => new Uint8Array(n));
    this.#tcp = grow(this.#tcp, (n) => new Uint8Array(n));
    this.#nat = grow(this.#nat, (n) => new Uint8Array(n));
    this.#expires = grow(this.#expires, (n) => new Float64Array(n));
    this.#prev = grow(this.#prev, (n) => new Int32Array(n));
    this.#next = grow(this.#next, (n) => new Int32Array(n));
    const added = capacity - this.#capacity;
    this.#capacity = capacity;
    // A migration still running finishes first: only one old table at a time.
    if (this.#oldSlots !== null) this.#migrate(Infinity);
    // Two keys per connection at a load factor of at most 3/4.
    const slots = nextPowerOfTwo(Math.ceil((capacity * 2 * 4) / 3));
    if (this.#size > 0) {
      this.#oldSlots = this.#slots;
      this.#oldMask = this.#mask;
      this.#migrated = 0;
      // Fast enough that the move ends before the new capacity fills, when the next growth would force it.
      this.#migrationStep = Math.ceil(this.#oldSlots.length / Math.max(1, added)) + 1;
    }
    this.#slots = new Int32Array(slots).fill(EMPTY);
    this.#mask = slots - 1;
  }

  /** Moves up to `count` slots of the old table to the new one. */
  #migrate(count: number): void {
    const old = this.#oldSlots!;
    const end = Math.min(old.length, this.#migrated + count);
    for (let i = this.#migrated; i < end; i++) {
      const slot = old[i]!;
      if (slot < 0) continue;
      this.#insert(slot);
      // Not EMPTY: a key further along may still be found by probing past here. The EMPTY slots
      // stay (no probe run crosses one), so a lookup that misses still ends.
      old[i] = MOVED;
    }
    this.#migrated = end;
    if (end === old.length) this.#oldSlots = null;
  }

  // --- hash table ------------------------------------------------------------

  #hashOfSlot(slot: number): number {
    const h = slot >> 1;
    return slot & 1
      ? hashTuple(this.#seed, this.#proto[h]!, this.#rSrc[h]!, this.#rSport[h]!, this.#rDst[h]!, this.#rDport[h]!)
      : hashTuple(this.#seed, this.#proto[h]!, this.#oSrc[h]!, this.#oSport[h]!, this.#oDst[h]!, this.#oDport[h]!);
  }

  #find(protocol: number, src: number, sport: number, dst: number, dport: number): number {
    const hash = hashTuple(this.#seed, protocol, src, sport, dst, dport);
    const slot = this.#probe(this.#slots, this.#mask, hash, protocol, src, sport, dst, dport);
    if (slot !== EMPTY || this.#oldSlots === null) return slot;
    return this.#probe(this.#oldSlots, this.#oldMask, hash, protocol, src, sport, dst, dport);
  }

  #probe(slots: Int32Array, mask: number, hash: number, protocol: number, src: number, sport: number, dst: number, dport: number): number {
    let i = hash & mask;
    for (;;) {
      const slot = slots[i]!;
      if (slot === EMPTY) return EMPTY;
      if (slot === MOVED) {
        i = (i + 1) & mask;
        continue;
      }
      const h = slot >> 1;
      if (this.#proto[h] === protocol) {
        if (slot & 1) {
          if (this.#rSrc[h] === src && this.#rDst[h] === dst && this.#rSport[h] === sport && this.#rDport[h] === dport) return slot;
        } else if (this.#oSrc[h] === src && this.#oDst[h] === dst && this.#oSport[h] === sport && this.#oDport[h] === dport) {
          return slot;
        }
      }
      i = (i + 1) & mask;
    }
  }

  #deleteOld(slot: number, hash: number): void {
    const old = this.#oldSlots;
    if (old === null) return;
    const mask = this.#oldMask;
    for (let i = hash & mask; old[i] !== EMPTY; i = (i + 1) & mask) {
      if (old[i] === slot) {
        old[i] = MOVED;
        return;
      }
    }
  }

  #insert(slot: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    let i = this.#hashOfSlot(slot) & mask;
    while (slots[i] !== EMPTY) i = (i + 1) & mask;
    slots[i] = slot;
  }

  /**
   * Backward-shift deletion (Knuth 6.4 algorithm R): later keys of the probe
   * run move up, so lookups never need tombstones. A key still in the old
   * table is marked MOVED there instead: shifting could carry a key into
   * the part already migrated, where it would be lost.
   */
  #delete(slot: number): void {
    const slots = this.#slots;
    const mask = this.#mask;
    const hash = this.#hashOfSlot(slot);
    let i = hash & mask;
    while (slots[i] !== slot) {
      if (slots[i] === EMPTY) {
        this.#deleteOld(slot, hash);
        return;
      }
      i = (i + 1) & mask;
    }
    slots[i] = EMPTY;
    let j = i;
    for (;;) {
      j = (j + 1) & mask;
      const moving = slots[j]!;
      if (moving === EMPTY) return;
      const home = this.#hashOfSlot(moving) & mask;
      // Leave it if its home lies cyclically in (i, j]; otherwise it would become unreachable.
      const stays = i <= j ? i < home && home <= j : i < home || home <= j;
      if (!stays) {
        slots[i] = moving;
        slots[j] = EMPTY;
        i = j;
      }
    }
  }
}
