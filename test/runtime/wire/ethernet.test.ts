import { describe, expect, it } from 'vitest';
import {
  broadcastMac,
  checkEthernet,
  ETHERNET_HEADER_LEN,
  EtherType,
  EthernetRepr,
  ethDst,
  ethDstIs,
  ethEtherType,
  ethIsBroadcast,
  ethIsMulticast,
  ethPayloadOffset,
  ethSrc,
  formatMac,
  isBroadcastMac,
  macEquals,
  parseMac,
  setEthDst,
  setEthEtherType,
  setEthSrc,
} from '../../../runtime/wire/ethernet.ts';
import { ARP_REQUEST, IGMP_ROUTER_ALERT, PING_REQUEST, VLAN_ARP_REQUEST } from './frames.ts';

const GUEST = parseMac('52:54:00:12:34:56')!;
const GATEWAY = parseMac('52:55:0a:00:02:02')!;

describe('Ethernet II header', () => {
  it('reads destination, source and EtherType of a captured ping', () => {
    expect(checkEthernet(PING_REQUEST, 0)).toBeUndefined();
    expect(formatMac(ethDst(PING_REQUEST, 0))).toBe('52:55:0a:00:02:02');
    expect(formatMac(ethSrc(PING_REQUEST, 0))).toBe('52:54:00:12:34:56');
    expect(ethEtherType(PING_REQUEST, 0)).toBe(EtherType.Ipv4);
    expect(ethPayloadOffset(0)).toBe(14);
  });

  it('writes the header of the captured ping with its setters', () => {
    const bytes = new Uint8Array(ETHERNET_HEADER_LEN);
    setEthDst(bytes, 0, GATEWAY);
    setEthSrc(bytes, 0, GUEST);
    setEthEtherType(bytes, 0, EtherType.Ipv4);
    expect(bytes).toEqual(PING_REQUEST.subarray(0, ETHERNET_HEADER_LEN));
  });

  it('parses the captured ping header into a representation', () => {
    expect(EthernetRepr.parse(PING_REQUEST, 0)).toEqual({ dst: GATEWAY, src: GUEST, etherType: 0x0800 });
  });

  it('emits the captured ARP request header byte for byte', () => {
    const bytes = new Uint8Array(ETHERNET_HEADER_LEN);
    expect(EthernetRepr.emit({ dst: broadcastMac(), src: GUEST, etherType: EtherType.Arp }, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(ARP_REQUEST.subarray(0, ETHERNET_HEADER_LEN));
  });

  it('reads the 802.1Q TPID as the EtherType of a tagged frame', () => {
    expect(ethEtherType(VLAN_ARP_REQUEST, 0)).toBe(EtherType.Vlan);
  });

  it('recognises a broadcast destination', () => {
    expect(ethIsBroadcast(ARP_REQUEST, 0)).toBe(true);
    expect(ethIsBroadcast(PING_REQUEST, 0)).toBe(false);
  });

  it('recognises a multicast destination by its group bit', () => {
    expect(ethIsMulticast(IGMP_ROUTER_ALERT, 0)).toBe(true);
    expect(ethIsBroadcast(IGMP_ROUTER_ALERT, 0)).toBe(false);
    expect(ethIsMulticast(PING_REQUEST, 0)).toBe(false);
  });

  it('compares the destination with a MAC without copying it', () => {
    expect(ethDstIs(PING_REQUEST, 0, GATEWAY)).toBe(true);
    expect(ethDstIs(PING_REQUEST, 0, GUEST)).toBe(false);
  });

  it('reports a frame shorter than the header as truncated', () => {
    expect(checkEthernet(PING_REQUEST.subarray(0, 13), 0)).toBe('truncated');
    expect(checkEthernet(PING_REQUEST, 0, 13)).toBe('truncated');
    expect(EthernetRepr.parse(PING_REQUEST, PING_REQUEST.length - 10)).toBe('truncated');
  });

  it('refuses to emit into a buffer that is too small and leaves it untouched', () => {
    const bytes = new Uint8Array(13);
    expect(EthernetRepr.emit({ dst: GATEWAY, src: GUEST, etherType: 0x0800 }, bytes, 0)).toBe('buffer-too-small');
    expect(bytes).toEqual(new Uint8Array(13));
  });
});

describe('MAC addresses', () => {
  it('parses a colon-separated MAC in either case', () => {
    expect(parseMac('C0:01:0A:00:00:2a')).toEqual(Uint8Array.from([0xc0, 0x01, 0x0a, 0x00, 0x00, 0x2a]));
  });

  it('parses a dash-separated MAC', () => {
    expect(parseMac('c0-01-0a-00-00-2a')).toEqual(parseMac('c0:01:0a:00:00:2a'));
  });

  it.each([
    '',
    'c0:01:0a:00:00',
    'c0:01:0a:00:00:2a:ff',
    'c0:1:0a:00:00:2a',
    'c0:01:0a:00:00:2g',
    'c0:01-0a:00:00:2a',
    ' c0:01:0a:00:00:2a',
    'c001.0a00.002a',
  ])('rejects %j', (text) => {
    expect(parseMac(text)).toBeUndefined();
  });

  it('formats lower-case with colons and round-trips', () => {
    expect(formatMac(parseMac('FF:0A:00:00:00:01')!)).toBe('ff:0a:00:00:00:01');
  });

  it('knows the broadcast address', () => {
    expect(isBroadcastMac(broadcastMac())).toBe(true);
    expect(isBroadcastMac(GUEST)).toBe(false);
    expect(macEquals(broadcastMac(), 0, parseMac('ff:ff:ff:ff:ff:ff')!)).toBe(true);
  });

  it('hands out a fresh broadcast address each time', () => {
    const mac = broadcastMac();
    mac[0] = 0;
    expect(isBroadcastMac(broadcastMac())).toBe(true);
  });
});
