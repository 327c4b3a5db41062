/**
 * IPv4 headers (RFC 791). Addresses are unsigned 32-bit numbers in network
 * order (10.0.0.1 = 0x0a000001): cheap to compare, mask and hash, and they
 * never allocate.
 */

import { checksumIsValid, foldChecksum, internetChecksum, updateChecksum16, updateChecksum32 } from './checksum.ts';
import type { EmitError } from './error.ts';
import { bytesAvailable, copyBytes, readU16, readU32, writeU16, writeU32 } from './field.ts';

const VER_IHL = 0;
const DSCP_ECN = 1;
const TOTAL_LEN = 2;
const IDENT = 4;
const FLAGS_FRAG = 6;
const TTL = 8;
const PROTOCOL = 9;
const CHECKSUM = 10;
const SRC = 12;
const DST = 16;
const OPTIONS = 20;

export const IPV4_MIN_HEADER_LEN = 20;
export const IPV4_MAX_HEADER_LEN = 60;
export const IPV4_MAX_TOTAL_LEN = 0xffff;

const DF_BIT = 0x4000;
const MF_BIT = 0x2000;
const FRAG_OFFSET_MASK = 0x1fff;

export const IpProtocol = {
  Icmp: 1,
  Igmp: 2,
  Tcp: 6,
  Udp: 17,
} as const;

/**
 * 'truncated': fewer bytes than the header or the total length claim.
 * 'bad-header-length': IHL below 5. 'bad-total-length': total length smaller
 * than the header. Upstream drops all of these in `drop_invalid_in`
 * (runtime-semantics.md 1.2).
 */
export type Ipv4Error = 'truncated' | 'bad-version' | 'bad-header-length' | 'bad-total-length' | 'bad-checksum';

// --- view ------------------------------------------------------------------

/**
 * Validates the header at `offset` against the bytes up to `end`. After it
 * passes, every getter reads inside the buffer and the datagram occupies
 * `[offset, offset + ipv4TotalLen)`; anything after that is link padding.
 */
export function checkIpv4(
  bytes: Uint8Array,
  offset: number,
  end = bytes.length,
  verifyChecksum = true,
): Ipv4Error | undefined {
  const available = bytesAvailable(bytes, offset, end);
  if (available < IPV4_MIN_HEADER_LEN) return 'truncated';
  if (ipv4Version(bytes, offset) !== 4) return 'bad-version';
  const headerLen = ipv4HeaderLen(bytes, offset);
  if (headerLen < IPV4_MIN_HEADER_LEN) return 'bad-header-length';
  const totalLen = ipv4TotalLen(bytes, offset);
  if (totalLen < headerLen) return 'bad-total-length';
  if (totalLen > available) return 'truncated';
  if (verifyChecksum && !ipv4ChecksumIsValid(bytes, offset)) return 'bad-checksum';
  return undefined;
}

export function ipv4Version(bytes: Uint8Array, offset: number): number {
  return bytes[offset + VER_IHL]! >>> 4;
}

/** Header length in bytes (IHL * 4). */
export function ipv4HeaderLen(bytes: Uint8Array, offset: number): number {
  return (bytes[offset + VER_IHL]! & 0x0f) << 2;
}

export function ipv4Dscp(bytes: Uint8Array, offset: number): number {
  return bytes[offset + DSCP_ECN]! >>> 2;
}

export function ipv4Ecn(bytes: Uint8Array, offset: number): number {
  return bytes[offset + DSCP_ECN]! & 0x03;
}

export function ipv4TotalLen(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + TOTAL_LEN);
}

export function ipv4Ident(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + IDENT);
}

export function ipv4DontFrag(bytes: Uint8Array, offset: number): boolean {
  return (readU16(bytes, offset + FLAGS_FRAG) & DF_BIT) !== 0;
}

export function ipv4MoreFrags(bytes: Uint8Array, offset: number): boolean {
  return (readU16(bytes, offset + FLAGS_FRAG) & MF_BIT) !== 0;
}

/** Fragment offset in bytes (the field counts 8-byte units). */
export function ipv4FragOffset(bytes: Uint8Array, offset: number): number {
  return (readU16(bytes, offset + FLAGS_FRAG) & FRAG_OFFSET_MASK) << 3;
}

/** MF set or a non-zero offset: part of a larger datagram. */
export function ipv4IsFragment(bytes: Uint8Array, offset: number): boolean {
  return (readU16(bytes, offset + FLAGS_FRAG) & (MF_BIT | FRAG_OFFSET_MASK)) !== 0;
}

export function ipv4Ttl(bytes: Uint8Array, offset: number): number {
  return bytes[offset + TTL]!;
}

export function ipv4Protocol(bytes: Uint8Array, offset: number): number {
  return bytes[offset + PROTOCOL]!;
}

export function ipv4Checksum(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + CHECKSUM);
}

export function ipv4Src(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + SRC);
}

export function ipv4Dst(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + DST);
}

/** A view of the option bytes (IHL > 5), empty for a plain header. */
export function ipv4Options(bytes: Uint8Array, offset: number): Uint8Array {
  const headerLen = ipv4HeaderLen(bytes, offset);
  return bytes.subarray(offset + OPTIONS, offset + Math.max(OPTIONS, headerLen));
}

export function ipv4PayloadOffset(bytes: Uint8Array, offset: number): number {
  return offset + ipv4HeaderLen(bytes, offset);
}

/** Bytes after the header up to the total length (valid once `checkIpv4` passed). */
export function ipv4PayloadLen(bytes: Uint8Array, offset: number): number {
  return ipv4TotalLen(bytes, offset) - ipv4HeaderLen(bytes, offset);
}

export function setIpv4Version(bytes: Uint8Array, offset: number, version: number): void {
  bytes[offset + VER_IHL] = ((version & 0x0f) << 4) | (bytes[offset + VER_IHL]! & 0x0f);
}

/** `headerLen` in bytes; must be a multiple of 4 between 20 and 60. */
export function setIpv4HeaderLen(bytes: Uint8Array, offset: number, headerLen: number): void {
  bytes[offset + VER_IHL] = (bytes[offset + VER_IHL]! & 0xf0) | ((headerLen >>> 2) & 0x0f);
}

export function setIpv4Dscp(bytes: Uint8Array, offset: number, dscp: number): void {
  bytes[offset + DSCP_ECN] = ((dscp & 0x3f) << 2) | (bytes[offset + DSCP_ECN]! & 0x03);
}

export function setIpv4Ecn(bytes: Uint8Array, offset: number, ecn: number): void {
  bytes[offset + DSCP_ECN] = (bytes[offset + DSCP_ECN]! & 0xfc) | (ecn & 0x03);
}

export function setIpv4TotalLen(bytes: Uint8Array, offset: number, totalLen: number): void {
  writeU16(bytes, offset + TOTAL_LEN, totalLen);
}

export function setIpv4Ident(bytes: Uint8Array, offset: number, ident: number): void {
  writeU16(bytes, offset + IDENT, ident);
}

export function setIpv4DontFrag(bytes: Uint8Array, offset: number, dontFrag: boolean): void {
  const word = readU16(bytes, offset + FLAGS_FRAG);
  writeU16(bytes, offset + FLAGS_FRAG, dontFrag ? word | DF_BIT : word & ~DF_BIT);
}

export function setIpv4MoreFrags(bytes: Uint8Array, offset: number, moreFrags: boolean): void {
  const word = readU16(bytes, offset + FLAGS_FRAG);
  writeU16(bytes, offset + FLAGS_FRAG, moreFrags ? word | MF_BIT : word & ~MF_BIT);
}

/** `fragOffset` in bytes; must be a multiple of 8. */
export function setIpv4FragOffset(bytes: Uint8Array, offset: number, fragOffset: number): void {
  const word = readU16(bytes, offset + FLAGS_FRAG);
  writeU16(bytes, offset + FLAGS_FRAG, (word & ~FRAG_OFFSET_MASK) | ((fragOffset >>> 3) & FRAG_OFFSET_MASK));
}

export function setIpv4Ttl(bytes: Uint8Array, offset: number, ttl: number): void {
  bytes[offset + TTL] = ttl;
}

export function setIpv4Protocol(bytes: Uint8Array, offset: number, protocol: number): void {
  bytes[offset + PROTOCOL] = protocol;
}

export function setIpv4Checksum(bytes: Uint8Array, offset: number, checksum: number): void {
  writeU16(bytes, offset + CHECKSUM, checksum);
}

export function setIpv4Src(bytes: Uint8Array, offset: number, addr: number): void {
  writeU32(bytes, offset + SRC, addr);
}

export function setIpv4Dst(bytes: Uint8Array, offset: number, addr: number): void {
  writeU32(bytes, offset + DST, addr);
}

// --- checksum --------------------------------------------------------------

/** Covers the header only (options included), never the payload. */
export function ipv4ChecksumIsValid(bytes: Uint8Array, offset: number): boolean {
  const end = offset + ipv4HeaderLen(bytes, offset);
  if (end - offset !== IPV4_MIN_HEADER_LEN || end > bytes.length || offset < 0 || (offset | 0) !== offset) return checksumIsValid(bytes, offset, end);
  // Nearly every header has no options: its ten words, summed without a loop.
  const b = bytes;
  const o = offset;
  const sum =
    ((b[o]! << 8) | b[o + 1]!) +
    ((b[o + 2]! << 8) | b[o + 3]!) +
    ((b[o + 4]! << 8) | b[o + 5]!) +
    ((b[o + 6]! << 8) | b[o + 7]!) +
    ((b[o + 8]! << 8) | b[o + 9]!) +
    ((b[o + 10]! << 8) | b[o + 11]!) +
    ((b[o + 12]! << 8) | b[o + 13]!) +
    ((b[o + 14]! << 8) | b[o + 15]!) +
    ((b[o + 16]! << 8) | b[o + 17]!) +
    ((b[o + 18]! << 8) | b[o + 19]!);
  return foldChecksum(sum) === 0xffff;
}

export function fillIpv4Checksum(bytes: Uint8Array, offset: number): void {
  setIpv4Checksum(bytes, offset, 0);
  setIpv4Checksum(bytes, offset, internetChecksum(bytes, offset, offset + ipv4HeaderLen(bytes, offset)));
}

/**
 * Forwarding's TTL decrement with an incremental checksum update (RFC 1624;
 * TTL shares a 16-bit word with the protocol). Returns the new TTL; a TTL of
 * 0 is left alone (the router must not forward it anyway, RFC 1812 5.3.1).
 */
export function decrementIpv4Ttl(bytes: Uint8Array, offset: number): number {
  const ttl = ipv4Ttl(bytes, offset);
  if (ttl === 0) return 0;
  const protocol = ipv4Protocol(bytes, offset);
  setIpv4Checksum(
    bytes,
    offset,
    updateChecksum16(ipv4Checksum(bytes, offset), (ttl << 8) | protocol, ((ttl - 1) << 8) | protocol),
  );
  setIpv4Ttl(bytes, offset, ttl - 1);
  return ttl - 1;
}

/**
 * NAT's source rewrite: the header checksum is updated incrementally. The
 * transport checksum covers the address too (pseudo-header); updating it is
 * the transport's job (`adjustTcpChecksumForAddress`, `adjustUdpChecksumForAddress`).
 */
export function rewriteIpv4Src(bytes: Uint8Array, offset: number, addr: number): void {
  setIpv4Checksum(bytes, offset, updateChecksum32(ipv4Checksum(bytes, offset), ipv4Src(bytes, offset), addr));
  setIpv4Src(bytes, offset, addr);
}

export function rewriteIpv4Dst(bytes: Uint8Array, offset: number, addr: number): void {
  setIpv4Checksum(bytes, offset, updateChecksum32(ipv4Checksum(bytes, offset), ipv4Dst(bytes, offset), addr));
  setIpv4Dst(bytes, offset, addr);
}

// --- addresses -------------------------------------------------------------

const DOTTED_QUAD = /^(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})\.(0|[1-9]\d{0,2})$/;

/** 224.0.0.0/4, the multicast block (class D). */
export function isIpv4Multicast(addr: number): boolean {
  return addr >>> 28 === 0xe;
}

/**
 * "10.0.0.1" to 0x0a000001, or undefined. Strict dotted quad: leading zeros
 * are rejected because inet_aton would read them as octal (NaCl E108 too).
 */
export function parseIpv4Address(text: string): number | undefined {
  const match = DOTTED_QUAD.exec(text);
  if (!match) return undefined;
  let addr = 0;
  for (let i = 1; i <= 4; i++) {
    const octet = Number(match[i]);
    if (octet > 255) return undefined;
    addr = addr * 256 + octet;
  }
  return addr;
}

export function formatIpv4Address(addr: number): string {
  return `${(addr >>> 24) & 0xff}.${(addr >>> 16) & 0xff}.${(addr >>> 8) & 0xff}.${addr & 0xff}`;
}

// --- representation --------------------------------------------------------

/**
 * Everything a header says except its own lengths and checksum, which emit
 * derives. Optional fields default to 0 / false / no options.
 */
export interface Ipv4Repr {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  /** Bytes following the header. */
  payloadLen: number;
  dscp?: number;
  ecn?: number;
  ident?: number;
  dontFrag?: boolean;
  moreFrags?: boolean;
  /** In bytes, a multiple of 8. */
  fragOffset?: number;
  /** Raw option bytes; emit pads them with zeros (End of Option List) to a multiple of 4. */
  options?: Uint8Array;
}

export const Ipv4Repr = {
  parse(bytes: Uint8Array, offset: number, end = bytes.length, verifyChecksum = true): Ipv4Repr | Ipv4Error {
    const error = checkIpv4(bytes, offset, end, verifyChecksum);
    if (error) return error;
    const headerLen = ipv4HeaderLen(bytes, offset);
    return {
      src: ipv4Src(bytes, offset),
      dst: ipv4Dst(bytes, offset),
      protocol: ipv4Protocol(bytes, offset),
      ttl: ipv4Ttl(bytes, offset),
      payloadLen: ipv4TotalLen(bytes, offset) - headerLen,
      dscp: ipv4Dscp(bytes, offset),
      ecn: ipv4Ecn(bytes, offset),
      ident: ipv4Ident(bytes, offset),
      dontFrag: ipv4DontFrag(bytes, offset),
      moreFrags: ipv4MoreFrags(bytes, offset),
      fragOffset: ipv4FragOffset(bytes, offset),
      options: bytes.slice(offset + OPTIONS, offset + headerLen),
    };
  },

  /** The header's length; the payload comes after it. */
  bufferLen(repr: Ipv4Repr): number {
    return IPV4_MIN_HEADER_LEN + ((((repr.options?.length ?? 0) + 3) >>> 2) << 2);
  },

  /** Writes the header, checksum included; the caller writes `payloadLen` bytes after it. */
  emit(repr: Ipv4Repr, bytes: Uint8Array, offset: number): EmitError | undefined {
    const headerLen = Ipv4Repr.bufferLen(repr);
    if (headerLen > IPV4_MAX_HEADER_LEN || headerLen + repr.payloadLen > IPV4_MAX_TOTAL_LEN || repr.payloadLen < 0) {
      return 'field-out-of-range';
    }
    if (bytesAvailable(bytes, offset, bytes.length) < headerLen) return 'buffer-too-small';
    bytes.fill(0, offset, offset + headerLen);
    setIpv4Version(bytes, offset, 4);
    setIpv4HeaderLen(bytes, offset, headerLen);
    setIpv4Dscp(bytes, offset, repr.dscp ?? 0);
    setIpv4Ecn(bytes, offset, repr.ecn ?? 0);
    setIpv4TotalLen(bytes, offset, headerLen + repr.payloadLen);
    setIpv4Ident(bytes, offset, repr.ident ?? 0);
    setIpv4DontFrag(bytes, offset, repr.dontFrag ?? false);
    setIpv4MoreFrags(bytes, offset, repr.moreFrags ?? false);
    setIpv4FragOffset(bytes, offset, repr.fragOffset ?? 0);
    setIpv4Ttl(bytes, offset, repr.ttl);
    setIpv4Protocol(bytes, offset, repr.protocol);
    setIpv4Src(bytes, offset, repr.src);
    setIpv4Dst(bytes, offset, repr.dst);
    if (repr.options) copyBytes(repr.options, 0, bytes, offset + OPTIONS, repr.options.length);
    fillIpv4Checksum(bytes, offset);
    return undefined;
  },
};
