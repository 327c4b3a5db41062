/**
 * Packets for runtime tests, built with the runtime/wire emitters: an
 * Ethernet frame (IPv4 at offset 14) with correct checksums, wrapped in a
 * `Packet`. Addresses are dotted quads for readability.
 */

import { CtInfo, type Packet, packetFromFrame } from '../../runtime/packet.ts';
import { EthernetRepr, EtherType } from '../../runtime/wire/ethernet.ts';
import { Icmpv4Repr } from '../../runtime/wire/icmpv4.ts';
import {
  checkIpv4,
  IpProtocol,
  ipv4ChecksumIsValid,
  ipv4HeaderLen,
  Ipv4Repr,
  ipv4TotalLen,
  parseIpv4Address,
} from '../../runtime/wire/ipv4.ts';
import { TcpFlag, TcpRepr } from '../../runtime/wire/tcp.ts';
import { UdpRepr } from '../../runtime/wire/udp.ts';
import { l4ChecksumValid } from '../../runtime/wire/l4-checksum.ts';

export const L3 = 14;
const MAC_A = Uint8Array.of(2, 0, 0, 0, 0, 1);
const MAC_B = Uint8Array.of(2, 0, 0, 0, 0, 2);

export function ip(text: string): number {
  const addr = parseIpv4Address(text);
  if (addr === undefined) throw new Error(`not an IPv4 address: ${text}`);
  return addr;
}

export interface IpOptions {
  ttl?: number;
  ident?: number;
  moreFrags?: boolean;
  fragOffset?: number;
  dontFrag?: boolean;
}

/** An Ethernet frame around `payloadLen` bytes that `writePayload` fills at the L4 offset. */
function frame(
  src: string | number,
  dst: string | number,
  protocol: number,
  payloadLen: number,
  writePayload: (bytes: Uint8Array, at: number, srcAddr: number, dstAddr: number) => void,
  options: IpOptions = {},
): Uint8Array {
  const srcAddr = typeof src === 'number' ? src : ip(src);
  const dstAddr = typeof dst === 'number' ? dst : ip(dst);
  const repr: Ipv4Repr = { src: srcAddr, dst: dstAddr, protocol, ttl: options.ttl ?? 64, payloadLen, ...options };
  const bytes = new Uint8Array(L3 + Ipv4Repr.bufferLen(repr) + payloadLen);
  EthernetRepr.emit({ dst: MAC_B, src: MAC_A, etherType: EtherType.Ipv4 }, bytes, 0);
  Ipv4Repr.emit(repr, bytes, L3);
  writePayload(bytes, L3 + Ipv4Repr.bufferLen(repr), srcAddr, dstAddr);
  return bytes;
}

export function packet(bytes: Uint8Array): Packet {
  const pkt = packetFromFrame(bytes);
  if (typeof pkt === 'string') throw new Error(`test packet does not parse: ${pkt}`);
  return pkt;
}

export interface TcpOptions extends IpOptions {
  flags?: number;
  seq?: number;
  ack?: number;
  payload?: Uint8Array;
}

export function tcp(src: string, sport: number, dst: string, dport: number, options: TcpOptions = {}): Packet {
  const repr: TcpRepr = {
    srcPort: sport,
    dstPort: dport,
    seq: options.seq ?? 1000,
    ack: options.ack ?? 0,
    flags: options.flags ?? TcpFlag.Ack,
    window: 65535,
    payload: options.payload ?? new Uint8Array(0),
  };
  return packet(frame(src, dst, IpProtocol.Tcp, TcpRepr.bufferLen(repr), (b, at, s, d) => TcpRepr.emit(repr, b, at, s, d), options));
}

export const SYN = TcpFlag.Syn;
export const SYN_ACK = TcpFlag.Syn | TcpFlag.Ack;
export const ACK = TcpFlag.Ack;
export const FIN_ACK = TcpFlag.Fin | TcpFlag.Ack;
export const RST = TcpFlag.Rst;

export interface UdpOptions extends IpOptions {
  payload?: Uint8Array;
  /** Send checksum 0 ("none"). */
  noChecksum?: boolean;
}

export function udp(src: string, sport: number, dst: string, dport: number, options: UdpOptions = {}): Packet {
  const repr: UdpRepr = { srcPort: sport, dstPort: dport, payload: options.payload ?? Uint8Array.of(1, 2, 3, 4, 5) };
  return packet(
    frame(src, dst, IpProtocol.Udp, UdpRepr.bufferLen(repr), (b, at, s, d) => UdpRepr.emit(repr, b, at, s, d, !options.noChecksum), options),
  );
}

export function ping(src: string, dst: string, ident: number, kind: 'echo-request' | 'echo-reply' = 'echo-request', options: IpOptions = {}): Packet {
  const repr: Icmpv4Repr = { kind, ident, seq: 1, data: Uint8Array.of(0xde, 0xad, 0xbe, 0xef) };
  return packet(frame(src, dst, IpProtocol.Icmp, Icmpv4Repr.bufferLen(repr), (b, at) => Icmpv4Repr.emit(repr, b, at), options));
}

/**
 * An ICMP error from `src` to `dst` quoting `about` (its IP header and the
 * first `extra` payload bytes, 8 by default as RFC 792 asks).
 */
export function icmpError(
  src: string,
  dst: string,
  about: Packet,
  kind: 'dest-unreachable' | 'time-exceeded' = 'dest-unreachable',
  code = 3,
  extra = 8,
): Packet {
  const quoteLen = Math.min(ipv4HeaderLen(about.bytes, about.l3) + extra, about.end - about.l3);
  const quote = about.bytes.slice(about.l3, about.l3 + quoteLen);
  const repr: Icmpv4Repr = kind === 'dest-unreachable' ? { kind, code, nextHopMtu: 0, quote } : { kind, code, quote };
  return packet(frame(src, dst, IpProtocol.Icmp, Icmpv4Repr.bufferLen(repr), (b, at) => Icmpv4Repr.emit(repr, b, at)));
}

/** Every checksum of the packet is right: IPv4 header, and TCP / UDP / ICMP over the whole payload. */
export function checksumsValid(pkt: Packet): boolean {
  const { bytes, l3, l4, end } = pkt;
  if (checkIpv4(bytes, l3, end) !== undefined || !ipv4ChecksumIsValid(bytes, l3)) return false;
  return l4ChecksumValid(bytes, l3, l4, end);
}

/** The IPv4 header checksum of the datagram an ICMP error quotes is right. */
export function quotedHeaderChecksumValid(pkt: Packet): boolean {
  return ipv4ChecksumIsValid(pkt.bytes, pkt.l4 + 8);
}

export function datagramLength(pkt: Packet): number {
  return ipv4TotalLen(pkt.bytes, pkt.l3);
}

/** A copy of the packet (own buffer), for before/after comparisons. */
export function clonePacket(pkt: Packet): Packet {
  return { bytes: pkt.bytes.slice(), l3: pkt.l3, l4: pkt.l4, end: pkt.end, ctInfo: pkt.ctInfo };
}

export { CtInfo };
