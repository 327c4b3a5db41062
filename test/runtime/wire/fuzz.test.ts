/**
 * Decoders meet hostile bytes every day: none may throw, and every length a
 * validator lets through must stay inside the buffer. Frames are walked the
 * way the stack will walk them, with offsets derived from decoded lengths.
 */

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as arp from '../../../runtime/wire/arp.ts';
import * as dhcp from '../../../runtime/wire/dhcp.ts';
import * as ethernet from '../../../runtime/wire/ethernet.ts';
import * as icmpv4 from '../../../runtime/wire/icmpv4.ts';
import * as ipv4 from '../../../runtime/wire/ipv4.ts';
import * as tcpOptions from '../../../runtime/wire/tcp-options.ts';
import * as tcp from '../../../runtime/wire/tcp.ts';
import * as udp from '../../../runtime/wire/udp.ts';
import * as vlan from '../../../runtime/wire/vlan.ts';
import {
  ARP_REPLY,
  ARP_REQUEST,
  DNS_QUERY,
  FRAG_NEEDED,
  HTTP_CAP_SYN,
  IGMP_ROUTER_ALERT,
  LINUX_SYN,
  LINUX_SYNACK,
  PING_REPLY,
  PING_REQUEST,
  PORT_UNREACHABLE,
  TIME_EXCEEDED,
  VLAN_ARP_REQUEST,
} from './frames.ts';

const FRAMES = [
  ARP_REPLY,
  ARP_REQUEST,
  DNS_QUERY,
  FRAG_NEEDED,
  HTTP_CAP_SYN,
  IGMP_ROUTER_ALERT,
  LINUX_SYN,
  LINUX_SYNACK,
  PING_REPLY,
  PING_REQUEST,
  PORT_UNREACHABLE,
  TIME_EXCEEDED,
  VLAN_ARP_REQUEST,
];

type Decoder = (bytes: Uint8Array, offset: number, end: number) => unknown;

/** Every entry point that reads packet bytes, with the signature the stack calls it with. */
const DECODERS: Record<string, Decoder> = {
  checkEthernet: ethernet.checkEthernet,
  'EthernetRepr.parse': ethernet.EthernetRepr.parse,
  checkVlan: vlan.checkVlan,
  'VlanRepr.parse': vlan.VlanRepr.parse,
  checkArp: arp.checkArp,
  'ArpRepr.parse': arp.ArpRepr.parse,
  checkIpv4: ipv4.checkIpv4,
  'Ipv4Repr.parse': ipv4.Ipv4Repr.parse,
  checkIcmpv4: icmpv4.checkIcmpv4,
  'Icmpv4Repr.parse': icmpv4.Icmpv4Repr.parse,
  icmpv4QuoteLen: icmpv4.icmpv4QuoteLen,
  icmpv4ChecksumIsValid: icmpv4.icmpv4ChecksumIsValid,
  checkUdp: udp.checkUdp,
  'UdpRepr.parse': (b, o, e) => udp.UdpRepr.parse(b, o, e, 0x0a00020f, 0x0a000203),
  udpChecksumIsValid: (b, o) => udp.udpChecksumIsValid(b, o, 1, 2),
  checkTcp: tcp.checkTcp,
  'TcpRepr.parse': (b, o, e) => tcp.TcpRepr.parse(b, o, e, 0x0a00020f, 0x5db8d822),
  tcpChecksumIsValid: (b, o, e) => tcp.tcpChecksumIsValid(b, o, e - o, 1, 2),
  parseTcpOptions: tcpOptions.parseTcpOptions,
  'DhcpRepr.parse': dhcp.DhcpRepr.parse,
};

/** Field getters, called on unchecked bytes: they may return nonsense but must not throw. */
const GETTERS: Array<(bytes: Uint8Array, offset: number) => unknown> = [
  ethernet.ethDst, ethernet.ethSrc, ethernet.ethEtherType, ethernet.ethIsBroadcast, ethernet.ethIsMulticast,
  vlan.vlanPcp, vlan.vlanDei, vlan.vlanVid, vlan.vlanEtherType,
  arp.arpHardwareType, arp.arpProtocolType, arp.arpHardwareLen, arp.arpProtocolLen, arp.arpOperation,
  arp.arpSenderMac, arp.arpSenderIp, arp.arpTargetMac, arp.arpTargetIp,
  ipv4.ipv4Version, ipv4.ipv4HeaderLen, ipv4.ipv4Dscp, ipv4.ipv4Ecn, ipv4.ipv4TotalLen, ipv4.ipv4Ident,
  ipv4.ipv4DontFrag, ipv4.ipv4MoreFrags, ipv4.ipv4FragOffset, ipv4.ipv4IsFragment, ipv4.ipv4Ttl,
  ipv4.ipv4Protocol, ipv4.ipv4Checksum, ipv4.ipv4Src, ipv4.ipv4Dst, ipv4.ipv4Options, ipv4.ipv4PayloadLen,
  ipv4.ipv4ChecksumIsValid,
  icmpv4.icmpv4Type, icmpv4.icmpv4Code, icmpv4.icmpv4Checksum, icmpv4.icmpv4EchoIdent, icmpv4.icmpv4EchoSeq,
  icmpv4.icmpv4NextHopMtu,
  udp.udpSrcPort, udp.udpDstPort, udp.udpLength, udp.udpChecksum, udp.udpPayload, udp.udpPayloadLen,
  (b, o) => udp.computeUdpChecksum(b, o, 1, 2),
  tcp.tcpSrcPort, tcp.tcpDstPort, tcp.tcpSeq, tcp.tcpAck, tcp.tcpHeaderLen, tcp.tcpReserved, tcp.tcpNs,
  tcp.tcpFlags, tcp.tcpWindow, tcp.tcpChecksum, tcp.tcpUrgent, tcp.tcpOptions,
];

/** Offsets and ends a confused caller might pass, not just sensible ones. */
const position = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: -4, max: 160 }) },
  { weight: 1, arbitrary: fc.constantFrom(Number.NaN, Infinity, -Infinity, 1.5, 2 ** 31, 2 ** 53, -0) },
);

/** A captured frame with some bytes overwritten and possibly cut short. */
const mutatedFrame = fc
  .tuple(
    fc.constantFrom(...FRAMES),
    fc.array(fc.tuple(fc.nat({ max: 120 }), fc.nat({ max: 255 })), { maxLength: 6 }),
    fc.option(fc.nat({ max: 120 }), { nil: undefined }),
  )
  .map(([frame, patches, cut]) => {
    const bytes = frame.slice(0, cut ?? frame.length);
    for (const [at, value] of patches) if (at < bytes.length) bytes[at] = value;
    return bytes;
  });

const anyFrame = fc.oneof(mutatedFrame, fc.uint8Array({ maxLength: 160 }));

describe('wire decoders on hostile input', () => {
  it('never throw on random bytes at any offset and end', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 160 }), position, position, (bytes, offset, end) => {
        for (const decode of Object.values(DECODERS)) decode(bytes, offset, end);
      }),
      { numRuns: 3000 },
    );
  });

  it('never throw on mutated captured frames at any offset and end', () => {
    fc.assert(
      fc.property(mutatedFrame, position, position, (bytes, offset, end) => {
        for (const decode of Object.values(DECODERS)) decode(bytes, offset, end);
      }),
      { numRuns: 3000 },
    );
  });

  it('getters never throw on unchecked bytes at any offset', () => {
    fc.assert(
      fc.property(anyFrame, position, (bytes, offset) => {
        for (const get of GETTERS) get(bytes, offset);
      }),
      { numRuns: 2000 },
    );
  });

  it('report only lengths inside the buffer while walking a frame layer by layer', () => {
    fc.assert(
      fc.property(anyFrame, fc.nat({ max: 200 }), (frame, endHint) => {
        walkFrame(frame, Math.min(endHint, frame.length + 20));
      }),
      { numRuns: 5000 },
    );
  });

  it('re-emit every representation they parse into bytes that parse back the same', () => {
    fc.assert(
      fc.property(mutatedFrame, (frame) => {
        walkFrame(frame, frame.length, true);
      }),
      { numRuns: 3000 },
    );
  });
});

/** Parses, re-emits into a fresh buffer, and parses again: a repr must survive the trip. */
function roundTrips<R extends object>(
  repr: R | string,
  bufferLen: (r: R) => number,
  emit: (r: R, bytes: Uint8Array) => unknown,
  parse: (bytes: Uint8Array) => R | string,
): void {
  if (typeof repr === 'string') return;
  const bytes = new Uint8Array(bufferLen(repr));
  expect(emit(repr, bytes)).toBeUndefined();
  expect(parse(bytes)).toEqual(repr);
}

function walkFrame(frame: Uint8Array, end: number, reEmit = false): void {
  const limit = Math.min(end, frame.length);
  if (ethernet.checkEthernet(frame, 0, end)) return;
  expect(ethernet.ETHERNET_HEADER_LEN).toBeLessThanOrEqual(limit);
  let offset = ethernet.ethPayloadOffset(0);
  let etherType = ethernet.ethEtherType(frame, 0);
  if (vlan.isVlanTpid(etherType)) {
    if (vlan.checkVlan(frame, offset, end)) return;
    expect(offset + vlan.VLAN_HEADER_LEN).toBeLessThanOrEqual(limit);
    etherType = vlan.vlanEtherType(frame, offset);
    offset = vlan.vlanPayloadOffset(offset);
  }
  if (etherType === ethernet.EtherType.Arp) {
    const repr = arp.ArpRepr.parse(frame, offset, end);
    if (typeof repr === 'string') return;
    expect(offset + arp.ARP_LEN).toBeLessThanOrEqual(limit);
    if (reEmit) roundTrips(repr, arp.ArpRepr.bufferLen, (r, b) => arp.ArpRepr.emit(r, b, 0), (b) => arp.ArpRepr.parse(b, 0));
    return;
  }
  if (etherType !== ethernet.EtherType.Ipv4) return;
  // Checksums are not verified so that mutated frames reach the upper layers.
  const ip = ipv4.Ipv4Repr.parse(frame, offset, end, false);
  if (typeof ip === 'string') return;
  const headerLen = ipv4.ipv4HeaderLen(frame, offset);
  const totalLen = ipv4.ipv4TotalLen(frame, offset);
  expect(headerLen).toBeGreaterThanOrEqual(ipv4.IPV4_MIN_HEADER_LEN);
  expect(headerLen).toBeLessThanOrEqual(totalLen);
  expect(offset + totalLen).toBeLessThanOrEqual(limit);
  expect(ip.options).toHaveLength(headerLen - ipv4.IPV4_MIN_HEADER_LEN);
  if (reEmit) {
    roundTrips(ip, (r) => ipv4.Ipv4Repr.bufferLen(r) + r.payloadLen, (r, b) => ipv4.Ipv4Repr.emit(r, b, 0), (b) => ipv4.Ipv4Repr.parse(b, 0));
  }
  const l4 = offset + headerLen;
  const l4End = offset + totalLen;
  switch (ipv4.ipv4Protocol(frame, offset)) {
    case ipv4.IpProtocol.Icmp: {
      const message = icmpv4.Icmpv4Repr.parse(frame, l4, l4End, false);
      if (typeof message === 'string') return;
      expect(l4 + icmpv4.Icmpv4Repr.bufferLen(message)).toBe(l4End);
      const quoted = icmpv4.icmpv4DataOffset(l4);
      expect(quoted + icmpv4.icmpv4QuoteLen(frame, quoted, l4End)).toBeLessThanOrEqual(l4End);
      if (reEmit) {
        roundTrips(message, icmpv4.Icmpv4Repr.bufferLen, (r, b) => icmpv4.Icmpv4Repr.emit(r, b, 0), (b) => icmpv4.Icmpv4Repr.parse(b, 0));
      }
      return;
    }
    case ipv4.IpProtocol.Udp: {
      if (udp.checkUdp(frame, l4, l4End)) return;
      expect(l4 + udp.udpLength(frame, l4)).toBeLessThanOrEqual(l4End);
      const datagram = udp.UdpRepr.parse(frame, l4, l4End, ip.src, ip.dst, false);
      if (typeof datagram === 'string') return;
      expect(datagram.payload).toHaveLength(udp.udpLength(frame, l4) - udp.UDP_HEADER_LEN);
      if (reEmit) {
        roundTrips(
          datagram,
          udp.UdpRepr.bufferLen,
          (r, b) => udp.UdpRepr.emit(r, b, 0, ip.src, ip.dst),
          (b) => udp.UdpRepr.parse(b, 0, b.length, ip.src, ip.dst),
        );
      }
      return;
    }
    case ipv4.IpProtocol.Tcp: {
      if (tcp.checkTcp(frame, l4, l4End)) return;
      const tcpHeaderLen = tcp.tcpHeaderLen(frame, l4);
      expect(l4 + tcpHeaderLen).toBeLessThanOrEqual(l4End);
      const options = tcpOptions.parseTcpOptions(frame, l4 + tcp.TCP_MIN_HEADER_LEN, l4 + tcpHeaderLen);
      if (typeof options !== 'string') expect((options.sackBlocks ?? []).length).toBeLessThanOrEqual(4);
      const segment = tcp.TcpRepr.parse(frame, l4, l4End, ip.src, ip.dst, false);
      if (typeof segment === 'string') return;
      expect(tcp.TcpRepr.bufferLen(segment)).toBe(l4End - l4);
      if (reEmit) {
        roundTrips(
          segment,
          tcp.TcpRepr.bufferLen,
          (r, b) => tcp.TcpRepr.emit(r, b, 0, ip.src, ip.dst),
          (b) => tcp.TcpRepr.parse(b, 0, b.length, ip.src, ip.dst),
        );
      }
      return;
    }
    default:
      return;
  }
}
