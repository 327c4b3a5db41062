import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Conntrack, DEFAULT_CONNTRACK_TIMEOUTS, isIcmpError } from '../../runtime/conntrack.ts';
import { Nat } from '../../runtime/nat.ts';
import { CtInfo, newPacket, type Packet } from '../../runtime/packet.ts';
import { PortAllocator } from '../../runtime/port-allocator.ts';
import { computeUdpChecksum, setUdpSrcPort, udpChecksum } from '../../runtime/wire/udp.ts';
import { IpProtocol, ipv4Protocol } from '../../runtime/wire/ipv4.ts';
import {
  ACK,
  checksumsValid,
  clonePacket,
  icmpError,
  ip,
  ping,
  quotedHeaderChecksumValid,
  SYN,
  SYN_ACK,
  tcp,
  udp,
} from './build.ts';

const T0 = 5_000_000;
const C = '10.1.0.20'; // inside client
const E = '198.51.100.10'; // the appliance's public address
const S = '203.0.113.5'; // a server outside
const H2 = '10.1.0.80'; // a DNAT target inside
const R = '192.0.2.254'; // a router on the path
const C2 = '10.1.0.21'; // a second inside client

function packetSourcePort(pkt: Packet): number {
  return (pkt.bytes[pkt.l4]! << 8) | pkt.bytes[pkt.l4 + 1]!;
}

function setup(options: { limit?: number; random?: () => number; ports?: (addr: number) => PortAllocator } = {}) {
  const ct = new Conntrack({ timeouts: DEFAULT_CONNTRACK_TIMEOUTS, limit: options.limit ?? 0, reserve: 0, statefulTcp: false, hashSeed: 3 });
  const nat = new Nat(ct, { random: options.random ?? (() => 0), ...(options.ports ? { ports: options.ports } : {}) });
  return { ct, nat };
}

/** Tracks `pkt` (the stack does this at ingress) and confirms it (at egress). */
function through(ct: Conntrack, pkt: Packet, now = T0): number {
  const h = ct.track(pkt, now);
  ct.confirm(h, now);
  return h;
}

/**
 * Byte-exact against the packet built directly for the expected tuple, and
 * every checksum re-verified from scratch: IPv4 header, TCP / UDP / ICMP,
 * and for an ICMP error the quoted header too.
 */
function expectSameBytes(actual: Packet, expected: Packet): void {
  expect(Buffer.from(actual.bytes.subarray(actual.l3, actual.end)).toString('hex')).toBe(
    Buffer.from(expected.bytes.subarray(expected.l3, expected.end)).toString('hex'),
  );
  expect(checksumsValid(actual)).toBe(true);
  if (ipv4Protocol(actual.bytes, actual.l3) === IpProtocol.Icmp && isIcmpError(actual.bytes[actual.l4]!)) {
    expect(quotedHeaderChecksumValid(actual)).toBe(true);
  }
}

describe('explicit dnat', () => {
  it('rewrites destination address and port with correct checksums', () => {
    const { ct, nat } = setup();
    const pkt = tcp(S, 40000, E, 8080, { flags: SYN });
    const h = through(ct, pkt);
    expect(nat.dnat(pkt, h, ip(H2), 80)).toBe(true);
    expectSameBytes(pkt, tcp(S, 40000, H2, 80, { flags: SYN }));
    expect(checksumsValid(pkt)).toBe(true);
  });

  it('records the DNAT target as the source of the reply', () => {
    const { ct, nat } = setup();
    const pkt = tcp(S, 40000, E, 8080, { flags: SYN });
    const h = through(ct, pkt);
    nat.dnat(pkt, h, ip(H2), 80);
    const reply = tcp(H2, 80, S, 40000, { flags: SYN_ACK });
    expect(ct.track(reply, T0)).toBe(h);
    expect(reply.ctInfo).toBe(CtInfo.Reply);
  });

  it('translates later packets of the flow the same way without re-keying', () => {
    const { ct, nat } = setup();
    const h = through(ct, tcp(S, 40000, E, 8080, { flags: SYN }));
    nat.dnat(tcp(S, 40000, E, 8080, { flags: SYN }), h, ip(H2), 80);
    const later = tcp(S, 40000, E, 8080, { flags: ACK });
    expect(ct.track(later, T0)).toBe(h);
    expect(nat.dnat(later, h, ip(H2), 80)).toBe(true);
    expectSameBytes(later, tcp(S, 40000, H2, 80, { flags: ACK }));
    expect([ct.replySrc(h), ct.replySport(h)]).toEqual([ip(H2), 80]);
    expect(nat.counters.conflicts).toBe(0);
  });

  it('keeps the port when only an address is given', () => {
    const { ct, nat } = setup();
    const pkt = udp(S, 5000, E, 53);
    nat.dnat(pkt, through(ct, pkt), ip(H2), null);
    expectSameBytes(pkt, udp(S, 5000, H2, 53));
  });

  it('keeps the address when only a port is given', () => {
    const { ct, nat } = setup();
    const pkt = udp(S, 5000, E, 53);
    nat.dnat(pkt, through(ct, pkt), null, 5353);
    expectSameBytes(pkt, udp(S, 5000, E, 5353));
  });

  it('rewrites only the address of an ICMP packet and ignores a port', () => {
    const { ct, nat } = setup();
    const pkt = ping(S, E, 77);
    const h = through(ct, pkt);
    expect(nat.dnat(pkt, h, null, 99)).toBe(true);
    expectSameBytes(pkt, ping(S, E, 77));
    expect(nat.dnat(pkt, h, ip(H2), 99)).toBe(true);
    expectSameBytes(pkt, ping(S, H2, 77));
    expect(checksumsValid(pkt)).toBe(true);
  });

  it('leaves a reply-direction packet alone', () => {
    const { ct, nat } = setup();
    const h = through(ct, udp(C, 5000, S, 53));
    const reply = udp(S, 53, C, 5000);
    ct.track(reply, T0);
    expect(nat.dnat(reply, h, ip(H2), 80)).toBe(true);
    expectSameBytes(reply, udp(S, 53, C, 5000));
    expect(nat.counters.skipped_reply).toBe(1);
  });

  it('keeps a flow apart from another that holds its translated tuple by a new source port, as Linux does', () => {
    const { ct, nat } = setup();
    through(ct, udp(H2, 53, S, 5000)); // H2:53 -> S:5000 is already a key
    const pkt = udp(S, 5000, E, 53);
    const h = through(ct, pkt);
    expect(nat.dnat(pkt, h, ip(H2), null)).toBe(true);
    // The injected random source picks the first candidate, 1024.
    expectSameBytes(pkt, udp(S, 1024, H2, 53));
    expect(nat.counters.source_ports_remapped).toBe(1);
    expect(nat.counters.conflicts).toBe(0);
  });

  it('forwards two flows from one client socket to one server socket, and each reply reaches the client from the address it used', () => {
    const { ct, nat } = setup();
    const forward = (publicPort: number) => {
      const pkt = tcp(S, 40000, E, publicPort, { flags: SYN });
      const h = ct.track(pkt, T0);
      expect(nat.dnat(pkt, h, ip(H2), 80)).toBe(true);
      ct.confirm(h, T0);
      return { pkt, h };
    };
    const first = forward(8080);
    const second = forward(8081);
    expectSameBytes(first.pkt, tcp(S, 40000, H2, 80, { flags: SYN }));
    expectSameBytes(second.pkt, tcp(S, 1024, H2, 80, { flags: SYN }));
    const reply = (port: number) => {
      const pkt = tcp(H2, 80, S, port, { flags: SYN_ACK });
      const h = ct.track(pkt, T0);
      expect(nat.dnatTranslate(pkt, h)).toBe(true);
      expect(nat.snatTranslate(pkt, h)).toBe(true);
      return { pkt, h };
    };
    const r1 = reply(40000);
    const r2 = reply(1024);
    expect([r1.h, r2.h]).toEqual([first.h, second.h]);
    expectSameBytes(r1.pkt, tcp(E, 8080, S, 40000, { flags: SYN_ACK }));
    expectSameBytes(r2.pkt, tcp(E, 8081, S, 40000, { flags: SYN_ACK }));
  });

  it('remaps a privileged client port to another privileged one, as Linux does', () => {
    const { ct, nat } = setup({ random: () => 0.5 });
    through(ct, udp(H2, 53, S, 500)); // H2:53 -> S:500 is already a key
    const low = udp(S, 500, E, 53);
    expect(nat.dnat(low, through(ct, low), ip(H2), null)).toBe(true);
    const port = packetSourcePort(low);
    expect(port).toBeGreaterThanOrEqual(1);
    expect(port).toBeLessThan(512);
    expect(port).not.toBe(500);
    through(ct, udp(H2, 53, S, 800));
    const reserved = udp(S, 800, E, 53);
    nat.dnat(reserved, through(ct, reserved), ip(H2), null);
    expect(packetSourcePort(reserved)).toBeGreaterThanOrEqual(600);
    expect(packetSourcePort(reserved)).toBeLessThan(1024);
  });

  it('gives later packets of a remapped flow the same new source port', () => {
    const { ct, nat } = setup();
    through(ct, udp(H2, 53, S, 5000));
    const h = through(ct, udp(S, 5000, E, 53));
    nat.dnat(udp(S, 5000, E, 53), h, ip(H2), null);
    const later = udp(S, 5000, E, 53);
    expect(ct.track(later, T0)).toBe(h);
    expect(nat.dnat(later, h, ip(H2), null)).toBe(true);
    expectSameBytes(later, udp(S, 1024, H2, 53));
    expect(nat.counters.source_ports_remapped).toBe(1);
  });

  it('masquerades a remapped flow leaving a masquerading Iface, and brings its replies back', () => {
    const { ct, nat } = setup();
    const V = '10.1.0.1'; // the address inside clients reach the outside server by
    through(ct, udp(S, 53, C, 5000)); // S:53 -> C:5000 is already a key
    const pkt = udp(C, 5000, V, 53);
    const h = ct.track(pkt, T0);
    expect(nat.dnat(pkt, h, ip(S), null)).toBe(true);
    ct.confirm(h, T0);
    expect(nat.masquerade(pkt, h, ip(E))).toBe(true);
    expectSameBytes(pkt, udp(E, 49152, S, 53));
    const later = udp(C, 5000, V, 53);
    expect(ct.track(later, T0)).toBe(h);
    nat.dnat(later, h, ip(S), null);
    nat.masquerade(later, h, ip(E));
    expectSameBytes(later, udp(E, 49152, S, 53));
    const reply = udp(S, 53, E, 49152);
    expect(ct.track(reply, T0)).toBe(h);
    nat.demasquerade(reply, h);
    nat.snatTranslate(reply, h);
    expectSameBytes(reply, udp(V, 53, C, 5000));
  });

  it('drops a ping whose mapping would collide with another flow', () => {
    const { ct, nat } = setup();
    through(ct, ping(H2, S, 7)); // H2 -> S, identifier 7, is already a key
    const pkt = ping(S, E, 7, 'echo-request');
    const h = through(ct, pkt);
    expect(nat.dnat(pkt, h, ip(H2), null)).toBe(false);
    expectSameBytes(pkt, ping(S, E, 7));
    expect(nat.counters.conflicts).toBe(1);
  });

  it('drops a packet too short to rewrite and leaves its bytes and the entry alone', () => {
    const { ct, nat } = setup();
    const h = through(ct, tcp(S, 40000, E, 8080, { flags: SYN }));
    const short = tcp(S, 40000, E, 8080, { flags: SYN });
    short.ctInfo = CtInfo.Original;
    short.end = short.l4 + 12;
    const before = short.bytes.slice();
    expect(nat.dnat(short, h, ip(H2), 80)).toBe(false);
    expect(nat.counters.malformed).toBe(1);
    expect(short.bytes).toEqual(before);
    expect([ct.replySrc(h), ct.replySport(h)]).toEqual([ip(E), 8080]);
  });

  it('does nothing without a conntrack entry', () => {
    const { nat } = setup();
    const pkt = udp(S, 5000, E, 53);
    expect(nat.dnat(pkt, -1, ip(H2), 80)).toBe(true);
    expectSameBytes(pkt, udp(S, 5000, E, 53));
  });
});

describe('explicit snat', () => {
  it('rewrites source address and port with correct checksums', () => {
    const { ct, nat } = setup();
    const pkt = tcp(C, 40000, S, 443, { flags: SYN });
    expect(nat.snat(pkt, through(ct, pkt), ip(E), 61000)).toBe(true);
    expectSameBytes(pkt, tcp(E, 61000, S, 443, { flags: SYN }));
    expect(checksumsValid(pkt)).toBe(true);
  });

  it('leaves a UDP datagram sent without checksum without one', () => {
    const { ct, nat } = setup();
    const pkt = udp(C, 40000, S, 53, { noChecksum: true });
    nat.snat(pkt, through(ct, pkt), ip(E), 61000);
    expect(udpChecksum(pkt.bytes, pkt.l4)).toBe(0);
    expectSameBytes(pkt, udp(E, 61000, S, 53, { noChecksum: true }));
  });

  it('sends a UDP checksum that computes to zero as 0xFFFF', () => {
    const { ct, nat } = setup();
    const pkt = udp(C, 40000, S, 53);
    const probe = pkt.bytes.slice();
    let port = 1;
    for (; port <= 0xffff; port++) {
      setUdpSrcPort(probe, pkt.l4, port);
      if (computeUdpChecksum(probe, pkt.l4, ip(C), ip(S)) === 0) break;
    }
    expect(port).toBeLessThanOrEqual(0xffff);
    nat.snat(pkt, through(ct, pkt), null, port);
    expect(udpChecksum(pkt.bytes, pkt.l4)).toBe(0xffff);
    expect(checksumsValid(pkt)).toBe(true);
  });

  /** Two inside hosts' flows from the same port to one server, each given source E by snat(E). */
  function snatBoth(build: (host: string) => Packet): { first: Packet; second: Packet; h: number; nat: Nat; ct: Conntrack } {
    const { ct, nat } = setup();
    const first = build(C);
    expect(nat.snat(first, through(ct, first), ip(E), null)).toBe(true);
    const second = build(C2);
    const h = through(ct, second);
    expect(nat.snat(second, h, ip(E), null)).toBe(true);
    return { first, second, h, nat, ct };
  }

  it('gives a flow whose translated tuple another flow holds a port of the address, and its replies back, as Linux remaps', () => {
    const { first, second, h, nat, ct } = snatBoth((host) => udp(host, 5000, S, 53));
    expectSameBytes(first, udp(E, 5000, S, 53));
    // The injected random source starts the address's port table at 49152.
    expectSameBytes(second, udp(E, 49152, S, 53));
    const later = udp(C2, 5000, S, 53);
    expect(ct.track(later, T0)).toBe(h);
    nat.snat(later, h, ip(E), null);
    expectSameBytes(later, udp(E, 49152, S, 53));
    const reply = udp(S, 53, E, 49152);
    expect(ct.track(reply, T0)).toBe(h);
    expect(nat.dnatTranslate(reply, h)).toBe(true);
    expectSameBytes(reply, udp(S, 53, C2, 5000));
    expect(nat.counters.conflicts).toBe(0);
  });

  it('gives a ping whose translated tuple another flow holds a fresh identifier, and its reply its own back', () => {
    const { first, second, h, nat, ct } = snatBoth((host) => ping(host, S, 9));
    expectSameBytes(first, ping(E, S, 9));
    expectSameBytes(second, ping(E, S, 49152));
    const reply = ping(S, E, 49152, 'echo-reply');
    expect(ct.track(reply, T0)).toBe(h);
    nat.dnatTranslate(reply, h);
    expectSameBytes(reply, ping(S, C2, 9, 'echo-reply'));
  });

  it('frees the remapped port when the flow ends', () => {
    const { nat, ct, h } = snatBoth((host) => udp(host, 5000, S, 53));
    ct.remove(h);
    expect(nat.counters.ports_released).toBe(1);
  });

  it('drops a flow whose snat(address, port) tuple another flow holds: there is no other port to give', () => {
    const { ct, nat } = setup();
    const first = udp(C, 5000, S, 53);
    nat.snat(first, through(ct, first), ip(E), 7000);
    const second = udp(C2, 5001, S, 53);
    expect(nat.snat(second, through(ct, second), ip(E), 7000)).toBe(false);
    expectSameBytes(second, udp(C2, 5001, S, 53));
    expect(nat.counters.conflicts).toBe(1);
  });
});

describe('reverse translation', () => {
  it('gives a reply to an SNATed flow its original destination back in prerouting', () => {
    const { ct, nat } = setup();
    const pkt = udp(C, 40000, S, 53);
    const h = through(ct, pkt);
    nat.snat(pkt, h, ip(E), 61000);
    const reply = udp(S, 53, E, 61000);
    expect(ct.track(reply, T0)).toBe(h);
    expect(nat.dnatTranslate(reply, h)).toBe(true);
    expectSameBytes(reply, udp(S, 53, C, 40000));
    expect(nat.counters.dnat_translated).toBe(1);
  });

  it('gives a reply from a DNAT target the original destination as source in postrouting', () => {
    const { ct, nat } = setup();
    const pkt = tcp(S, 40000, E, 8080, { flags: SYN });
    const h = through(ct, pkt);
    nat.dnat(pkt, h, ip(H2), 80);
    const reply = tcp(H2, 80, S, 40000, { flags: SYN_ACK });
    ct.track(reply, T0);
    expect(nat.snatTranslate(reply, h)).toBe(true);
    expectSameBytes(reply, tcp(E, 8080, S, 40000, { flags: SYN_ACK }));
    expect(checksumsValid(reply)).toBe(true);
  });

  it('runs the SNAT-and-DNAT worked example of the upstream gateway test both ways', () => {
    // C:p -> E:1337, dnat(H2) on eth0 prerouting, snat(eth1 address) on eth1 postrouting.
    const { ct, nat } = setup();
    const eth1 = '10.1.0.1';
    const pkt = tcp(C, 33000, E, 1337, { flags: SYN });
    const h = ct.track(pkt, T0);
    nat.dnat(pkt, h, ip(H2), null);
    ct.confirm(h, T0);
    nat.snat(pkt, h, ip(eth1), null);
    expectSameBytes(pkt, tcp(eth1, 33000, H2, 1337, { flags: SYN }));
    const reply = tcp(H2, 1337, eth1, 33000, { flags: SYN_ACK });
    ct.track(reply, T0);
    nat.dnatTranslate(reply, h);
    nat.snatTranslate(reply, h);
    expectSameBytes(reply, tcp(E, 1337, C, 33000, { flags: SYN_ACK }));
  });

  it('leaves packets of untranslated flows alone', () => {
    const { ct, nat } = setup();
    const h = through(ct, udp(C, 40000, S, 53));
    const reply = udp(S, 53, C, 40000);
    ct.track(reply, T0);
    expect(nat.dnatTranslate(reply, h) && nat.snatTranslate(reply, h)).toBe(true);
    expectSameBytes(reply, udp(S, 53, C, 40000));
  });

  it('translates only the address of an ICMP echo reply and keeps its identifier', () => {
    const { ct, nat } = setup();
    const pkt = ping(C, S, 4242);
    const h = through(ct, pkt);
    nat.snat(pkt, h, ip(E), null);
    const reply = ping(S, E, 4242, 'echo-reply');
    expect(ct.track(reply, T0)).toBe(h);
    nat.dnatTranslate(reply, h);
    expectSameBytes(reply, ping(S, C, 4242, 'echo-reply'));
  });
});

describe('masquerade', () => {
  it('rewrites an outgoing flow to the interface address and a port from 49152 up', () => {
    const { ct, nat } = setup();
    const pkt = tcp(C, 40000, S, 443, { flags: SYN });
    expect(nat.masquerade(pkt, through(ct, pkt), ip(E))).toBe(true);
    expectSameBytes(pkt, tcp(E, 49152, S, 443, { flags: SYN }));
    expect(checksumsValid(pkt)).toBe(true);
  });

  it('keeps the port for later packets and gives the next flow the next port', () => {
    const { ct, nat } = setup();
    const first = tcp(C, 40000, S, 443, { flags: SYN });
    const h = through(ct, first);
    nat.masquerade(first, h, ip(E));
    const later = tcp(C, 40000, S, 443, { flags: ACK });
    ct.track(later, T0);
    nat.masquerade(later, h, ip(E));
    expectSameBytes(later, tcp(E, 49152, S, 443, { flags: ACK }));
    const other = udp(C, 40001, S, 53);
    nat.masquerade(other, through(ct, other), ip(E));
    expectSameBytes(other, udp(E, 49153, S, 53));
  });

  it('starts at the port the injected random source picks', () => {
    const { ct, nat } = setup({ random: () => 0.5 });
    const pkt = udp(C, 40000, S, 53);
    nat.masquerade(pkt, through(ct, pkt), ip(E));
    expectSameBytes(pkt, udp(E, 57344, S, 53));
  });

  it('sends replies back to the inside host on demasquerade', () => {
    const { ct, nat } = setup();
    const pkt = tcp(C, 40000, S, 443, { flags: SYN });
    const h = through(ct, pkt);
    nat.masquerade(pkt, h, ip(E));
    const reply = tcp(S, 443, E, 49152, { flags: SYN_ACK });
    expect(ct.track(reply, T0)).toBe(h);
    expect(nat.demasquerade(reply, h)).toBe(true);
    expectSameBytes(reply, tcp(S, 443, C, 40000, { flags: SYN_ACK }));
    expect(checksumsValid(reply)).toBe(true);
  });

  it('does not masquerade the replies of an inbound flow', () => {
    const { ct, nat } = setup();
    const h = through(ct, tcp(S, 40000, H2, 80, { flags: SYN }));
    const reply = tcp(H2, 80, S, 40000, { flags: SYN_ACK });
    ct.track(reply, T0);
    expect(nat.masquerade(reply, h, ip(E))).toBe(true);
    expectSameBytes(reply, tcp(H2, 80, S, 40000, { flags: SYN_ACK }));
    expect(nat.portsFor(ip(E)).inUse).toBe(0);
  });

  it('does not remap the port of a packet that already has the interface address', () => {
    const { ct, nat } = setup();
    const pkt = udp(E, 514, S, 514);
    nat.masquerade(pkt, through(ct, pkt), ip(E));
    expectSameBytes(pkt, udp(E, 514, S, 514));
  });

  it('drops and counts a new flow when the ports run out, without throwing', () => {
    const table = new PortAllocator(() => 0, 50000, 50001);
    const { ct, nat } = setup({ ports: () => table });
    for (const port of [1, 2]) {
      const pkt = udp(C, port, S, 53);
      expect(nat.masquerade(pkt, through(ct, pkt), ip(E))).toBe(true);
    }
    const third = udp(C, 3, S, 53);
    expect(nat.masquerade(third, through(ct, third), ip(E))).toBe(false);
    expect(nat.counters.ports_exhausted).toBe(1);
    expectSameBytes(third, udp(C, 3, S, 53));
  });

  it('shares a port among flows to different remote sockets once every port is taken, and frees it with the last', () => {
    const table = new PortAllocator(() => 0, 50000, 50001);
    const { ct, nat } = setup({ ports: () => table });
    // Four flows on two ports: to four servers, each reply tuple is still unique.
    const servers = ['203.0.113.5', '203.0.113.6', '203.0.113.7', '203.0.113.8'];
    const handles = servers.map((server, i) => {
      const pkt = udp(C, 1000 + i, server, 53);
      const h = through(ct, pkt);
      expect(nat.masquerade(pkt, h, ip(E))).toBe(true);
      return { h, server, port: packetSourcePort(pkt) };
    });
    expect(handles.every((x) => x.port === 50000 || x.port === 50001)).toBe(true);
    expect(nat.counters.ports_exhausted).toBe(0);
    // Every reply still finds its own flow and inside port.
    for (const [i, { h, server, port }] of handles.entries()) {
      const reply = udp(server, 53, E, port);
      expect(ct.track(reply, T0)).toBe(h);
      nat.demasquerade(reply, h);
      expectSameBytes(reply, udp(server, 53, C, 1000 + i));
    }
    ct.sweep(T0 + 60_000);
    expect(table.inUse).toBe(0);
  });

  it('releases the port when the connection expires', () => {
    const { ct, nat } = setup();
    const pkt = udp(C, 40000, S, 53);
    nat.masquerade(pkt, through(ct, pkt), ip(E));
    expect(nat.portsFor(ip(E)).isBound(49152)).toBe(true);
    ct.sweep(T0 + 60_000);
    expect(nat.portsFor(ip(E)).isBound(49152)).toBe(false);
    expect(nat.counters.ports_released).toBe(1);
  });

  it('releases the port when the connection is evicted for a new one', () => {
    const { ct, nat } = setup({ limit: 1 });
    const pkt = udp(C, 40000, S, 53);
    nat.masquerade(pkt, through(ct, pkt), ip(E));
    ct.track(udp(C, 40001, S, 53), T0);
    expect(ct.counters.evicted).toBe(1);
    expect(nat.portsFor(ip(E)).inUse).toBe(0);
  });

  it('skips a port whose reply tuple another flow already uses, and counts no conflict: nothing was dropped', () => {
    const { ct, nat } = setup();
    through(ct, tcp(S, 443, E, 49152, { flags: SYN })); // inbound S:443 -> E:49152
    const pkt = tcp(C, 40000, S, 443, { flags: SYN });
    expect(nat.masquerade(pkt, through(ct, pkt), ip(E))).toBe(true);
    expectSameBytes(pkt, tcp(E, 49153, S, 443, { flags: SYN }));
    expect(nat.portsFor(ip(E)).isBound(49152)).toBe(false);
    expect(nat.counters.conflicts).toBe(0);
  });

  it('rewrites only the address of a ping and keeps its identifier', () => {
    const { ct, nat } = setup();
    const pkt = ping(C, S, 9);
    const h = through(ct, pkt);
    nat.masquerade(pkt, h, ip(E));
    expectSameBytes(pkt, ping(E, S, 9));
    const reply = ping(S, E, 9, 'echo-reply');
    expect(ct.track(reply, T0)).toBe(h);
    nat.demasquerade(reply, h);
    expectSameBytes(reply, ping(S, C, 9, 'echo-reply'));
  });

  it('gives the ping of a second inside host with the same identifier to the same target a fresh identifier, and its replies back', () => {
    const { ct, nat } = setup();
    const first = ping(C, S, 9);
    const h1 = through(ct, first);
    nat.masquerade(first, h1, ip(E));
    const second = ping(C2, S, 9);
    const h2 = through(ct, second);
    expect(nat.masquerade(second, h2, ip(E))).toBe(true);
    expectSameBytes(second, ping(E, S, 49152));
    // Each reply reaches its own host, with the identifier it sent.
    const reply2 = ping(S, E, 49152, 'echo-reply');
    expect(ct.track(reply2, T0)).toBe(h2);
    nat.demasquerade(reply2, h2);
    expectSameBytes(reply2, ping(S, C2, 9, 'echo-reply'));
    const reply1 = ping(S, E, 9, 'echo-reply');
    expect(ct.track(reply1, T0)).toBe(h1);
    nat.demasquerade(reply1, h1);
    expectSameBytes(reply1, ping(S, C, 9, 'echo-reply'));
    // The next ping of the second host is renumbered the same way.
    const again = ping(C2, S, 9);
    expect(ct.track(again, T0)).toBe(h2);
    nat.masquerade(again, h2, ip(E));
    expectSameBytes(again, ping(E, S, 49152));
    expect(nat.counters.conflicts).toBe(0);
  });

  it('gives the fresh identifier back when the renumbered ping flow ends', () => {
    const { ct, nat } = setup();
    const first = ping(C, S, 9);
    nat.masquerade(first, through(ct, first), ip(E));
    const second = ping(C2, S, 9);
    nat.masquerade(second, through(ct, second), ip(E));
    expect(nat.portsFor(ip(E)).isBound(49152)).toBe(true);
    ct.sweep(T0 + 60_000);
    expect(nat.portsFor(ip(E)).isBound(49152)).toBe(false);
  });
});

describe('ICMP errors of translated flows', () => {
  it('brings a port unreachable for a masqueraded datagram back to the inside host', () => {
    const { ct, nat } = setup();
    const original = udp(C, 40000, S, 53);
    const sent = clonePacket(original);
    const h = through(ct, sent);
    nat.masquerade(sent, h, ip(E));
    const error = icmpError(S, E, sent);
    expect(ct.track(error, T0)).toBe(h);
    expect(nat.demasquerade(error, h)).toBe(true);
    expectSameBytes(error, icmpError(S, C, original));
    expect(checksumsValid(error) && quotedHeaderChecksumValid(error)).toBe(true);
    expect(nat.counters.related_translated).toBe(1);
  });

  it('restores both sides of a time exceeded for a DNATed and SNATed flow', () => {
    const { ct, nat } = setup();
    const eth1 = '10.1.0.1';
    const original = tcp(C, 33000, E, 1337, { flags: SYN });
    const sent = clonePacket(original);
    const h = ct.track(sent, T0);
    nat.dnat(sent, h, ip(H2), null);
    ct.confirm(h, T0);
    nat.snat(sent, h, ip(eth1), null);
    const error = icmpError(R, eth1, sent, 'time-exceeded', 0, 20);
    expect(ct.track(error, T0)).toBe(h);
    nat.dnatTranslate(error, h);
    nat.snatTranslate(error, h);
    expectSameBytes(error, icmpError(R, C, original, 'time-exceeded', 0, 20));
    expect(checksumsValid(error) && quotedHeaderChecksumValid(error)).toBe(true);
  });

  it('also rewrites the outer source of an error sent by the DNAT target itself', () => {
    const { ct, nat } = setup();
    const original = udp(S, 5000, E, 53);
    const sent = clonePacket(original);
    const h = through(ct, sent);
    nat.dnat(sent, h, ip(H2), null);
    const error = icmpError(H2, S, sent);
    ct.track(error, T0);
    nat.snatTranslate(error, h);
    expectSameBytes(error, icmpError(E, S, original));
  });

  it('masquerades an error an inside host sends about a reply', () => {
    const { ct, nat } = setup();
    const out = udp(C, 40000, S, 53);
    const h = through(ct, out);
    nat.masquerade(out, h, ip(E));
    const reply = udp(S, 53, E, 49152);
    ct.track(reply, T0);
    nat.demasquerade(reply, h);
    const error = icmpError(C, S, reply);
    expect(ct.track(error, T0)).toBe(h);
    expect(error.ctInfo).toBe(CtInfo.Original | CtInfo.Related);
    expect(nat.masquerade(error, h, ip(E))).toBe(true);
    expectSameBytes(error, icmpError(E, S, udp(S, 53, E, 49152)));
  });

  it('applies the DNAT of a flow to an error about its reply coming from outside', () => {
    const { ct, nat } = setup();
    const h = through(ct, udp(S, 5000, E, 53));
    nat.dnat(udp(S, 5000, E, 53), h, ip(H2), null);
    const reply = udp(H2, 53, S, 5000);
    ct.track(reply, T0);
    nat.snatTranslate(reply, h);
    const error = icmpError(S, E, reply);
    expect(ct.track(error, T0)).toBe(h);
    nat.dnatTranslate(error, h);
    expectSameBytes(error, icmpError(S, H2, udp(H2, 53, S, 5000)));
  });

  it('brings an error about a renumbered ping back to the inside host with its own identifier', () => {
    const { ct, nat } = setup();
    const first = ping(C, S, 31);
    nat.masquerade(first, through(ct, first), ip(E));
    const original = ping(C2, S, 31);
    const sent = clonePacket(original);
    const h = through(ct, sent);
    nat.masquerade(sent, h, ip(E));
    expectSameBytes(sent, ping(E, S, 49152));
    const error = icmpError(R, E, sent, 'time-exceeded', 0);
    expect(ct.track(error, T0)).toBe(h);
    nat.demasquerade(error, h);
    expectSameBytes(error, icmpError(R, C2, original, 'time-exceeded', 0));
  });

  it('gives a renumbered ping that was also DNATed its reply from the address it pinged', () => {
    const { ct, nat } = setup();
    // Inside hosts ping V; prerouting DNATs V to S; the outside Iface masquerades.
    const V = '10.1.0.1';
    const send = (host: string) => {
      const pkt = ping(host, V, 9);
      const h = ct.track(pkt, T0);
      nat.dnat(pkt, h, ip(S), null);
      ct.confirm(h, T0);
      expect(nat.masquerade(pkt, h, ip(E))).toBe(true);
      nat.snatTranslate(pkt, h);
      return { pkt, h };
    };
    send(C);
    const { pkt, h } = send(C2);
    expectSameBytes(pkt, ping(E, S, 49152));
    const reply = ping(S, E, 49152, 'echo-reply');
    expect(ct.track(reply, T0)).toBe(h);
    nat.demasquerade(reply, h);
    nat.dnatTranslate(reply, h);
    nat.snatTranslate(reply, h);
    expectSameBytes(reply, ping(V, C2, 9, 'echo-reply'));
  });

  it('masquerades an error an inside host sends about the echo reply of its renumbered ping', () => {
    const { ct, nat } = setup();
    const first = ping(C, S, 9);
    nat.masquerade(first, through(ct, first), ip(E));
    const request = ping(C2, S, 9);
    const h = through(ct, request);
    nat.masquerade(request, h, ip(E));
    const reply = ping(S, E, 49152, 'echo-reply');
    ct.track(reply, T0);
    nat.demasquerade(reply, h);
    const error = icmpError(C2, S, reply);
    expect(ct.track(error, T0)).toBe(h);
    nat.dnatTranslate(error, h);
    nat.masquerade(error, h, ip(E));
    nat.snatTranslate(error, h);
    // S sees an error from the public address about the reply it sent, not the inside address.
    expectSameBytes(error, icmpError(E, S, ping(S, E, 49152, 'echo-reply')));
  });

  it('translates an error about a ping by address and keeps the identifier', () => {
    const { ct, nat } = setup();
    const original = ping(C, S, 31);
    const sent = clonePacket(original);
    const h = through(ct, sent);
    nat.masquerade(sent, h, ip(E));
    const error = icmpError(R, E, sent, 'time-exceeded', 0);
    ct.track(error, T0);
    nat.demasquerade(error, h);
    expectSameBytes(error, icmpError(R, C, original, 'time-exceeded', 0));
  });
});

describe('NAT properties', () => {
  const addr = fc.integer({ min: 0x0a000001, max: 0xdfffffff }).map((n) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`);
  const port = fc.integer({ min: 1, max: 0xffff });
  const proto = fc.constantFrom('tcp', 'udp', 'udp-no-checksum', 'icmp');
  const make = (kind: string, src: string, sport: number, dst: string, dport: number, reply = false): Packet => {
    if (kind === 'tcp') return tcp(src, sport, dst, dport, { flags: reply ? SYN_ACK : SYN });
    if (kind === 'icmp') return ping(src, dst, sport, reply ? 'echo-reply' : 'echo-request');
    return udp(src, sport, dst, dport, { noChecksum: kind === 'udp-no-checksum' });
  };

  it('translates forward to the packet built for the new tuple and restores the reply exactly', () => {
    fc.assert(
      fc.property(
        proto,
        fc.tuple(addr, port, addr, port),
        fc.option(fc.tuple(fc.option(addr), fc.option(port))),
        fc.option(fc.tuple(fc.option(addr), fc.option(port))),
        (kind, [src, sport, dst, dport0], dnatTo, snatTo) => {
          const icmp = kind === 'icmp';
          const dport = icmp ? sport : dport0;
          fc.pre(src !== dst || sport !== dport);
          const { ct, nat } = setup();
          const pkt = make(kind, src, sport, dst, dport);
          const h = ct.track(pkt, T0);
          if (dnatTo) expect(nat.dnat(pkt, h, dnatTo[0] === null ? null : ip(dnatTo[0]), dnatTo[1])).toBe(true);
          ct.confirm(h, T0);
          if (snatTo) expect(nat.snat(pkt, h, snatTo[0] === null ? null : ip(snatTo[0]), snatTo[1])).toBe(true);
          const newDst = dnatTo?.[0] ?? dst;
          const newDport = icmp ? dport : (dnatTo?.[1] ?? dport);
          const newSrc = snatTo?.[0] ?? src;
          const newSport = icmp ? sport : (snatTo?.[1] ?? sport);
          fc.pre(newSrc !== newDst || newSport !== newDport);
          expectSameBytes(pkt, make(kind, newSrc, newSport, newDst, newDport));
          expect(checksumsValid(pkt)).toBe(true);
          const reply = make(kind, newDst, newDport, newSrc, newSport, true);
          expect(ct.track(reply, T0)).toBe(h);
          expect(nat.dnatTranslate(reply, h)).toBe(true);
          expect(nat.snatTranslate(reply, h)).toBe(true);
          expectSameBytes(reply, make(kind, dst, dport, src, sport, true));
          expect(checksumsValid(reply)).toBe(true);
        },
      ),
      { numRuns: 400 },
    );
  });

  it('masquerades forward and demasquerades the reply back exactly', () => {
    fc.assert(
      fc.property(proto, fc.tuple(addr, port, addr, port), addr, fc.double({ min: 0, max: 0.999, noNaN: true }), (kind, [src, sport, dst, dport0], iface, r) => {
        const icmp = kind === 'icmp';
        const dport = icmp ? sport : dport0;
        fc.pre(src !== dst && src !== iface && dst !== iface);
        const { ct, nat } = setup({ random: () => r });
        const pkt = make(kind, src, sport, dst, dport);
        const h = through(ct, pkt);
        expect(nat.masquerade(pkt, h, ip(iface))).toBe(true);
        const mport = icmp ? sport : ct.replyDport(h);
        expectSameBytes(pkt, make(kind, iface, mport, dst, dport));
        const reply = make(kind, dst, dport, iface, mport, true);
        expect(ct.track(reply, T0)).toBe(h);
        nat.demasquerade(reply, h);
        expectSameBytes(reply, make(kind, dst, dport, src, sport, true));
      }),
      { numRuns: 300 },
    );
  });

  it('never throws on random bytes in any step', () => {
    const { ct, nat } = setup({ limit: 32 });
    const h = through(ct, udp(C, 1, S, 2));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 90 }), fc.nat(60), fc.nat(100), fc.integer({ min: -1, max: 3 }), fc.integer({ min: -2, max: 3 }), (bytes, l4, end, handle, info) => {
        const pkt = newPacket();
        pkt.bytes = bytes;
        pkt.l3 = 0;
        pkt.l4 = l4;
        pkt.end = end;
        pkt.ctInfo = info;
        const target = handle === 0 ? h : handle;
        for (const step of [
          () => nat.dnat(pkt, target, ip(H2), 80),
          () => nat.snat(pkt, target, ip(E), null),
          () => nat.dnatTranslate(pkt, target),
          () => nat.snatTranslate(pkt, target),
          () => nat.masquerade(pkt, target, ip(E)),
          () => nat.demasquerade(pkt, target),
        ]) {
          expect(typeof step()).toBe('boolean');
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws when tracking and translating mutated packets', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(100), fc.nat(255)), { maxLength: 8 }), fc.constantFrom(0, 1, 2), (edits, which) => {
        const { ct, nat } = setup();
        const base = [tcp(C, 40000, S, 80, { flags: SYN }), udp(C, 40000, S, 53), icmpError(S, C, udp(C, 40000, S, 53))][which]!;
        ct.track(udp(C, 40000, S, 53), T0);
        for (const [at, value] of edits) if (base.l3 + at < base.end) base.bytes[base.l3 + at] = value;
        const h = ct.track(base, T0);
        nat.masquerade(base, h, ip(E));
        nat.dnatTranslate(base, h);
        nat.snatTranslate(base, h);
        expect(ct.protocol(h) === 0 || [IpProtocol.Tcp, IpProtocol.Udp, IpProtocol.Icmp].includes(ct.protocol(h) as 1 | 6 | 17)).toBe(true);
      }),
    );
  });
});
