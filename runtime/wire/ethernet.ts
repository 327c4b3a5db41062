/**
 * Ethernet II frames (IEEE 802.3 with an EtherType), without preamble or FCS:
 * exactly what a NIC driver hands over.
 */

import type { EmitError } from './error.ts';
import { bytesAvailable, readU16, writeU16 } from './field.ts';

const DST = 0;
const SRC = 6;
const ETHERTYPE = 12;
export const ETHERNET_HEADER_LEN = 14;
export const MAC_LEN = 6;
/** Shortest frame on the wire without FCS; senders pad up to it, receivers must ignore the padding. */
export const ETHERNET_MIN_FRAME_LEN = 60;

export const EtherType = {
  Ipv4: 0x0800,
  Arp: 0x0806,
  Vlan: 0x8100,
  Ipv6: 0x86dd,
  QinQ: 0x88a8,
} as const;

export type EthernetError = 'truncated';

// --- view ------------------------------------------------------------------

/** Ethernet has no field to check; only the length can be wrong. */
export function checkEthernet(bytes: Uint8Array, offset: number, end = bytes.length): EthernetError | undefined {
  return bytesAvailable(bytes, offset, end) < ETHERNET_HEADER_LEN ? 'truncated' : undefined;
}

/** A view of the destination MAC (no copy; allocates only the view object). */
export function ethDst(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + DST, offset + DST + MAC_LEN);
}

export function ethSrc(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + SRC, offset + SRC + MAC_LEN);
}

export function ethEtherType(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + ETHERTYPE);
}

export function setEthDst(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): void {
  copyMac(mac, macOffset, bytes, offset + DST);
}

export function setEthSrc(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): void {
  copyMac(mac, macOffset, bytes, offset + SRC);
}

// Byte by byte: every forwarded frame gets two MACs, and for six bytes a
// loop beats TypedArray#set with the subarray it needs.
function copyMac(from: Uint8Array, fromOffset: number, to: Uint8Array, toOffset: number): void {
  for (let i = 0; i < MAC_LEN; i++) to[toOffset + i] = from[fromOffset + i]!; // past the end: undefined, stored as 0
}

export function setEthEtherType(bytes: Uint8Array, offset: number, etherType: number): void {
  writeU16(bytes, offset + ETHERTYPE, etherType);
}

/** Allocation-free: compares the destination with `mac` in place. */
export function ethDstIs(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): boolean {
  return macEquals(bytes, offset + DST, mac, macOffset);
}

export function ethIsBroadcast(bytes: Uint8Array, offset: number): boolean {
  return isBroadcastMac(bytes, offset + DST);
}

/** The I/G bit: group (multicast or broadcast) destination. */
export function ethIsMulticast(bytes: Uint8Array, offset: number): boolean {
  return isMulticastMac(bytes, offset + DST);
}

export function ethPayloadOffset(offset: number): number {
  return offset + ETHERNET_HEADER_LEN;
}

// --- MAC addresses ---------------------------------------------------------

export function macEquals(a: Uint8Array, aOffset: number, b: Uint8Array, bOffset = 0): boolean {
  for (let i = 0; i < MAC_LEN; i++) if (a[aOffset + i] !== b[bOffset + i]) return false;
  return true;
}

export function isBroadcastMac(mac: Uint8Array, offset = 0): boolean {
  for (let i = 0; i < MAC_LEN; i++) if (mac[offset + i] !== 0xff) return false;
  return true;
}

export function isMulticastMac(mac: Uint8Array, offset = 0): boolean {
  return ((mac[offset] ?? 0) & 1) === 1;
}

/** ff:ff:ff:ff:ff:ff, a fresh array each call so nobody can corrupt a shared one. */
export function broadcastMac(): Uint8Array {
  return new Uint8Array(MAC_LEN).fill(0xff);
}

const MAC_TEXT = /^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$/i;

/**
 * "aa:bb:cc:dd:ee:ff" (or with "-" throughout, any case) to six bytes, or
 * undefined. Each part must be exactly two hex digits, as in NaCl MAC literals.
 */
export function parseMac(text: string): Uint8Array | undefined {
  if (!MAC_TEXT.test(text)) return undefined;
  const mac = new Uint8Array(MAC_LEN);
  for (let i = 0; i < MAC_LEN; i++) mac[i] = parseInt(text.slice(i * 3, i * 3 + 2), 16);
  return mac;
}

/** Lower-case, colon-separated: the form Linux and Wireshark print. */
export function formatMac(mac: Uint8Array, offset = 0): string {
  let text = '';
  for (let i = 0; i < MAC_LEN; i++) {
    if (i > 0) text += ':';
    text += (mac[offset + i] ?? 0).toString(16).padStart(2, '0');
  }
  return text;
}

// --- representation --------------------------------------------------------

export interface EthernetRepr {
  dst: Uint8Array;
  src: Uint8Array;
  etherType: number;
}

export const EthernetRepr = {
  /** Copies the addresses, so the result outlives the frame buffer. */
  parse(bytes: Uint8Array, offset: number, end = bytes.length): EthernetRepr | EthernetError {
    const error = checkEthernet(bytes, offset, end);
    if (error) return error;
    return {
      dst: bytes.slice(offset + DST, offset + DST + MAC_LEN),
      src: bytes.slice(offset + SRC, offset + SRC + MAC_LEN),
      etherType: ethEtherType(bytes, offset),
    };
  },

  bufferLen(_repr?: EthernetRepr): number {
    return ETHERNET_HEADER_LEN;
  },

  emit(repr: EthernetRepr, bytes: Uint8Array, offset: number): EmitError | undefined {
    if (bytesAvailable(bytes, offset, bytes.length) < ETHERNET_HEADER_LEN) return 'buffer-too-small';
    setEthDst(bytes, offset, repr.dst);
    setEthSrc(bytes, offset, repr.src);
    setEthEtherType(bytes, offset, repr.etherType);
    return undefined;
  },
};
