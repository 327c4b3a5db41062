/**
 * TCP segment headers (RFC 9293) over IPv4. The checksum covers a
 * pseudo-header, so verify and fill take the IP addresses; the segment
 * length is the IP payload length, passed as `length`.
 */

import {
  checksumIsValid,
  internetChecksum,
  pseudoHeaderSum,
  updateChecksum16,
  updateChecksum32,
} from './checksum.ts';
import type { EmitError } from './error.ts';
import { bytesAvailable, copyBytes, readU16, readU32, writeU16, writeU32 } from './field.ts';
import { IpProtocol } from './ipv4.ts';

const SRC_PORT = 0;
const DST_PORT = 2;
const SEQ = 4;
const ACK = 8;
/** Data offset (high nibble) and the 4 reserved bits (low nibble; bit 0 was RFC 3540's NS). */
const DATA_OFF = 12;
const FLAGS = 13;
const WINDOW = 14;
const CHECKSUM = 16;
const URGENT = 18;
const OPTIONS = 20;

export const TCP_MIN_HEADER_LEN = 20;
export const TCP_MAX_HEADER_LEN = 60;

/** The flags byte, CWR (0x80) down to FIN (0x01). */
export const TcpFlag = {
  Fin: 0x01,
  Syn: 0x02,
  Rst: 0x04,
  Psh: 0x08,
  Ack: 0x10,
  Urg: 0x20,
  Ece: 0x40,
  Cwr: 0x80,
} as const;

const NS_BIT = 0x01;

/**
 * 'bad-header-length': data offset below 5, or a header longer than the
 * segment. 'bad-port': a zero port on either side.
 */
export type TcpError = 'truncated' | 'bad-header-length' | 'bad-checksum' | 'bad-port';

// --- view ------------------------------------------------------------------

/**
 * Checks the header at `offset`, where `end` is the end of the IP payload
 * (the segment is everything up to it). The checksum is a separate call
 * because it needs the IP addresses.
 */
export function checkTcp(bytes: Uint8Array, offset: number, end = bytes.length): TcpError | undefined {
  const available = bytesAvailable(bytes, offset, end);
  if (available < TCP_MIN_HEADER_LEN) return 'truncated';
  const headerLen = tcpHeaderLen(bytes, offset);
  if (headerLen < TCP_MIN_HEADER_LEN || headerLen > available) return 'bad-header-length';
  return undefined;
}

export function tcpSrcPort(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + SRC_PORT);
}

export function tcpDstPort(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + DST_PORT);
}

export function tcpSeq(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + SEQ);
}

export function tcpAck(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + ACK);
}

/** Header length in bytes (data offset * 4). */
export function tcpHeaderLen(bytes: Uint8Array, offset: number): number {
  return (bytes[offset + DATA_OFF]! >>> 4) << 2;
}

/** The 4 reserved bits (RFC 9293), NS/AE included as the lowest. */
export function tcpReserved(bytes: Uint8Array, offset: number): number {
  return bytes[offset + DATA_OFF]! & 0x0f;
}

/** RFC 3540's ECN nonce sum bit, the lowest reserved bit (AccECN now calls it AE). */
export function tcpNs(bytes: Uint8Array, offset: number): boolean {
  return (bytes[offset + DATA_OFF]! & NS_BIT) !== 0;
}

/** The flags byte; test with `TcpFlag` masks. */
export function tcpFlags(bytes: Uint8Array, offset: number): number {
  return bytes[offset + FLAGS]!;
}

export function tcpWindow(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + WINDOW);
}

export function tcpChecksum(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + CHECKSUM);
}

export function tcpUrgent(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + URGENT);
}

/** A view of the option bytes (no copy); parse them with `parseTcpOptions` when needed. */
export function tcpOptions(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + OPTIONS, offset + Math.max(OPTIONS, tcpHeaderLen(bytes, offset)));
}

export function tcpPayloadOffset(bytes: Uint8Array, offset: number): number {
  return offset + tcpHeaderLen(bytes, offset);
}

export function setTcpSrcPort(bytes: Uint8Array, offset: number, port: number): void {
  writeU16(bytes, offset + SRC_PORT, port);
}

export function setTcpDstPort(bytes: Uint8Array, offset: number, port: number): void {
  writeU16(bytes, offset + DST_PORT, port);
}

export function setTcpSeq(bytes: Uint8Array, offset: number, seq: number): void {
  writeU32(bytes, offset + SEQ, seq);
}

export function setTcpAck(bytes: Uint8Array, offset: number, ack: number): void {
  writeU32(bytes, offset + ACK, ack);
}

/** `headerLen` in bytes; must be a multiple of 4 between 20 and 60. */
export function setTcpHeaderLen(bytes: Uint8Array, offset: number, headerLen: number): void {
  bytes[offset + DATA_OFF] = (((headerLen >>> 2) & 0x0f) << 4) | (bytes[offset + DATA_OFF]! & 0x0f);
}

export function setTcpReserved(bytes: Uint8Array, offset: number, reserved: number): void {
  bytes[offset + DATA_OFF] = (bytes[offset + DATA_OFF]! & 0xf0) | (reserved & 0x0f);
}

export function setTcpNs(bytes: Uint8Array, offset: number, ns: boolean): void {
  const byte = bytes[offset + DATA_OFF]!;
  bytes[offset + DATA_OFF] = ns ? byte | NS_BIT : byte & ~NS_BIT;
}

export function setTcpFlags(bytes: Uint8Array, offset: number, flags: number): void {
  bytes[offset + FLAGS] = flags;
}

export function setTcpWindow(bytes: Uint8Array, offset: number, window: number): void {
  writeU16(bytes, offset + WINDOW, window);
}

export function setTcpChecksum(bytes: Uint8Array, offset: number, checksum: number): void {
  writeU16(bytes, offset + CHECKSUM, checksum);
}

export function setTcpUrgent(bytes: Uint8Array, offset: number, urgent: number): void {
  writeU16(bytes, offset + URGENT, urgent);
}

// --- checksum --------------------------------------------------------------

/**
 * The checksum of the `length`-byte segment as if the field were zero; the
 * field's complement is added to cancel it, so the buffer is only read.
 */
export function computeTcpChecksum(bytes: Uint8Array, offset: number, length: number, src: number, dst: number): number {
  const initial = pseudoHeaderSum(src, dst, IpProtocol.Tcp, length) + (~tcpChecksum(bytes, offset) & 0xffff);
  return internetChecksum(bytes, offset, offset + length, initial);
}

/** Unlike UDP, 0 is not "none": TCP's checksum is mandatory. */
export function tcpChecksumIsValid(bytes: Uint8Array, offset: number, length: number, src: number, dst: number): boolean {
  return checksumIsValid(bytes, offset, offset + length, pseudoHeaderSum(src, dst, IpProtocol.Tcp, length));
}

export function fillTcpChecksum(bytes: Uint8Array, offset: number, length: number, src: number, dst: number): void {
  setTcpChecksum(bytes, offset, computeTcpChecksum(bytes, offset, length, src, dst));
}

/** NAT port rewrite with an incremental checksum update (RFC 1624). */
export function rewriteTcpSrcPort(bytes: Uint8Array, offset: number, port: number): void {
  setTcpChecksum(bytes, offset, updateChecksum16(tcpChecksum(bytes, offset), tcpSrcPort(bytes, offset), port));
  setTcpSrcPort(bytes, offset, port);
}

export function rewriteTcpDstPort(bytes: Uint8Array, offset: number, port: number): void {
  setTcpChecksum(bytes, offset, updateChecksum16(tcpChecksum(bytes, offset), tcpDstPort(bytes, offset), port));
  setTcpDstPort(bytes, offset, port);
}

/** Follows an IP address rewrite into the pseudo-header part of the checksum. */
export function adjustTcpChecksumForAddress(bytes: Uint8Array, offset: number, oldAddr: number, newAddr: number): void {
  setTcpChecksum(bytes, offset, updateChecksum32(tcpChecksum(bytes, offset), oldAddr, newAddr));
}

// --- representation --------------------------------------------------------

export interface TcpRepr {
  srcPort: number;
  dstPort: number;
  seq: number;
  ack: number;
  /** The flags byte (`TcpFlag` bits). */
  flags: number;
  window: number;
  /** The 4 reserved bits, NS included; 0 when omitted. */
  reserved?: number;
  urgent?: number;
  /** Raw option bytes, as `emitTcpOptions` writes them; emit pads with zeros (End of Option List) to a multiple of 4. */
  options?: Uint8Array;
  payload: Uint8Array;
}

export const TcpRepr = {
  /**
   * `end` is the end of the IP payload; `src`/`dst` are the IP addresses the
   * checksum covers. Copies options and payload, unless `borrow`: then they
   * are views of `bytes`, good for as long as its contents are (a receiver
   * that takes the bytes before the frame goes back to its driver).
   */
  parse(
    bytes: Uint8Array,
    offset: number,
    end: number,
    src: number,
    dst: number,
    verifyChecksum = true,
    borrow = false,
  ): TcpRepr | TcpError {
    const error = checkTcp(bytes, offset, end);
    if (error) return error;
    if (tcpSrcPort(bytes, offset) === 0 || tcpDstPort(bytes, offset) === 0) return 'bad-port';
    const length = bytesAvailable(bytes, offset, end);
    if (verifyChecksum && !tcpChecksumIsValid(bytes, offset, length, src, dst)) return 'bad-checksum';
    const headerLen = tcpHeaderLen(bytes, offset);
    return {
      srcPort: tcpSrcPort(bytes, offset),
      dstPort: tcpDstPort(bytes, offset),
      seq: tcpSeq(bytes, offset),
      ack: tcpAck(bytes, offset),
      flags: tcpFlags(bytes, offset),
      window: tcpWindow(bytes, offset),
      reserved: tcpReserved(bytes, offset),
      urgent: tcpUrgent(bytes, offset),
      options: borrow ? bytes.subarray(offset + OPTIONS, offset + headerLen) : bytes.slice(offset + OPTIONS, offset + headerLen),
      payload: borrow ? bytes.subarray(offset + headerLen, offset + length) : bytes.slice(offset + headerLen, offset + length),
    };
  },

  headerLen(repr: TcpRepr): number {
    return TCP_MIN_HEADER_LEN + ((((repr.options?.length ?? 0) + 3) >>> 2) << 2);
  },

  /** Header, options and payload. */
  bufferLen(repr: TcpRepr): number {
    return TcpRepr.headerLen(repr) + repr.payload.length;
  },

  /** Writes the whole segment and its checksum. */
  emit(repr: TcpRepr, bytes: Uint8Array, offset: number, src: number, dst: number): EmitError | undefined {
    const headerLen = TcpRepr.headerLen(repr);
    const length = headerLen + repr.payload.length;
    if (headerLen > TCP_MAX_HEADER_LEN || length > 0xffff) return 'field-out-of-range';
    if (bytesAvailable(bytes, offset, bytes.length) < length) return 'buffer-too-small';
    bytes.fill(0, offset, offset + headerLen);
    setTcpSrcPort(bytes, offset, repr.srcPort);
    setTcpDstPort(bytes, offset, repr.dstPort);
    setTcpSeq(bytes, offset, repr.seq);
    setTcpAck(bytes, offset, repr.ack);
    setTcpHeaderLen(bytes, offset, headerLen);
    setTcpReserved(bytes, offset, repr.reserved ?? 0);
    setTcpFlags(bytes, offset, repr.flags);
    setTcpWindow(bytes, offset, repr.window);
    setTcpUrgent(bytes, offset, repr.urgent ?? 0);
    if (repr.options) copyBytes(repr.options, 0, bytes, offset + OPTIONS, repr.options.length);
    copyBytes(repr.payload, 0, bytes, offset + headerLen, repr.payload.length);
    fillTcpChecksum(bytes, offset, length, src, dst);
    return undefined;
  },
};
