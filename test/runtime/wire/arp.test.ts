import { describe, expect, it } from 'vitest';
import {
  ARP_LEN,
  arpHardwareLen,
  arpHardwareType,
  ArpOperation,
  arpOperation,
  arpProtocolLen,
  arpProtocolType,
  ArpRepr,
  arpSenderIp,
  arpSenderMac,
  arpSenderMacIs,
  arpTargetIp,
  arpTargetMac,
  checkArp,
  setArpEthernetIpv4,
  setArpHardwareLen,
  setArpHardwareType,
  setArpOperation,
  setArpProtocolLen,
  setArpProtocolType,
  setArpSenderIp,
  setArpSenderMac,
  setArpTargetIp,
  setArpTargetMac,
} from '../../../runtime/wire/arp.ts';
import { formatMac, parseMac } from '../../../runtime/wire/ethernet.ts';
import { ARP_REPLY, ARP_REQUEST, ip } from './frames.ts';

const ARP = 14;
const GUEST = parseMac('52:54:00:12:34:56')!;
const GATEWAY = parseMac('52:55:0a:00:02:02')!;
const ZERO_MAC = new Uint8Array(6);

function withByte(frame: Uint8Array, at: number, value: number): Uint8Array {
  const copy = frame.slice();
  copy[at] = value;
  return copy;
}

describe('ARP for Ethernet and IPv4', () => {
  it('reads every field of a captured request', () => {
    expect(checkArp(ARP_REQUEST, ARP)).toBeUndefined();
    expect(arpHardwareType(ARP_REQUEST, ARP)).toBe(1);
    expect(arpProtocolType(ARP_REQUEST, ARP)).toBe(0x0800);
    expect(arpHardwareLen(ARP_REQUEST, ARP)).toBe(6);
    expect(arpProtocolLen(ARP_REQUEST, ARP)).toBe(4);
    expect(arpOperation(ARP_REQUEST, ARP)).toBe(ArpOperation.Request);
    expect(formatMac(arpSenderMac(ARP_REQUEST, ARP))).toBe('52:54:00:12:34:56');
    expect(arpSenderIp(ARP_REQUEST, ARP)).toBe(ip('10.0.2.15'));
    expect(arpTargetMac(ARP_REQUEST, ARP)).toEqual(ZERO_MAC);
    expect(arpTargetIp(ARP_REQUEST, ARP)).toBe(ip('10.0.2.2'));
  });

  it('compares the sender MAC without copying it', () => {
    expect(arpSenderMacIs(ARP_REPLY, ARP, GATEWAY)).toBe(true);
    expect(arpSenderMacIs(ARP_REPLY, ARP, GUEST)).toBe(false);
  });

  it('writes the captured request with its setters', () => {
    const bytes = new Uint8Array(ARP_LEN);
    setArpHardwareType(bytes, 0, 1);
    setArpProtocolType(bytes, 0, 0x0800);
    setArpHardwareLen(bytes, 0, 6);
    setArpProtocolLen(bytes, 0, 4);
    setArpOperation(bytes, 0, ArpOperation.Request);
    setArpSenderMac(bytes, 0, GUEST);
    setArpSenderIp(bytes, 0, ip('10.0.2.15'));
    setArpTargetMac(bytes, 0, ZERO_MAC);
    setArpTargetIp(bytes, 0, ip('10.0.2.2'));
    expect(bytes).toEqual(ARP_REQUEST.subarray(ARP));
  });

  it('writes the fixed Ethernet/IPv4 prologue in one call', () => {
    const bytes = new Uint8Array(6);
    setArpEthernetIpv4(bytes, 0);
    expect(bytes).toEqual(ARP_REQUEST.subarray(ARP, ARP + 6));
  });

  it('parses the captured request', () => {
    expect(ArpRepr.parse(ARP_REQUEST, ARP)).toEqual({
      operation: 'request',
      senderMac: GUEST,
      senderIp: ip('10.0.2.15'),
      targetMac: ZERO_MAC,
      targetIp: ip('10.0.2.2'),
    });
  });

  it('parses the captured reply and ignores the Ethernet padding after it', () => {
    expect(ARP_REPLY.length).toBe(60);
    expect(ArpRepr.parse(ARP_REPLY, ARP)).toEqual({
      operation: 'reply',
      senderMac: GATEWAY,
      senderIp: ip('10.0.2.2'),
      targetMac: GUEST,
      targetIp: ip('10.0.2.15'),
    });
  });

  it('emits the captured request byte for byte', () => {
    const bytes = new Uint8Array(ARP_LEN);
    const repr: ArpRepr = { operation: 'request', senderMac: GUEST, senderIp: ip('10.0.2.15'), targetMac: ZERO_MAC, targetIp: ip('10.0.2.2') };
    expect(ArpRepr.emit(repr, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(ARP_REQUEST.subarray(ARP));
  });

  it('emits the captured reply byte for byte', () => {
    const bytes = new Uint8Array(ARP_LEN);
    const repr: ArpRepr = { operation: 'reply', senderMac: GATEWAY, senderIp: ip('10.0.2.2'), targetMac: GUEST, targetIp: ip('10.0.2.15') };
    expect(ArpRepr.emit(repr, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(ARP_REPLY.subarray(ARP, ARP + ARP_LEN));
  });

  it('rejects a hardware type other than Ethernet', () => {
    expect(checkArp(withByte(ARP_REQUEST, ARP + 1, 6), ARP)).toBe('bad-hardware-type');
  });

  it('rejects a protocol type other than IPv4', () => {
    expect(checkArp(withByte(withByte(ARP_REQUEST, ARP + 2, 0x86), ARP + 3, 0xdd), ARP)).toBe('bad-protocol-type');
  });

  it('rejects address lengths other than 6 and 4', () => {
    expect(checkArp(withByte(ARP_REQUEST, ARP + 4, 8), ARP)).toBe('bad-address-length');
    expect(checkArp(withByte(ARP_REQUEST, ARP + 5, 16), ARP)).toBe('bad-address-length');
  });

  it('rejects operations other than request and reply, such as RARP', () => {
    expect(checkArp(withByte(ARP_REQUEST, ARP + 7, 3), ARP)).toBe('bad-operation');
    expect(ArpRepr.parse(withByte(ARP_REQUEST, ARP + 7, 0), ARP)).toBe('bad-operation');
  });

  it('reports a packet cut short as truncated', () => {
    expect(checkArp(ARP_REQUEST, ARP, ARP_REQUEST.length - 1)).toBe('truncated');
    expect(ArpRepr.parse(ARP_REQUEST.subarray(0, 41), ARP)).toBe('truncated');
  });

  it('refuses to emit into a buffer that is too small', () => {
    const repr: ArpRepr = { operation: 'reply', senderMac: GATEWAY, senderIp: 1, targetMac: GUEST, targetIp: 2 };
    expect(ArpRepr.emit(repr, new Uint8Array(ARP_LEN), 1)).toBe('buffer-too-small');
  });
});
