/**
 * Rewriting the addresses and ports of a packet in place, with every
 * checksum that covers them updated incrementally (RFC 1624;
 * runtime-semantics.md 3.5): the IPv4 header, TCP, UDP (only when it has a
 * checksum - the upstream FIX), and for ICMP errors the quoted datagram's
 * header and transport checksums plus the outer ICMP checksum (3.5
 * improvement: PMTUD and traceroute keep working through NAT).
 *
 * Each function validates first and writes only when it can finish, so a
 * `false` result means the packet is untouched. A port of -1 means "keep".
 * An ICMP query's "port" is its identifier (what conntrack keys it on), one
 * field for both sides: masquerade changes it only when two inside hosts
 * would otherwise share one (3.4 keeps it; Linux rewrites it too).
 */

import {
  updateChecksum16,
  updateChecksum32,
  updateUdpChecksum16,
  updateUdpChecksum32,
} from './wire/checksum.ts';
import { readU16, writeU16 } from './wire/field.ts';
import { ICMPV4_HEADER_LEN, icmpv4Checksum, setIcmpv4Checksum } from './wire/icmpv4.ts';
import {
  IPV4_MIN_HEADER_LEN,
  IpProtocol,
  ipv4Checksum,
  ipv4Dst,
  ipv4FragOffset,
  ipv4HeaderLen,
  ipv4Protocol,
  ipv4Src,
  ipv4Version,
  rewriteIpv4Dst,
  rewriteIpv4Src,
  setIpv4Checksum,
  setIpv4Dst,
  setIpv4Src,
} from './wire/ipv4.ts';
import type { Packet } from './packet.ts';
import { TCP_MIN_HEADER_LEN } from './wire/tcp.ts';
import { UDP_HEADER_LEN } from './wire/udp.ts';
import {
  adjustTcpChecksumForAddress,
  rewriteTcpDstPort,
  rewriteTcpSrcPort,
} from './wire/tcp.ts';
import { adjustUdpChecksumForAddress, rewriteUdpDstPort, rewriteUdpSrcPort } from './wire/udp.ts';

const SRC = 0;
const DST = 1;

/** Offsets inside a transport header. */
const TCP_CHECKSUM = 16;
const UDP_CHECKSUM = 6;
const ICMP_ECHO_IDENT = 4;

/** TCP and UDP have ports; ICMP (and anything else) does not. */
export function hasPorts(protocol: number): boolean {
  return protocol === IpProtocol.Tcp || protocol === IpProtocol.Udp;
}

/** Ports, or an ICMP query's identifier: what a translation may change besides the address. */
export function hasPortsOrIdentifier(protocol: number): boolean {
  return hasPorts(protocol) || protocol === IpProtocol.Icmp;
}

/** ICMP messages with an identifier at offset 4: echo, timestamp, information, address mask (RFC 792, RFC 950). */
export function isIcmpQuery(type: number): boolean {
  return type === 0 || type === 8 || (type >= 13 && type <= 18);
}

/** Sets an ICMP query's identifier, and its checksum with it. */
function rewriteIcmpIdentifier(bytes: Uint8Array, l4: number, id: number): void {
  const old = readU16(bytes, l4 + ICMP_ECHO_IDENT);
  if (old === id) return;
  writeU16(bytes, l4 + ICMP_ECHO_IDENT, id);
  setIcmpv4Checksum(bytes, l4, updateChecksum16(icmpv4Checksum(bytes, l4), old, id));
}

/**
 * The "port" conntrack keys the packet on: a TCP/UDP port, the ICMP echo
 * identifier (both sides), or -1 when the header is not there. `which` is 0
 * for the source, 1 for the destination.
 */
export function packetPort(pkt: Packet, which: 0 | 1): number {
  const protocol = ipv4Protocol(pkt.bytes, pkt.l3);
  if (hasPorts(protocol)) return pkt.end - pkt.l4 >= 4 ? readU16(pkt.bytes, pkt.l4 + 2 * which) : -1;
  if (protocol === IpProtocol.Icmp) return pkt.end - pkt.l4 >= ICMPV4_HEADER_LEN ? readU16(pkt.bytes, pkt.l4 + ICMP_ECHO_IDENT) : -1;
  return -1;
}

/** Can `rewriteSource` / `rewriteDestination` work on this packet? Check before recording a mapping. */
export function isRewritable(pkt: Packet): boolean {
  return pkt.end <= pkt.bytes.length && pkt.l4 - pkt.l3 >= IPV4_MIN_HEADER_LEN && transportRewritable(pkt, ipv4Protocol(pkt.bytes, pkt.l3));
}

/** Is the transport header complete enough to rewrite, checksum included? Non-first fragments never are. */
function transportRewritable(pkt: Packet, protocol: number): boolean {
  if (ipv4FragOffset(pkt.bytes, pkt.l3) !== 0) return false;
  const available = pkt.end - pkt.l4;
  if (protocol === IpProtocol.Tcp) return available >= TCP_MIN_HEADER_LEN;
  if (protocol === IpProtocol.Udp) return available >= UDP_HEADER_LEN;
  return protocol === IpProtocol.Icmp && available >= ICMPV4_HEADER_LEN;
}

function rewriteSocket(pkt: Packet, side: number, addr: number, port: number): boolean {
  const { bytes, l3, l4 } = pkt;
  const protocol = ipv4Protocol(bytes, l3);
  if (!transportRewritable(pkt, protocol)) return false;
  const oldAddr = side === SRC ? ipv4Src(bytes, l3) : ipv4Dst(bytes, l3);
  if (oldAddr !== addr) {
    if (side === SRC) rewriteIpv4Src(bytes, l3, addr);
    else rewriteIpv4Dst(bytes, l3, addr);
    // The TCP and UDP checksums cover the addresses through the pseudo-header; ICMP's does not.
    if (protocol === IpProtocol.Tcp) adjustTcpChecksumForAddress(bytes, l4, oldAddr, addr);
    else if (protocol === IpProtocol.Udp) adjustUdpChecksumForAddress(bytes, l4, oldAddr, addr);
  }
  if (port >= 0 && hasPorts(protocol) && readU16(bytes, l4 + 2 * side) !== port) {
    if (protocol === IpProtocol.Tcp) {
      if (side === SRC) rewriteTcpSrcPort(bytes, l4, port);
      else rewriteTcpDstPort(bytes, l4, port);
    } else if (side === SRC) rewriteUdpSrcPort(bytes, l4, port);
    else rewriteUdpDstPort(bytes, l4, port);
  }
  if (port >= 0 && protocol === IpProtocol.Icmp && isIcmpQuery(bytes[l4]!)) rewriteIcmpIdentifier(bytes, l4, port);
  return true;
}

/** Sets the source address (and TCP/UDP port, or ICMP query identifier, unless -1). False, untouched, if the transport header is incomplete. */
export function rewriteSource(pkt: Packet, addr: number, port = -1): boolean {
  return rewriteSocket(pkt, SRC, addr, port);
}

/** Sets the destination address (and TCP/UDP port, or ICMP query identifier, unless -1). */
export function rewriteDestination(pkt: Packet, addr: number, port = -1): boolean {
  return rewriteSocket(pkt, DST, addr, port);
}

// --- ICMP errors -------------------------------------------------------------

/**
 * Offset of the quoted datagram's transport header in an ICMP error, or -1
 * when the quote does not hold a whole IPv4 header followed by at least the
 * 4 bytes of ports (or the 6 of an echo identifier).
 */
export function quotedTransportOffset(pkt: Packet): number {
  const { bytes, l4, end } = pkt;
  const q = l4 + ICMPV4_HEADER_LEN;
  if (end - q < IPV4_MIN_HEADER_LEN || ipv4Version(bytes, q) !== 4) return -1;
  const headerLen = ipv4HeaderLen(bytes, q);
  const ql4 = q + headerLen;
  if (headerLen < IPV4_MIN_HEADER_LEN || ipv4FragOffset(bytes, q) !== 0) return -1;
  const protocol = ipv4Protocol(bytes, q);
  const need = protocol === IpProtocol.Icmp ? ICMP_ECHO_IDENT + 2 : 4;
  return end - ql4 >= need ? ql4 : -1;
}

/** The quoted datagram's source (0) or destination (1) address. */
export function quotedAddress(pkt: Packet, which: 0 | 1): number {
  const q = pkt.l4 + ICMPV4_HEADER_LEN;
  return which === SRC ? ipv4Src(pkt.bytes, q) : ipv4Dst(pkt.bytes, q);
}

/** The quoted datagram's port (TCP/UDP) or echo identifier (ICMP); needs `quotedTransportOffset` >= 0. */
export function quotedPort(pkt: Packet, which: 0 | 1): number {
  const q = pkt.l4 + ICMPV4_HEADER_LEN;
  const ql4 = q + ipv4HeaderLen(pkt.bytes, q);
  return hasPorts(ipv4Protocol(pkt.bytes, q)) ? readU16(pkt.bytes, ql4 + 2 * which) : readU16(pkt.bytes, ql4 + ICMP_ECHO_IDENT);
}

/**
 * One 16-bit word of the ICMP message changes: store it and return the
 * ICMP checksum updated for it. Every field touched here sits at an even
 * distance from the ICMP header (the quoted header is 4-byte aligned), so
 * word-wise updates are exact.
 */
function setWord(bytes: Uint8Array, at: number, value: number, icmpSum: number): number {
  const old = readU16(bytes, at);
  writeU16(bytes, at, value);
  return updateChecksum16(icmpSum, old, value);
}

function rewriteQuotedSocket(pkt: Packet, side: number, addr: number, port: number): boolean {
  const ql4 = quotedTransportOffset(pkt);
  if (ql4 < 0) return false;
  const { bytes, l4, end } = pkt;
  const q = l4 + ICMPV4_HEADER_LEN;
  const protocol = ipv4Protocol(bytes, q);
  let icmpSum = icmpv4Checksum(bytes, l4);
  const oldAddr = side === SRC ? ipv4Src(bytes, q) : ipv4Dst(bytes, q);
  if (oldAddr !== addr) {
    const oldIpSum = ipv4Checksum(bytes, q);
    const newIpSum = updateChecksum32(oldIpSum, oldAddr, addr);
    if (side === SRC) setIpv4Src(bytes, q, addr);
    else setIpv4Dst(bytes, q, addr);
    setIpv4Checksum(bytes, q, newIpSum);
    icmpSum = updateChecksum16(updateChecksum32(icmpSum, oldAddr, addr), oldIpSum, newIpSum);
    // The quoted transport checksum, when the quote is long enough to hold it.
    if (protocol === IpProtocol.Tcp && end - ql4 >= TCP_CHECKSUM + 2) {
      const sum = readU16(bytes, ql4 + TCP_CHECKSUM);
      icmpSum = setWord(bytes, ql4 + TCP_CHECKSUM, updateChecksum32(sum, oldAddr, addr), icmpSum);
    } else if (protocol === IpProtocol.Udp && end - ql4 >= UDP_CHECKSUM + 2) {
      const sum = readU16(bytes, ql4 + UDP_CHECKSUM);
      icmpSum = setWord(bytes, ql4 + UDP_CHECKSUM, updateUdpChecksum32(sum, oldAddr, addr), icmpSum);
    }
  }
  const portAt = ql4 + 2 * side;
  if (port >= 0 && hasPorts(protocol) && readU16(bytes, portAt) !== port) {
    const oldPort = readU16(bytes, portAt);
    icmpSum = setWord(bytes, portAt, port, icmpSum);
    if (protocol === IpProtocol.Tcp && end - ql4 >= TCP_CHECKSUM + 2) {
      const sum = readU16(bytes, ql4 + TCP_CHECKSUM);
      icmpSum = setWord(bytes, ql4 + TCP_CHECKSUM, updateChecksum16(sum, oldPort, port), icmpSum);
    } else if (protocol === IpProtocol.Udp && end - ql4 >= UDP_CHECKSUM + 2) {
      const sum = readU16(bytes, ql4 + UDP_CHECKSUM);
      icmpSum = setWord(bytes, ql4 + UDP_CHECKSUM, updateUdpChecksum16(sum, oldPort, port), icmpSum);
    }
  }
  const idAt = ql4 + ICMP_ECHO_IDENT;
  if (port >= 0 && protocol === IpProtocol.Icmp && isIcmpQuery(bytes[ql4]!) && readU16(bytes, idAt) !== port) {
    // The quoted query's identifier and checksum (both inside the quote: quotedTransportOffset saw to that).
    const oldId = readU16(bytes, idAt);
    icmpSum = setWord(bytes, idAt, port, icmpSum);
    icmpSum = setWord(bytes, ql4 + 2, updateChecksum16(readU16(bytes, ql4 + 2), oldId, port), icmpSum);
  }
  setIcmpv4Checksum(bytes, l4, icmpSum);
  return true;
}

/** In an ICMP error, sets the quoted datagram's source address (and port unless -1). */
export function rewriteQuotedSource(pkt: Packet, addr: number, port = -1): boolean {
  return rewriteQuotedSocket(pkt, SRC, addr, port);
}

/** In an ICMP error, sets the quoted datagram's destination address (and port unless -1). */
export function rewriteQuotedDestination(pkt: Packet, addr: number, port = -1): boolean {
  return rewriteQuotedSocket(pkt, DST, addr, port);
}
