/**
 * ICMPv4 (RFC 792): the messages an appliance answers and sends - echo,
 * destination unreachable (with RFC 1191's next-hop MTU) and time exceeded.
 * Errors quote the offending datagram's IP header and at least its first 8
 * payload bytes (RFC 792; RFC 1812 4.3.2.3 allows more), which is how the
 * receiver finds the socket or NAT entry the error belongs to.
 */

import { checksumIsValid, internetChecksum } from './checksum.ts';
import type { EmitError } from './error.ts';
import { bytesAvailable, copyBytes, readU16, writeU16 } from './field.ts';
import { IPV4_MIN_HEADER_LEN, ipv4HeaderLen, ipv4TotalLen, ipv4Version } from './ipv4.ts';

const TYPE = 0;
const CODE = 1;
const CHECKSUM = 2;
/** Echo: identifier and sequence number. */
const ECHO_IDENT = 4;
const ECHO_SEQ = 6;
/** Destination unreachable, code 4: RFC 1191's next-hop MTU in the low half of the unused word. */
const NEXT_HOP_MTU = 6;
/** Echo data, or the quoted datagram of an error. */
const DATA = 8;
export const ICMPV4_HEADER_LEN = 8;

/** The 8 bytes after the quoted IP header that RFC 792 requires (ports and, for TCP, the sequence number). */
export const ICMPV4_QUOTED_PAYLOAD_LEN = 8;

export const Icmpv4Type = {
  EchoReply: 0,
  DestUnreachable: 3,
  EchoRequest: 8,
  TimeExceeded: 11,
} as const;

export const Icmpv4Unreachable = {
  Net: 0,
  Host: 1,
  Protocol: 2,
  Port: 3,
  FragNeeded: 4,
} as const;

export const Icmpv4TimeExceeded = {
  TtlExpired: 0,
  ReassemblyTimeout: 1,
} as const;

/**
 * 'unsupported-type': a type this layer does not represent (the view still
 * reads it). 'bad-code': an echo with a non-zero code. 'bad-quote': an
 * error whose quoted datagram does not start with a whole IPv4 header.
 */
export type Icmpv4Error = 'truncated' | 'bad-checksum' | 'unsupported-type' | 'bad-code' | 'bad-quote';

// --- view ------------------------------------------------------------------

/** The message is the whole IP payload `[offset, end)`; only the length is checked here. */
export function checkIcmpv4(bytes: Uint8Array, offset: number, end = bytes.length): Icmpv4Error | undefined {
  return bytesAvailable(bytes, offset, end) < ICMPV4_HEADER_LEN ? 'truncated' : undefined;
}

export function icmpv4Type(bytes: Uint8Array, offset: number): number {
  return bytes[offset + TYPE]!;
}

export function icmpv4Code(bytes: Uint8Array, offset: number): number {
  return bytes[offset + CODE]!;
}

export function icmpv4Checksum(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + CHECKSUM);
}

export function icmpv4EchoIdent(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + ECHO_IDENT);
}

export function icmpv4EchoSeq(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + ECHO_SEQ);
}

/** 0 from routers that predate RFC 1191. */
export function icmpv4NextHopMtu(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + NEXT_HOP_MTU);
}

/** Where echo data or an error's quoted datagram starts. */
export function icmpv4DataOffset(offset: number): number {
  return offset + DATA;
}

export function setIcmpv4Type(bytes: Uint8Array, offset: number, type: number): void {
  bytes[offset + TYPE] = type;
}

export function setIcmpv4Code(bytes: Uint8Array, offset: number, code: number): void {
  bytes[offset + CODE] = code;
}

export function setIcmpv4Checksum(bytes: Uint8Array, offset: number, checksum: number): void {
  writeU16(bytes, offset + CHECKSUM, checksum);
}

export function setIcmpv4EchoIdent(bytes: Uint8Array, offset: number, ident: number): void {
  writeU16(bytes, offset + ECHO_IDENT, ident);
}

export function setIcmpv4EchoSeq(bytes: Uint8Array, offset: number, seq: number): void {
  writeU16(bytes, offset + ECHO_SEQ, seq);
}

export function setIcmpv4NextHopMtu(bytes: Uint8Array, offset: number, mtu: number): void {
  writeU16(bytes, offset + NEXT_HOP_MTU, mtu);
}

// --- checksum --------------------------------------------------------------

/** Covers the whole message `[offset, end)`; no pseudo-header, so NAT never has to touch it. */
export function icmpv4ChecksumIsValid(bytes: Uint8Array, offset: number, end: number): boolean {
  return checksumIsValid(bytes, offset, end);
}

export function fillIcmpv4Checksum(bytes: Uint8Array, offset: number, end: number): void {
  setIcmpv4Checksum(bytes, offset, 0);
  setIcmpv4Checksum(bytes, offset, internetChecksum(bytes, offset, end));
}

/**
 * How much of the offending datagram at `ipOffset` an error should quote:
 * its header plus 8 bytes, or less when the datagram is shorter. Meant for
 * a datagram that passed `checkIpv4`; on anything else it stays within
 * `[ipOffset, end)` and returns 0 when no whole header is there.
 */
export function icmpv4QuoteLen(bytes: Uint8Array, ipOffset: number, end = bytes.length): number {
  const available = bytesAvailable(bytes, ipOffset, end);
  if (available < IPV4_MIN_HEADER_LEN) return 0;
  const headerLen = ipv4HeaderLen(bytes, ipOffset);
  if (headerLen < IPV4_MIN_HEADER_LEN || headerLen > available) return 0;
  const datagramLen = Math.min(Math.max(ipv4TotalLen(bytes, ipOffset), headerLen), available);
  return Math.min(headerLen + ICMPV4_QUOTED_PAYLOAD_LEN, datagramLen);
}

/** The quote must begin with a whole IPv4 header, or nobody can match it to a flow. */
function quoteIsValid(bytes: Uint8Array, start: number, length: number): boolean {
  if (length < IPV4_MIN_HEADER_LEN || ipv4Version(bytes, start) !== 4) return false;
  const headerLen = ipv4HeaderLen(bytes, start);
  return headerLen >= IPV4_MIN_HEADER_LEN && headerLen <= length;
}

// --- representation --------------------------------------------------------

export type Icmpv4Repr =
  | { kind: 'echo-request'; ident: number; seq: number; data: Uint8Array }
  | { kind: 'echo-reply'; ident: number; seq: number; data: Uint8Array }
  | {
      kind: 'dest-unreachable';
      /** An `Icmpv4Unreachable` code; others (13, "administratively prohibited") are kept as they are. */
      code: number;
      /** Meaningful for code 4 only; 0 otherwise. */
      nextHopMtu: number;
      /** The offending datagram: IP header and at least 8 bytes (`icmpv4QuoteLen`). */
      quote: Uint8Array;
    }
  | { kind: 'time-exceeded'; code: number; quote: Uint8Array };

export const Icmpv4Repr = {
  /** The message is `[offset, end)`, the whole IP payload. Copies data and quotes. */
  parse(bytes: Uint8Array, offset: number, end = bytes.length, verifyChecksum = true): Icmpv4Repr | Icmpv4Error {
    const error = checkIcmpv4(bytes, offset, end);
    if (error) return error;
    const stop = offset + bytesAvailable(bytes, offset, end);
    if (verifyChecksum && !icmpv4ChecksumIsValid(bytes, offset, stop)) return 'bad-checksum';
    const type = icmpv4Type(bytes, offset);
    const code = icmpv4Code(bytes, offset);
    const data = bytes.slice(offset + DATA, stop);
    switch (type) {
      case Icmpv4Type.EchoRequest:
      case Icmpv4Type.EchoReply: {
        if (code !== 0) return 'bad-code';
        const ident = icmpv4EchoIdent(bytes, offset);
        const seq = icmpv4EchoSeq(bytes, offset);
        return type === Icmpv4Type.EchoRequest
          ? { kind: 'echo-request', ident, seq, data }
          : { kind: 'echo-reply', ident, seq, data };
      }
      case Icmpv4Type.DestUnreachable:
        if (!quoteIsValid(bytes, offset + DATA, stop - offset - DATA)) return 'bad-quote';
        return {
          kind: 'dest-unreachable',
          code,
          nextHopMtu: code === Icmpv4Unreachable.FragNeeded ? icmpv4NextHopMtu(bytes, offset) : 0,
          quote: data,
        };
      case Icmpv4Type.TimeExceeded:
        if (!quoteIsValid(bytes, offset + DATA, stop - offset - DATA)) return 'bad-quote';
        return { kind: 'time-exceeded', code, quote: data };
      default:
        return 'unsupported-type';
    }
  },

  bufferLen(repr: Icmpv4Repr): number {
    return ICMPV4_HEADER_LEN + (repr.kind === 'echo-request' || repr.kind === 'echo-reply' ? repr.data : repr.quote).length;
  },

  /** Writes the whole message and its checksum. */
  emit(repr: Icmpv4Repr, bytes: Uint8Array, offset: number): EmitError | undefined {
    const length = Icmpv4Repr.bufferLen(repr);
    if (length > 0xffff) return 'field-out-of-range';
    if (bytesAvailable(bytes, offset, bytes.length) < length) return 'buffer-too-small';
    bytes.fill(0, offset, offset + ICMPV4_HEADER_LEN);
    switch (repr.kind) {
      case 'echo-request':
      case 'echo-reply':
        setIcmpv4Type(bytes, offset, repr.kind === 'echo-request' ? Icmpv4Type.EchoRequest : Icmpv4Type.EchoReply);
        setIcmpv4EchoIdent(bytes, offset, repr.ident);
        setIcmpv4EchoSeq(bytes, offset, repr.seq);
        copyBytes(repr.data, 0, bytes, offset + DATA, repr.data.length);
        break;
      case 'dest-unreachable':
        setIcmpv4Type(bytes, offset, Icmpv4Type.DestUnreachable);
        setIcmpv4Code(bytes, offset, repr.code);
        if (repr.code === Icmpv4Unreachable.FragNeeded) setIcmpv4NextHopMtu(bytes, offset, repr.nextHopMtu);
        copyBytes(repr.quote, 0, bytes, offset + DATA, repr.quote.length);
        break;
      case 'time-exceeded':
        setIcmpv4Type(bytes, offset, Icmpv4Type.TimeExceeded);
        setIcmpv4Code(bytes, offset, repr.code);
        copyBytes(repr.quote, 0, bytes, offset + DATA, repr.quote.length);
        break;
    }
    fillIcmpv4Checksum(bytes, offset, offset + length);
    return undefined;
  },
};
