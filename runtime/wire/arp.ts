/**
 * ARP (RFC 826) for Ethernet and IPv4 only - the one combination an IPv4
 * appliance on Ethernet resolves. Other hardware or protocol types are
 * rejected, unlike upstream which never looked (runtime-semantics.md 6.4).
 */

import type { EmitError } from './error.ts';
import { EtherType, MAC_LEN, macEquals } from './ethernet.ts';
import { bytesAvailable, copyBytes, readU16, readU32, writeU16, writeU32 } from './field.ts';

const HTYPE = 0;
const PTYPE = 2;
const HLEN = 4;
const PLEN = 5;
const OPER = 6;
const SHA = 8;
const SPA = 14;
const THA = 18;
const TPA = 24;
/** The packet for Ethernet/IPv4; a frame carrying it is padded to 60 bytes, the padding is not ARP's. */
export const ARP_LEN = 28;

const HTYPE_ETHERNET = 1;
const IPV4_ADDR_LEN = 4;

export const ArpOperation = {
  Request: 1,
  Reply: 2,
} as const;

export type ArpError =
  | 'truncated'
  | 'bad-hardware-type'
  | 'bad-protocol-type'
  | 'bad-address-length'
  | 'bad-operation';

// --- view ------------------------------------------------------------------

export function checkArp(bytes: Uint8Array, offset: number, end = bytes.length): ArpError | undefined {
  if (bytesAvailable(bytes, offset, end) < ARP_LEN) return 'truncated';
  if (arpHardwareType(bytes, offset) !== HTYPE_ETHERNET) return 'bad-hardware-type';
  if (arpProtocolType(bytes, offset) !== EtherType.Ipv4) return 'bad-protocol-type';
  if (bytes[offset + HLEN] !== MAC_LEN || bytes[offset + PLEN] !== IPV4_ADDR_LEN) return 'bad-address-length';
  const operation = arpOperation(bytes, offset);
  if (operation !== ArpOperation.Request && operation !== ArpOperation.Reply) return 'bad-operation';
  return undefined;
}

export function arpHardwareType(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + HTYPE);
}

export function arpProtocolType(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + PTYPE);
}

export function arpHardwareLen(bytes: Uint8Array, offset: number): number {
  return bytes[offset + HLEN]!;
}

export function arpProtocolLen(bytes: Uint8Array, offset: number): number {
  return bytes[offset + PLEN]!;
}

export function arpOperation(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + OPER);
}

/** A view of the sender MAC (no copy). */
export function arpSenderMac(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + SHA, offset + SHA + MAC_LEN);
}

export function arpSenderIp(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + SPA);
}

/** A view of the target MAC (all zeros in a request). */
export function arpTargetMac(bytes: Uint8Array, offset: number): Uint8Array {
  return bytes.subarray(offset + THA, offset + THA + MAC_LEN);
}

export function arpTargetIp(bytes: Uint8Array, offset: number): number {
  return readU32(bytes, offset + TPA);
}

/** Allocation-free comparison for the ARP cache's "same MAC, just refresh" case. */
export function arpSenderMacIs(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): boolean {
  return macEquals(bytes, offset + SHA, mac, macOffset);
}

/** Writes the fixed Ethernet/IPv4 prologue: htype 1, ptype 0x0800, hlen 6, plen 4. */
export function setArpEthernetIpv4(bytes: Uint8Array, offset: number): void {
  writeU16(bytes, offset + HTYPE, HTYPE_ETHERNET);
  writeU16(bytes, offset + PTYPE, EtherType.Ipv4);
  bytes[offset + HLEN] = MAC_LEN;
  bytes[offset + PLEN] = IPV4_ADDR_LEN;
}

export function setArpHardwareType(bytes: Uint8Array, offset: number, value: number): void {
  writeU16(bytes, offset + HTYPE, value);
}

export function setArpProtocolType(bytes: Uint8Array, offset: number, value: number): void {
  writeU16(bytes, offset + PTYPE, value);
}

export function setArpHardwareLen(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset + HLEN] = value;
}

export function setArpProtocolLen(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset + PLEN] = value;
}

export function setArpOperation(bytes: Uint8Array, offset: number, operation: number): void {
  writeU16(bytes, offset + OPER, operation);
}

export function setArpSenderMac(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): void {
  copyBytes(mac, macOffset, bytes, offset + SHA, MAC_LEN);
}

export function setArpSenderIp(bytes: Uint8Array, offset: number, addr: number): void {
  writeU32(bytes, offset + SPA, addr);
}

export function setArpTargetMac(bytes: Uint8Array, offset: number, mac: Uint8Array, macOffset = 0): void {
  copyBytes(mac, macOffset, bytes, offset + THA, MAC_LEN);
}

export function setArpTargetIp(bytes: Uint8Array, offset: number, addr: number): void {
  writeU32(bytes, offset + TPA, addr);
}

// --- representation --------------------------------------------------------

export interface ArpRepr {
  operation: 'request' | 'reply';
  senderMac: Uint8Array;
  senderIp: number;
  /** Meaningless in a request: RFC 826 leaves it open, Linux sends zeros. */
  targetMac: Uint8Array;
  targetIp: number;
}

export const ArpRepr = {
  /** Copies the MACs, so the result outlives the frame buffer. */
  parse(bytes: Uint8Array, offset: number, end = bytes.length): ArpRepr | ArpError {
    const error = checkArp(bytes, offset, end);
    if (error) return error;
    return {
      operation: arpOperation(bytes, offset) === ArpOperation.Request ? 'request' : 'reply',
      senderMac: bytes.slice(offset + SHA, offset + SHA + MAC_LEN),
      senderIp: arpSenderIp(bytes, offset),
      targetMac: bytes.slice(offset + THA, offset + THA + MAC_LEN),
      targetIp: arpTargetIp(bytes, offset),
    };
  },

  bufferLen(_repr?: ArpRepr): number {
    return ARP_LEN;
  },

  emit(repr: ArpRepr, bytes: Uint8Array, offset: number): EmitError | undefined {
    if (bytesAvailable(bytes, offset, bytes.length) < ARP_LEN) return 'buffer-too-small';
    setArpEthernetIpv4(bytes, offset);
    setArpOperation(bytes, offset, repr.operation === 'request' ? ArpOperation.Request : ArpOperation.Reply);
    setArpSenderMac(bytes, offset, repr.senderMac);
    setArpSenderIp(bytes, offset, repr.senderIp);
    setArpTargetMac(bytes, offset, repr.targetMac);
    setArpTargetIp(bytes, offset, repr.targetIp);
    return undefined;
  },
};
