import { ArpOperation, ArpRepr } from './wire/arp.ts';
import { broadcastMac, ETHERNET_HEADER_LEN } from './wire/ethernet.ts';
import { fillIcmpv4Checksum, Icmpv4Type } from './wire/icmpv4.ts';
import { fillIpv4Checksum, ipv4Dst, ipv4HeaderLen, ipv4Src, ipv4TotalLen, IpProtocol } from './wire/ipv4.ts';
import { fillTcpChecksum, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLen, tcpSeq, tcpSrcPort, TcpFlag, TcpRepr } from './wire/tcp.ts';
import { fillUdpChecksum } from './wire/udp.ts';
import { VLAN_HEADER_LEN } from './wire/vlan.ts';
import { freshBuffer } from './fresh-buffer.ts';
import { writeU16, writeU32 } from './wire/field.ts';

/*
 * Packets the appliance itself originates (control path: allocation is
 * fine here): ICMP replies and errors, TCP resets, UDP datagrams, ARP. Every
 * datagram is built at offset HEADROOM so a link header (with or without an
 * 802.1Q tag) can be written in front of it without copying.
 */

export const HEADROOM = ETHERNET_HEADER_LEN + VLAN_HEADER_LEN;

export interface Datagram {
  readonly bytes: Uint8Array;
  /** Where the IPv4 header starts (HEADROOM). */
  readonly l3: number;
  readonly end: number;
}

let ipId = 1;

function ipHeader(b: Uint8Array, total: number, protocol: number, src: number, dst: number, ttl = 64): void {
  const o = HEADROOM;
  b[o] = 0x45;
  writeU16(b, o + 2, total);
  ipId = (ipId + 1) & 0xffff;
  writeU16(b, o + 4, ipId);
  b[o + 8] = ttl;
  b[o + 9] = protocol;
  writeU32(b, o + 12, src);
  writeU32(b, o + 16, dst);
  fillIpv4Checksum(b, o);
}

function datagram(l4len: number): { b: Uint8Array; total: number } {
  const total = 20 + l4len;
  return { b: freshBuffer(HEADROOM + total), total };
}

/** ICMP echo reply for a request: same identifier, sequence and data (RFC 792). */
export function echoReply(req: Uint8Array, l3: number, end: number, src: number): Datagram {
  const l4 = l3 + ipv4HeaderLen(req, l3);
  const icmpLen = end - l4;
  const { b, total } = datagram(icmpLen);
  ipHeader(b, total, IpProtocol.Icmp, src, ipv4Src(req, l3));
  const o = HEADROOM + 20;
  b.set(req.subarray(l4, end), o);
  b[o] = Icmpv4Type.EchoReply;
  b[o + 1] = 0;
  fillIcmpv4Checksum(b, o, HEADROOM + total);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

/**
 * An ICMP error about a datagram: its IP header plus 8 bytes are quoted
 * (RFC 792). `extra` fills bytes 4-7 (the next-hop MTU of frag-needed).
 */
export function icmpError(type: number, code: number, orig: Uint8Array, l3: number, src: number, extra = 0): Datagram {
  const quoteLen = Math.min(ipv4HeaderLen(orig, l3) + 8, ipv4TotalLen(orig, l3), orig.length - l3);
  const { b, total } = datagram(8 + quoteLen);
  ipHeader(b, total, IpProtocol.Icmp, src, ipv4Src(orig, l3));
  const o = HEADROOM + 20;
  b[o] = type;
  b[o + 1] = code;
  writeU16(b, o + 6, extra);
  b.set(orig.subarray(l3, l3 + quoteLen), o + 8);
  fillIcmpv4Checksum(b, o, HEADROOM + total);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

/** RST for a segment to a closed port (RFC 9293 3.10.7.1). */
export function tcpReset(seg: Uint8Array, l3: number, end: number): Datagram {
  const l4 = l3 + ipv4HeaderLen(seg, l3);
  const flags = tcpFlags(seg, l4);
  const payload = end - l4 - tcpHeaderLen(seg, l4);
  const { b, total } = datagram(20);
  const src = ipv4Dst(seg, l3);
  const dst = ipv4Src(seg, l3);
  ipHeader(b, total, IpProtocol.Tcp, src, dst);
  const o = HEADROOM + 20;
  writeU16(b, o, tcpDstPort(seg, l4));
  writeU16(b, o + 2, tcpSrcPort(seg, l4));
  if (flags & TcpFlag.Ack) {
    writeU32(b, o + 4, tcpAck(seg, l4));
    b[o + 13] = TcpFlag.Rst;
  } else {
    const len = payload + (flags & TcpFlag.Syn ? 1 : 0) + (flags & TcpFlag.Fin ? 1 : 0);
    writeU32(b, o + 8, (tcpSeq(seg, l4) + len) >>> 0);
    b[o + 13] = TcpFlag.Rst | TcpFlag.Ack;
  }
  b[o + 12] = 5 << 4;
  fillTcpChecksum(b, o, 20, src, dst);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

/** A segment of one of the appliance's own TCP connections. */
export function tcpDatagram(src: number, dst: number, segment: TcpRepr): Datagram {
  const { b, total } = datagram(TcpRepr.bufferLen(segment));
  ipHeader(b, total, IpProtocol.Tcp, src, dst);
  TcpRepr.emit(segment, b, HEADROOM + 20, src, dst);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

export function udpDatagram(src: number, sport: number, dst: number, dport: number, payload: Uint8Array, ttl = 64): Datagram {
  const { b, total } = datagram(8 + payload.length);
  ipHeader(b, total, IpProtocol.Udp, src, dst, ttl);
  const o = HEADROOM + 20;
  writeU16(b, o, sport);
  writeU16(b, o + 2, dport);
  writeU16(b, o + 4, 8 + payload.length);
  b.set(payload, o + 8);
  fillUdpChecksum(b, o, src, dst);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

/** A TCP SYN with no options. */
export function tcpSyn(src: number, sport: number, dst: number, dport: number, seq = 1000): Datagram {
  const { b, total } = datagram(20);
  ipHeader(b, total, IpProtocol.Tcp, src, dst);
  const o = HEADROOM + 20;
  writeU16(b, o, sport);
  writeU16(b, o + 2, dport);
  writeU32(b, o + 4, seq);
  b[o + 12] = 5 << 4;
  b[o + 13] = TcpFlag.Syn;
  b[o + 14] = 0xfa;
  b[o + 15] = 0xf0;
  fillTcpChecksum(b, o, 20, src, dst);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

export function echoRequest(src: number, dst: number, ident: number, seq: number, payload: Uint8Array, ttl = 64): Datagram {
  const { b, total } = datagram(8 + payload.length);
  ipHeader(b, total, IpProtocol.Icmp, src, dst, ttl);
  const o = HEADROOM + 20;
  b[o] = Icmpv4Type.EchoRequest;
  writeU16(b, o + 4, ident);
  writeU16(b, o + 6, seq);
  b.set(payload, o + 8);
  fillIcmpv4Checksum(b, o, HEADROOM + total);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + total };
}

/** An ARP packet (the link header is written in front of it on emit). */
export function arpPacket(op: 'request' | 'reply', senderMac: Uint8Array, senderIp: number, targetMac: Uint8Array, targetIp: number): Datagram {
  const b = new Uint8Array(HEADROOM + 28);
  ArpRepr.emit({ operation: op, senderMac, senderIp, targetMac, targetIp }, b, HEADROOM);
  return { bytes: b, l3: HEADROOM, end: HEADROOM + 28 };
}

export const BROADCAST_MAC = broadcastMac();
export const ZERO_MAC = new Uint8Array(6);
export { ArpOperation };
