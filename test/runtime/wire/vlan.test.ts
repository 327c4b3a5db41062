import { describe, expect, it } from 'vitest';
import { checkArp } from '../../../runtime/wire/arp.ts';
import { EtherType } from '../../../runtime/wire/ethernet.ts';
import {
  checkVlan,
  isVlanTpid,
  setVlanDei,
  setVlanEtherType,
  setVlanPcp,
  setVlanVid,
  VLAN_HEADER_LEN,
  vlanDei,
  vlanEtherType,
  vlanPayloadOffset,
  vlanPcp,
  VlanRepr,
  vlanVid,
} from '../../../runtime/wire/vlan.ts';
import { ARP_REQUEST, hex, VLAN_ARP_REQUEST } from './frames.ts';

/** The tag sits at the Ethernet payload offset. */
const TAG = 14;

describe('802.1Q tag', () => {
  it('reads VID 10, priority 0 and the inner ARP EtherType of a captured tagged frame', () => {
    expect(checkVlan(VLAN_ARP_REQUEST, TAG)).toBeUndefined();
    expect(vlanVid(VLAN_ARP_REQUEST, TAG)).toBe(10);
    expect(vlanPcp(VLAN_ARP_REQUEST, TAG)).toBe(0);
    expect(vlanDei(VLAN_ARP_REQUEST, TAG)).toBe(false);
    expect(vlanEtherType(VLAN_ARP_REQUEST, TAG)).toBe(EtherType.Arp);
  });

  it('carries the untagged packet unchanged after the tag', () => {
    const inner = vlanPayloadOffset(TAG);
    expect(checkArp(VLAN_ARP_REQUEST, inner)).toBeUndefined();
    expect(VLAN_ARP_REQUEST.subarray(inner)).toEqual(ARP_REQUEST.subarray(14));
  });

  it('reads priority, drop eligibility and VID from their bits of the TCI', () => {
    const tag = hex('b064 0800'); // PCP 5, DEI 1, VID 100
    expect(vlanPcp(tag, 0)).toBe(5);
    expect(vlanDei(tag, 0)).toBe(true);
    expect(vlanVid(tag, 0)).toBe(100);
  });

  it('writes the captured tag with its setters', () => {
    const bytes = new Uint8Array(VLAN_HEADER_LEN);
    setVlanVid(bytes, 0, 10);
    setVlanEtherType(bytes, 0, EtherType.Arp);
    expect(bytes).toEqual(VLAN_ARP_REQUEST.subarray(TAG, TAG + VLAN_HEADER_LEN));
  });

  it('sets priority and drop eligibility without touching the VID', () => {
    const bytes = hex('0064 0800');
    setVlanPcp(bytes, 0, 5);
    setVlanDei(bytes, 0, true);
    expect(bytes).toEqual(hex('b064 0800'));
    setVlanDei(bytes, 0, false);
    expect(bytes).toEqual(hex('a064 0800'));
  });

  it('clears priority and DEI when it writes a VID, as every tag we send has them 0', () => {
    const bytes = hex('f064 0800');
    setVlanVid(bytes, 0, 100);
    expect(bytes).toEqual(hex('0064 0800'));
  });

  it('parses the captured tag into a representation', () => {
    expect(VlanRepr.parse(VLAN_ARP_REQUEST, TAG)).toEqual({ vid: 10, etherType: EtherType.Arp });
  });

  it('emits the captured tag byte for byte', () => {
    const bytes = new Uint8Array(VLAN_HEADER_LEN);
    expect(VlanRepr.emit({ vid: 10, etherType: EtherType.Arp }, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(VLAN_ARP_REQUEST.subarray(TAG, TAG + VLAN_HEADER_LEN));
  });

  it.each([
    ['an 802.1Q', '000a 8100 0014 0800'],
    ['an 802.1ad', '000a 88a8 0014 0800'],
    ['a pre-standard 0x9100', '000a 9100 0014 0800'],
  ])('reports %s tag inside the first one as stacked so the caller can drop it', (_name, bytes) => {
    expect(checkVlan(hex(bytes), 0)).toBe('stacked-tag');
    expect(VlanRepr.parse(hex(bytes), 0)).toBe('stacked-tag');
  });

  it('knows which EtherTypes introduce a tag', () => {
    expect([0x8100, 0x88a8, 0x9100, 0x0800, 0x0806].map(isVlanTpid)).toEqual([true, true, true, false, false]);
  });

  it('reports a tag cut short as truncated', () => {
    expect(checkVlan(VLAN_ARP_REQUEST, TAG, TAG + 3)).toBe('truncated');
    expect(checkVlan(VLAN_ARP_REQUEST.subarray(0, 17), TAG)).toBe('truncated');
  });
});
