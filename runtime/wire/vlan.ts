/**
 * IEEE 802.1Q VLAN tags. The view starts right after the outer EtherType
 * 0x8100 (the TPID), at the Tag Control Information, and is followed by the
 * inner EtherType - the same layering Wireshark shows:
 *
 *   dst(6) src(6) TPID 0x8100 | TCI(2) inner EtherType(2) | payload
 *                             ^ view offset = Ethernet payload offset
 */

import type { EmitError } from './error.ts';
import { EtherType } from './ethernet.ts';
import { bytesAvailable, readU16, writeU16 } from './field.ts';

const TCI = 0;
const ETHERTYPE = 2;
export const VLAN_HEADER_LEN = 4;

const PCP_SHIFT = 13;
const DEI_BIT = 0x1000;
const VID_MASK = 0x0fff;

/**
 * 'stacked-tag': the inner EtherType is itself a VLAN TPID (Q-in-Q). Upstream
 * asserted on these; we report them so the caller drops and counts the frame
 * (runtime-semantics.md section 5 and 14).
 */
export type VlanError = 'truncated' | 'stacked-tag';

/**
 * TPIDs that introduce a tag: 802.1Q, 802.1ad (Q-in-Q) and the pre-standard
 * 0x9100. Only 802.1Q selects a VLAN; any of them inside one is a stacked tag.
 */
export function isVlanTpid(etherType: number): boolean {
  return etherType === EtherType.Vlan || etherType === EtherType.QinQ || etherType === 0x9100;
}

// --- view ------------------------------------------------------------------

export function checkVlan(bytes: Uint8Array, offset: number, end = bytes.length): VlanError | undefined {
  if (bytesAvailable(bytes, offset, end) < VLAN_HEADER_LEN) return 'truncated';
  if (isVlanTpid(vlanEtherType(bytes, offset))) return 'stacked-tag';
  return undefined;
}

/** Priority Code Point (802.1p), 0..7. */
export function vlanPcp(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + TCI) >>> PCP_SHIFT;
}

/** Drop Eligible Indicator (formerly CFI). */
export function vlanDei(bytes: Uint8Array, offset: number): boolean {
  return (readU16(bytes, offset + TCI) & DEI_BIT) !== 0;
}

/** VLAN identifier, 0..4095 (0 = priority tag only, 4095 reserved). */
export function vlanVid(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + TCI) & VID_MASK;
}

export function vlanEtherType(bytes: Uint8Array, offset: number): number {
  return readU16(bytes, offset + ETHERTYPE);
}

/** Writes the whole TCI with PCP = DEI = 0, as every tag we send carries (upstream does the same). */
export function setVlanVid(bytes: Uint8Array, offset: number, vid: number): void {
  writeU16(bytes, offset + TCI, vid & VID_MASK);
}

export function setVlanPcp(bytes: Uint8Array, offset: number, pcp: number): void {
  const tci = readU16(bytes, offset + TCI);
  writeU16(bytes, offset + TCI, (tci & ~(7 << PCP_SHIFT)) | ((pcp & 7) << PCP_SHIFT));
}

export function setVlanDei(bytes: Uint8Array, offset: number, dei: boolean): void {
  const tci = readU16(bytes, offset + TCI);
  writeU16(bytes, offset + TCI, dei ? tci | DEI_BIT : tci & ~DEI_BIT);
}

export function setVlanEtherType(bytes: Uint8Array, offset: number, etherType: number): void {
  writeU16(bytes, offset + ETHERTYPE, etherType);
}

export function vlanPayloadOffset(offset: number): number {
  return offset + VLAN_HEADER_LEN;
}

// --- representation --------------------------------------------------------

/** Priority and DEI are not represented: we never act on them and always send 0. */
export interface VlanRepr {
  vid: number;
  etherType: number;
}

export const VlanRepr = {
  parse(bytes: Uint8Array, offset: number, end = bytes.length): VlanRepr | VlanError {
    const error = checkVlan(bytes, offset, end);
    if (error) return error;
    return { vid: vlanVid(bytes, offset), etherType: vlanEtherType(bytes, offset) };
  },

  bufferLen(_repr?: VlanRepr): number {
    return VLAN_HEADER_LEN;
  },

  emit(repr: VlanRepr, bytes: Uint8Array, offset: number): EmitError | undefined {
    if (bytesAvailable(bytes, offset, bytes.length) < VLAN_HEADER_LEN) return 'buffer-too-small';
    setVlanVid(bytes, offset, repr.vid);
    setVlanEtherType(bytes, offset, repr.etherType);
    return undefined;
  },
};
