/**
 * The NAT engine (runtime-semantics.md 3, with its FIXes).
 *
 * There is no NAT table: a translation is recorded in the conntrack entry's
 * reply tuple (3.1). An entry is SNATed when the reply would go to another
 * socket than the original source (`orig.src != reply.dst`), DNATed when it
 * would come from another socket than the original destination
 * (`orig.dst != reply.src`). Explicit actions rewrite the packet and the
 * reply tuple; the reverse steps derive everything from the entry.
 *
 * Where each step runs (nacl-language.md 8.3; the stack wires them):
 *
 *   prerouting:  user Nat functions (`dnat`/`snat`), demasquerade, `dnatTranslate`
 *   postrouting: user Nat functions, `masquerade`, `snatTranslate`
 *
 * Every step returns true to go on (ACCEPT) and false to drop the packet:
 * only when a translation is required but impossible (ports exhausted, a
 * mapping that collides with another flow, a header too short to rewrite).
 * No step throws. With no entry (-1) every step is a no-op, as upstream.
 *
 * ICMP errors RELATED to a translated flow are translated too (3.5
 * improvement): the outer address and the quoted datagram. The prerouting
 * steps fix the error's destination side, the postrouting steps its source
 * side, mirroring how the normal packets of the flow are handled.
 */

import type { Conntrack } from './conntrack.ts';
import { isRelated, isReply } from './conntrack.ts';
import {
  hasPorts,
  hasPortsOrIdentifier,
  isIcmpQuery,
  isRewritable,
  packetPort,
  quotedAddress,
  quotedPort,
  quotedTransportOffset,
  rewriteDestination,
  rewriteQuotedDestination,
  rewriteQuotedSource,
  rewriteSource,
} from './nat-rewrite.ts';
import type { Packet } from './packet.ts';
import { PortAllocator } from './port-allocator.ts';
import { IpProtocol, ipv4Dst, ipv4Src } from './wire/ipv4.ts';

/** Bit in the conntrack entry's NAT byte: the reply port was allocated by `masquerade` and must be released. */
export const NAT_FLAG_MASQUERADE_PORT = 1;
/** Bit in the conntrack entry's NAT byte: a port forward's clash gave the flow a new source port (`#remapSourcePort`). */
export const NAT_FLAG_SOURCE_REMAP = 2;

/** How many ports `masquerade` (or a port forward's clash) tries when a port's tuple is taken by another flow. */
const MASQUERADE_ATTEMPTS = 16;

export interface NatCounters {
  /** Explicit `dnat` / `snat` applied to a packet. */
  dnat: number;
  snat: number;
  /** Reverse translations of replies. */
  dnat_translated: number;
  snat_translated: number;
  masqueraded: number;
  demasqueraded: number;
  /** ICMP errors whose outer or quoted headers were translated. */
  related_translated: number;
  /** Explicit actions ignored for a reply-direction or RELATED packet. */
  skipped_reply: number;
  /** A mapping refused because another flow already uses the resulting tuple (packet dropped; a full port table counts in ports_exhausted). */
  conflicts: number;
  /** Port forwards whose tuple another flow held, kept apart by a new source port (as Linux). */
  source_ports_remapped: number;
  /** `masquerade` found no free port (packet dropped; upstream threw, 3.4 FIX). */
  ports_exhausted: number;
  ports_released: number;
  /** A translation needed but the packet is too short to rewrite (packet dropped). */
  malformed: number;
}

export interface NatOptions {
  /** [0, 1) like Math.random: the random first port of each address's port table. */
  random?: () => number;
  /**
   * The port table of a local address. Pass the stack's so that masquerade
   * and local sockets share it (3.6); by default the engine keeps its own,
   * one per address, created on first use.
   */
  ports?: (addr: number) => PortAllocator;
}

export class Nat {
  readonly counters: NatCounters = {
    dnat: 0,
    snat: 0,
    dnat_translated: 0,
    snat_translated: 0,
    masqueraded: 0,
    demasqueraded: 0,
    related_translated: 0,
    skipped_reply: 0,
    conflicts: 0,
    source_ports_remapped: 0,
    ports_exhausted: 0,
    ports_released: 0,
    malformed: 0,
  };
  readonly #ct: Conntrack;
  readonly #ports: (addr: number) => PortAllocator;
  readonly #tables = new Map<number, PortAllocator>();
  readonly #random: () => number;

  constructor(ct: Conntrack, options: NatOptions = {}) {
    this.#ct = ct;
    this.#random = options.random ?? Math.random;
    this.#ports = options.ports ?? ((addr) => this.#ownTable(addr));
    // A masquerade port lives exactly as long as its connection (3.4).
    ct.onClose((handle) => {
      if ((ct.natFlags(handle) & NAT_FLAG_MASQUERADE_PORT) === 0) return;
      if (this.#ports(ct.replyDst(handle)).releaseShared(ct.replyDport(handle))) this.counters.ports_released++;
    });
  }

  /** The port table masquerade uses for a local address. */
  portsFor(addr: number): PortAllocator {
    return this.#ports(addr);
  }

  // --- explicit actions (3.2) ----------------------------------------------

  /**
   * `dnat(addr)`, `dnat(port)`, `dnat(addr, port)` (null = not given): rewrites
   * the destination and records `reply.src := (addr, port)`. Idempotent on
   * later packets of the flow. Only original-direction packets are
   * translated: a reply or an ICMP error passing the same function is left
   * alone (upstream rewrote them too and corrupted the entry). A port is
   * ignored for ICMP, as upstream.
   */
  dnat(pkt: Packet, handle: number, addr: number | null, port: number | null): boolean {
    return this.#explicit(pkt, handle, addr, port, true);
  }

  /** `snat(...)`: rewrites the source and records `reply.dst := (addr, port)`. */
  snat(pkt: Packet, handle: number, addr: number | null, port: number | null): boolean {
    return this.#explicit(pkt, handle, addr, port, false);
  }

  #explicit(pkt: Packet, handle: number, addr: number | null, port: number | null, destination: boolean): boolean {
    const ct = this.#ct;
    if (!ct.isAlive(handle)) return true;
    if (isReply(pkt) || isRelated(pkt)) {
      this.counters.skipped_reply++;
      return true;
    }
    const protocol = ct.protocol(handle);
    const ports = hasPorts(protocol);
    const newPort = ports && port !== null ? port : -1;
    if (addr === null && newPort < 0) return true;
    if (!isRewritable(pkt)) {
      this.counters.malformed++;
      return false;
    }
    let ok = destination
      ? ct.setReplyTuple(handle, addr ?? ct.replySrc(handle), newPort >= 0 ? newPort : ct.replySport(handle), ct.replyDst(handle), ct.replyDport(handle))
      : ct.setReplyTuple(handle, ct.replySrc(handle), ct.replySport(handle), addr ?? ct.replyDst(handle), newPort >= 0 ? newPort : ct.replyDport(handle));
    if (!ok && destination && ports) ok = this.#remapSourcePort(handle, addr ?? ct.replySrc(handle), newPort >= 0 ? newPort : ct.replySport(handle));
    const identified = ports || (protocol === IpProtocol.Icmp && isIcmpQuery(pkt.bytes[pkt.l4]!));
    if (!ok && !destination && newPort < 0 && identified) {
      // `snat(ADDRESS)` onto a tuple another flow holds: a port of the address's table, as masquerade takes (Linux remaps too).
      if (this.#bindPort(handle, addr ?? ct.replyDst(handle), !ports) < 0) return false; // counted in ports_exhausted
      ok = true;
    }
    if (!ok) {
      this.counters.conflicts++;
      return false;
    }
    const { bytes, l3 } = pkt;
    // The source side's port is the entry's: the packet's own, or the one a clash gave the flow.
    const rewritten = destination
      ? rewriteDestination(pkt, addr ?? ipv4Dst(bytes, l3), newPort) && this.#applySourceRemap(pkt, handle)
      : rewriteSource(pkt, addr ?? ipv4Src(bytes, l3), identified ? ct.replyDport(handle) : -1);
    if (!rewritten) {
      this.counters.malformed++;
      return false;
    }
    if (destination) this.counters.dnat++;
    else this.counters.snat++;
    return true;
  }

  /**
   * A port forward whose translated tuple another flow already holds (two
   * flows from one client socket forwarded to one server socket) keeps the
   * flow apart by a new source port, as Linux's NAT resolves such a clash:
   * the reply tuple's destination port. The reverse steps then restore the
   * client's port on the replies like any SNAT. Candidates start at a random
   * port of the client port's class, as Linux picks them: 1-511 for a port
   * below 512, 600-1023 for one below 1024, else 1024-65535.
   */
  #remapSourcePort(handle: number, target: number, targetPort: number): boolean {
    const ct = this.#ct;
    const client = ct.origSport(handle);
    const [low, count] = client < 512 ? [1, 511] : client < 1024 ? [600, 424] : [1024, 64512];
    const first = Math.floor(this.#random() * count);
    for (let attempt = 0; attempt < MASQUERADE_ATTEMPTS; attempt++) {
      const port = low + ((first + attempt) % count);
      if (ct.setReplyTuple(handle, target, targetPort, ct.origSrc(handle), port)) {
        ct.setNatFlags(handle, ct.natFlags(handle) | NAT_FLAG_SOURCE_REMAP);
        this.counters.source_ports_remapped++;
        return true;
      }
    }
    return false;
  }

  /**
   * Gives an original-direction packet the source port a clash remapped
   * (`#remapSourcePort`), on every packet of the flow; anything else (no
   * remap, or a source address another step translates) is left alone.
   */
  #applySourceRemap(pkt: Packet, handle: number): boolean {
    if (!this.#remappedOnly(handle)) return true;
    const ct = this.#ct;
    const src = ct.origSrc(handle);
    if (ipv4Src(pkt.bytes, pkt.l3) !== src || packetPort(pkt, 0) !== ct.origSport(handle)) return true;
    return rewriteSource(pkt, src, ct.replyDport(handle));
  }

  // --- reverse steps (3.3) ---------------------------------------------------

  /**
   * Prerouting: a reply to an SNATed flow (destination = `reply.dst`) gets
   * its destination back: the whole `orig.src` socket (address only for
   * ICMP). For RELATED ICMP errors, translates the error's destination side.
   */
  dnatTranslate(pkt: Packet, handle: number): boolean {
    if (!this.#ct.isAlive(handle)) return true;
    if (isRelated(pkt)) return this.#relatedDestination(pkt, handle);
    const result = this.#unSnat(pkt, handle);
    if (result === 1) this.counters.dnat_translated++;
    return result >= 0;
  }

  /**
   * Postrouting: a reply from a DNAT target (source = `reply.src`) gets its
   * source back: the whole `orig.dst` socket. For RELATED ICMP errors,
   * translates the error's source side.
   */
  snatTranslate(pkt: Packet, handle: number): boolean {
    const ct = this.#ct;
    if (!ct.isAlive(handle)) return true;
    if (isRelated(pkt)) return this.#relatedSource(pkt, handle);
    if (!this.#dnated(handle)) return true;
    // The DNAT side: an ICMP query's identifier belongs to the SNAT side (masquerade may renumber it), so only ports count here.
    const ports = hasPorts(ct.protocol(handle));
    if (ipv4Src(pkt.bytes, pkt.l3) !== ct.replySrc(handle) || (ports && packetPort(pkt, 0) !== ct.replySport(handle))) return true;
    if (!rewriteSource(pkt, ct.origDst(handle), ports ? ct.origDport(handle) : -1)) {
      this.counters.malformed++;
      return false;
    }
    this.counters.snat_translated++;
    return true;
  }

  // --- masquerade (3.4) ------------------------------------------------------

  /**
   * Postrouting of an Iface with `masquerade: true`, whose address is
   * `ifaceAddr`. The FIXes of 3.4: only original-direction packets are
   * masqueraded (replies of inbound flows keep their source; `snatTranslate`
   * handles DNATed ones), packets already carrying the interface address
   * (locally originated) keep their port, and running out of ports drops
   * the packet and counts it. TCP/UDP get a fresh port, released when the
   * connection ends. An ICMP query keeps its identifier unless another
   * flow already has it towards the same target (two inside hosts pinging
   * one address with the same identifier): then it gets a fresh one from
   * the port table, as Linux does (upstream dropped the second).
   */
  masquerade(pkt: Packet, handle: number, ifaceAddr: number): boolean {
    const ct = this.#ct;
    if (!ct.isAlive(handle)) return true;
    if (isRelated(pkt)) return isReply(pkt) ? true : this.#relatedSource(pkt, handle);
    if (isReply(pkt)) return true;
    if (!isRewritable(pkt)) {
      this.counters.malformed++;
      return false;
    }
    const protocol = ct.protocol(handle);
    const ports = hasPortsOrIdentifier(protocol);
    if (this.#snated(handle) && !this.#remappedOnly(handle)) {
      // Later packets of a masqueraded (or explicitly SNATed) flow.
      if (ipv4Src(pkt.bytes, pkt.l3) !== ct.origSrc(handle) || packetPort(pkt, 0) !== ct.origSport(handle)) return true;
      return this.#rewriteOrDrop(rewriteSource(pkt, ct.replyDst(handle), ports ? ct.replyDport(handle) : -1), 'masqueraded');
    }
    if (ipv4Src(pkt.bytes, pkt.l3) === ifaceAddr) return true;
    let port = ct.replyDport(handle);
    if (hasPorts(protocol)) {
      port = this.#bindPort(handle, ifaceAddr, false);
      if (port < 0) return false;
    } else if (!ct.setReplyTuple(handle, ct.replySrc(handle), ct.replySport(handle), ifaceAddr, port)) {
      if (protocol !== IpProtocol.Icmp || !isIcmpQuery(pkt.bytes[pkt.l4]!)) {
        this.counters.conflicts++;
        return false;
      }
      port = this.#bindPort(handle, ifaceAddr, true);
      if (port < 0) return false;
    }
    return this.#rewriteOrDrop(rewriteSource(pkt, ifaceAddr, ports ? port : -1), 'masqueraded');
  }

  /**
   * Prerouting of a masquerading Iface: replies to the masqueraded address
   * and port go back to the inside host (the same reverse step as
   * `dnatTranslate`: masquerade is SNAT recorded in the entry).
   */
  demasquerade(pkt: Packet, handle: number): boolean {
    if (!this.#ct.isAlive(handle)) return true;
    if (isRelated(pkt)) return this.#relatedDestination(pkt, handle);
    const result = this.#unSnat(pkt, handle);
    if (result === 1) this.counters.demasqueraded++;
    return result >= 0;
  }

  /**
   * A free port of `addr` whose reply tuple no other flow uses, recorded in
   * the entry; -1 (counted) if none. For an ICMP query (`identifier`) it is
   * the identifier, which stands for both ends' "ports" in the tuple.
   */
  #bindPort(handle: number, addr: number, identifier: boolean): number {
    const ct = this.#ct;
    const table = this.#ports(addr);
    const take = (port: number) => ct.setReplyTuple(handle, ct.replySrc(handle), identifier ? port : ct.replySport(handle), addr, port);
    for (let attempt = 0; attempt < MASQUERADE_ATTEMPTS; attempt++) {
      const fresh = table.allocateShareable();
      if (fresh >= 0) {
        if (take(fresh)) return this.#masqueradePort(handle, fresh);
        table.releaseShared(fresh);
        continue;
      }
      // Every port is taken: share one with flows to other remote sockets (the tuple tells them apart).
      const shared = table.shareCandidate();
      if (shared < 0) break;
      if (take(shared) && table.acquireShared(shared)) return this.#masqueradePort(handle, shared);
    }
    // The packet is dropped: counted here, once (a port tried and found taken is not a drop).
    this.counters.ports_exhausted++;
    return -1;
  }

  #masqueradePort(handle: number, port: number): number {
    this.#ct.setNatFlags(handle, this.#ct.natFlags(handle) | NAT_FLAG_MASQUERADE_PORT);
    return port;
  }

  // --- shared ----------------------------------------------------------------

  /** Whether the flow's only source translation is a clash's new port (masquerade may still take the source over). */
  #remappedOnly(handle: number): boolean {
    const ct = this.#ct;
    return (ct.natFlags(handle) & NAT_FLAG_SOURCE_REMAP) !== 0 && ct.replyDst(handle) === ct.origSrc(handle);
  }

  #snated(handle: number): boolean {
    const ct = this.#ct;
    return ct.origSrc(handle) !== ct.replyDst(handle) || ct.origSport(handle) !== ct.replyDport(handle);
  }

  /** Whether the destination was translated; for ICMP only its address can be (the identifier is the SNAT side's). */
  #dnated(handle: number): boolean {
    const ct = this.#ct;
    return ct.origDst(handle) !== ct.replySrc(handle) || (hasPorts(ct.protocol(handle)) && ct.origDport(handle) !== ct.replySport(handle));
  }

  /** 1 = translated, 0 = nothing to do, -1 = needed but impossible. */
  #unSnat(pkt: Packet, handle: number): number {
    const ct = this.#ct;
    if (!this.#snated(handle)) return 0;
    if (ipv4Dst(pkt.bytes, pkt.l3) !== ct.replyDst(handle) || packetPort(pkt, 1) !== ct.replyDport(handle)) return 0;
    if (!rewriteDestination(pkt, ct.origSrc(handle), hasPortsOrIdentifier(ct.protocol(handle)) ? ct.origSport(handle) : -1)) {
      this.counters.malformed++;
      return -1;
    }
    return 1;
  }

  #rewriteOrDrop(rewritten: boolean, counter: 'masqueraded'): boolean {
    if (!rewritten) {
      this.counters.malformed++;
      return false;
    }
    this.counters[counter]++;
    return true;
  }

  /**
   * The destination side of a RELATED ICMP error: its outer destination and
   * the quoted datagram's source. An error travelling in the reply
   * direction quotes a translated original packet (`reply.dst` -> ...) and
   * must reach the original source (undo SNAT); one travelling in the
   * original direction quotes a translated reply (`orig.dst` -> ...) and
   * must reach the DNAT target (apply DNAT).
   */
  #relatedDestination(pkt: Packet, handle: number): boolean {
    const ct = this.#ct;
    if (isReply(pkt)) {
      if (!this.#snated(handle)) return true;
      return this.#translateRelated(pkt, handle, 1, ct.replyDst(handle), ct.replyDport(handle), ct.origSrc(handle), ct.origSport(handle), true);
    }
    if (!this.#dnated(handle)) return true;
    return this.#translateRelated(pkt, handle, 1, ct.origDst(handle), ct.origDport(handle), ct.replySrc(handle), ct.replySport(handle), false);
  }

  /**
   * The source side of a RELATED ICMP error: its outer source (when the
   * error comes from the translated host itself) and the quoted datagram's
   * destination. Reply direction: undo DNAT; original direction: apply SNAT.
   */
  #relatedSource(pkt: Packet, handle: number): boolean {
    const ct = this.#ct;
    if (isReply(pkt)) {
      if (!this.#dnated(handle)) return true;
      return this.#translateRelated(pkt, handle, 0, ct.replySrc(handle), ct.replySport(handle), ct.origDst(handle), ct.origDport(handle), false);
    }
    if (!this.#snated(handle)) return true;
    return this.#translateRelated(pkt, handle, 0, ct.origSrc(handle), ct.origSport(handle), ct.replyDst(handle), ct.replyDport(handle), true);
  }

  /**
   * `outer` 1: the error's destination address and the quote's source socket
   * (they name the same host); `outer` 0: the error's source and the quote's
   * destination. Each is rewritten from (fromAddr, fromPort) to (toAddr,
   * toPort) only where it still has the "from" value, so the step is
   * idempotent. An ICMP query's identifier counts only on the SNAT side
   * (`snatSide`), where masquerade may have renumbered it.
   */
  #translateRelated(pkt: Packet, handle: number, outer: 0 | 1, fromAddr: number, fromPort: number, toAddr: number, toPort: number, snatSide: boolean): boolean {
    const ct = this.#ct;
    if (quotedTransportOffset(pkt) < 0) return true;
    const quoted: 0 | 1 = outer === 1 ? 0 : 1;
    const protocol = ct.protocol(handle);
    const ports = hasPorts(protocol) || (snatSide && protocol === IpProtocol.Icmp);
    let changed = false;
    if (quotedAddress(pkt, quoted) === fromAddr && (!ports || quotedPort(pkt, quoted) === fromPort)) {
      if (!(quoted === 0 ? rewriteQuotedSource(pkt, toAddr, ports ? toPort : -1) : rewriteQuotedDestination(pkt, toAddr, ports ? toPort : -1))) {
        this.counters.malformed++;
        return false;
      }
      changed = true;
    }
    const { bytes, l3 } = pkt;
    const outerAddr = outer === 1 ? ipv4Dst(bytes, l3) : ipv4Src(bytes, l3);
    if (outerAddr === fromAddr && fromAddr !== toAddr) {
      if (outer === 1) rewriteDestination(pkt, toAddr);
      else rewriteSource(pkt, toAddr);
      changed = true;
    }
    if (changed) this.counters.related_translated++;
    return true;
  }

  #ownTable(addr: number): PortAllocator {
    let table = this.#tables.get(addr);
    if (table === undefined) {
      table = new PortAllocator(this.#random);
      this.#tables.set(addr, table);
    }
    return table;
  }
}

