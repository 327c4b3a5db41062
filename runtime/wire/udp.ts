/**
 * UDP (RFC 768) over IPv4. The checksum covers a pseudo-header made of the
 * IP addresses, so verify and fill take them as arguments.
 */

import {
  checksumIsValid,
  internetChecksum,
  pseudoHeaderSum,
  udpChecksumForWire,
  updateUdpChecksum16,
  updateUdpChecksum32,
} from './checksum.ts';
import type { EmitError } from './error.ts';
import { bytesAvailable, copyBytes, readU16, writeU16 } from './field.ts';
import { IpProtocol } from './ipv4.ts';

const SRC_PORT = 0;
const DST_PORT = 2;
const LENGTH = 4;
const CHECKSUM = 6;
export const UDP_HEADER_LEN = 8;

/**
 * 'bad-length': the length field is below 8 or claims more than the IP
 * payload holds. 'bad-port': destination port 0, which nobody can listen on.
 */
export type UdpError = 'truncated' | 'bad-length' | 'bad-checksum' | 'bad-port';

// --- view ------------------------------------------------------------------

/**
 * Checks the header at `offset`, where `end` is the end of the IP payload.
 * After it passes the datagram is `[offset, offset + udpLength)`. The checksum
 * is a separate call because it needs the IP addresses.
 */
export function checkUdp(bytes: Uint8Array, offset: number, end = bytes.length): UdpError | undefined {
  const available = bytesAvailable(bytes, offset, end);
  if (available < UDP_HEADER_LEN) return 'truncated';
  const length = udpLength(bytes, offset);
  if (length < UDP_HEADER_LEN || length > available) return 'bad-length';
  return undefined;
}

export function udpSrcPort(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + SRC_PORT);
}

export function udpDstPort(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + DST_PORT);
}

/** Header plus payload, in bytes. */
export function udpLength(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + LENGTH);
}

/** 0 means the sender computed none. */
export function udpChecksum(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + CHECKSUM);
}

export function udpPayloadOffset(offset: number): number {
  return offset + UDP_HEADER_LEN;
}

/** Valid once `checkUdp` passed. */
export function udpPayloadLen(bytes: Uint8Array, offset: number): number {
  return udpLength(bytes, offset) - UDP_HEADER_LEN;
}

/** A view of the payload (no copy), clamped to the buffer. */
export function udpPayload(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + UDP_HEADER_LEN, Math.max(offset + UDP_HEADER_LEN, offset + udpLength(bytes, offset)));
}

export function setUdpSrcPort(bytes: Uint8Array, offset: number, port: number): void {
  writeU16(bytes, offset + SRC_PORT, port);
}

export function setUdpDstPort(bytes: Uint8Array, offset: number, port: number): void {
  writeU16(bytes, offset + DST_PORT, port);
}

export function setUdpLength(bytes: Uint8Array, offset: number, length: number): void {
  writeU16(bytes, offset + LENGTH, length);
}

export function setUdpChecksum(bytes: Uint8Array, offset: number, checksum: number): void {
  writeU16(bytes, offset + CHECKSUM, checksum);
}

// --- checksum --------------------------------------------------------------

/**
 * The checksum of the datagram as it stands, as if the field were zero.
 * Adding the field's complement cancels it (x + ~x is a one's-complement
 * zero), so the buffer is only read.
 */
export function computeUdpChecksum(bytes: Uint8Array, offset: number, src: number, dst: number): number {
  const length = udpLength(bytes, offset);
  const initial = pseudoHeaderSum(src, dst, IpProtocol.Udp, length) + (~udpChecksum(bytes, offset) & 0xffff);
  return internetChecksum(bytes, offset, offset + length, initial);
}

/** True for a correct checksum and for none at all (0), which IPv4 allows (RFC 768, RFC 1122 4.1.3.4). */
export function udpChecksumIsValid(bytes: Uint8Array, offset: number, src: number, dst: number): boolean {
  if (udpChecksum(bytes, offset) === 0) return true;
  const length = udpLength(bytes, offset);
  return checksumIsValid(bytes, offset, offset + length, pseudoHeaderSum(src, dst, IpProtocol.Udp, length));
}

/** Computes and stores the checksum; a computed 0 is stored as 0xFFFF since 0 would mean "none". */
export function fillUdpChecksum(bytes: Uint8Array, offset: number, src: number, dst: number): void {
  setUdpChecksum(bytes, offset, udpChecksumForWire(computeUdpChecksum(bytes, offset, src, dst)));
}

/** NAT port rewrite with an incremental checksum update that keeps "no checksum" as none. */
export function rewriteUdpSrcPort(bytes: Uint8Array, offset: number, port: number): void {
  setUdpChecksum(bytes, offset, updateUdpChecksum16(udpChecksum(bytes, offset), udpSrcPort(bytes, offset), port));
  setUdpSrcPort(bytes, offset, port);
}

export function rewriteUdpDstPort(bytes: Uint8Array, offset: number, port: number): void {
  setUdpChecksum(bytes, offset, updateUdpChecksum16(udpChecksum(bytes, offset), udpDstPort(bytes, offset), port));
  setUdpDstPort(bytes, offset, port);
}

/** Follows an IP address rewrite into the pseudo-header part of the checksum (runtime-semantics.md 3.5 FIX). */
export function adjustUdpChecksumForAddress(bytes: Uint8Array, offset: number, oldAddr: number, newAddr: number): void {
  setUdpChecksum(bytes, offset, updateUdpChecksum32(udpChecksum(bytes, offset), oldAddr, newAddr));
}

// --- representation --------------------------------------------------------

export interface UdpRepr {
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

export const UdpRepr = {
  /**
   * `end` is the end of the IP payload; `src`/`dst` are the IP addresses the
   * checksum covers. Copies the payload.
   */
  parse(
    bytes: Uint8Array,
    offset: number,
    end: number,
    src: number,
    dst: number,
    verifyChecksum = true,
  ): UdpRepr | UdpError {
    const error = checkUdp(bytes, offset, end);
    if (error) return error;
    if (udpDstPort(bytes, offset) === 0) return 'bad-port';
    if (verifyChecksum && !udpChecksumIsValid(bytes, offset, src, dst)) return 'bad-checksum';
    return {
      srcPort: udpSrcPort(bytes, offset),
      dstPort: udpDstPort(bytes, offset),
      payload: bytes.slice(offset + UDP_HEADER_LEN, offset + udpLength(bytes, offset)),
    };
  },

  /** Header and payload. */
  bufferLen(repr: UdpRepr): number {
    return UDP_HEADER_LEN + repr.payload.length;
  },

  /** Writes header, payload and checksum (`withChecksum = false` sends 0, "none"). */
  emit(repr: UdpRepr, bytes: Uint8Array, offset: number, src: number, dst: number, withChecksum = true): EmitError | undefined {
    const length = UdpRepr.bufferLen(repr);
    if (length > 0xffff) return 'field-out-of-range';
    if (bytesAvailable(bytes, offset, bytes.length) < length) return 'buffer-too-small';
    setUdpSrcPort(bytes, offset, repr.srcPort);
    setUdpDstPort(bytes, offset, repr.dstPort);
    setUdpLength(bytes, offset, length);
    setUdpChecksum(bytes, offset, 0);
    copyBytes(repr.payload, 0, bytes, offset + UDP_HEADER_LEN, repr.payload.length);
    if (withChecksum) fillUdpChecksum(bytes, offset, src, dst);
    return undefined;
  },
};
