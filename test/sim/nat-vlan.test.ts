import { describe, expect, it } from 'vitest';
import { datagramOf, Sim } from '../helpers/sim.ts';

const EDGE = `
Iface wan { index: 0, address: 198.51.100.10, netmask: 255.255.255.0, prerouting: port_forward, masquerade: true }
Iface lan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  inside: { net: 10.1.0.0, netmask: 255.255.255.0, iface: lan },
  outside: { net: 198.51.100.0, netmask: 255.255.255.0, iface: wan }
}
Nat::UDP port_forward {
  if (udp.dport == 8080) { dnat(10.1.0.80, 80) }
}
`;

describe('NAT on a simulated network', () => {
  it('forwards a public port to a server behind the appliance and translates the reply back', () => {
    const sim = new Sim(EDGE);
    const client = sim.host('client', 0, '198.51.100.7', 24);
    const server = sim.host('server', 1, '10.1.0.80', 24, '10.1.0.1');
    client.udp('198.51.100.10', 8080, 'ping', 40001);
    sim.settle();
    expect(server.received.map((r) => [r.src, r.sport, r.dst, r.dport])).toEqual([['198.51.100.7', 40001, '10.1.0.80', 80]]);
    server.udp('198.51.100.7', 40001, 'pong', 80);
    sim.settle();
    expect(client.received.map((r) => [r.src, r.sport, r.dst, r.dport])).toEqual([['198.51.100.10', 8080, '198.51.100.7', 40001]]);
  });

  it('masquerades outbound traffic behind the wan address and lets replies back', () => {
    const sim = new Sim(EDGE);
    const outside = sim.host('outside', 0, '198.51.100.7', 24);
    const inside = sim.host('inside', 1, '10.1.0.20', 24, '10.1.0.1');
    inside.udp('198.51.100.7', 53, 'query', 33333);
    sim.settle();
    expect(outside.received).toHaveLength(1);
    const seen = outside.received[0]!;
    expect(seen.src).toBe('198.51.100.10');
    expect(seen.sport).toBeGreaterThanOrEqual(49152);
    outside.udp('198.51.100.10', seen.sport, 'answer', 53);
    sim.settle();
    expect(inside.received.map((r) => [r.src, r.sport, r.dst, r.dport])).toContainEqual(['198.51.100.7', 53, '10.1.0.20', 33333]);
  });

  it('sends NATed UDP with a correct checksum (upstream left it stale)', () => {
    const sim = new Sim(EDGE);
    const client = sim.host('client', 0, '198.51.100.7', 24);
    const server = sim.host('server', 1, '10.1.0.80', 24, '10.1.0.1');
    client.udp('198.51.100.10', 8080, 'checksummed', 40001);
    sim.settle();
    // The simulated host's core verifies checksums on receive: an arrival proves it is right.
    expect(server.received).toHaveLength(1);
    expect(sim.appliance.statistics()['nat.dnat']).toBe(1);
  });

  it('drops a packet whose source translation is impossible rather than send it out with its inside address', () => {
    // One public socket for every inside host: a second flow to the same server cannot have it.
    const sim = new Sim(`
Iface wan { index: 0, address: 198.51.100.10, netmask: 255.255.255.0, postrouting: one_socket }
Iface lan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  inside: { net: 10.1.0.0, netmask: 255.255.255.0, iface: lan },
  outside: { net: 198.51.100.0, netmask: 255.255.255.0, iface: wan }
}
Nat::UDP one_socket { snat(198.51.100.10, 7000) }
`);
    const outside = sim.host('outside', 0, '198.51.100.7', 24);
    const first = sim.host('first', 1, '10.1.0.20', 24, '10.1.0.1');
    const second = sim.host('second', 1, '10.1.0.21', 24, '10.1.0.1');
    first.udp('198.51.100.7', 53, 'query', 33333);
    sim.settle();
    second.udp('198.51.100.7', 53, 'query', 33334);
    sim.settle();
    expect(outside.received.map((r) => [r.src, r.sport])).toEqual([['198.51.100.10', 7000]]);
    expect(sim.appliance.statistics()['nat.conflicts']).toBe(1);
  });

  it('answers both port forwards to its own service from one client socket at the port the client used', () => {
    // Ports 8080 and 8081 both forwarded to the load balancer's port 80: the second flow gets a new source port.
    const sim = new Sim(
      `
Iface outside { index: 0, address: 10.20.17.71, netmask: 255.255.255.0, prerouting: fwd }
Iface inside { index: 1, address: 10.20.18.71, netmask: 255.255.255.0 }
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 10, session_limit: 10 },
  servers: { iface: inside, algorithm: round_robin, pool: [ { address: 10.20.18.81, port: 80 } ] }
}
Nat::TCP fwd { if (tcp.dport == 8080 or tcp.dport == 8081) { dnat(10.20.17.71, 80) } }
`,
      2,
    );
    const client = sim.host('client', 0, '10.20.17.5', 24);
    client.syn('10.20.17.71', 8080, 40000);
    client.syn('10.20.17.71', 8081, 40000);
    sim.settle();
    expect(sim.appliance.statistics()['nat.source_ports_remapped']).toBe(1);
    // SYN-ACKs from the ports the client connected to, to the port it sent from.
    expect(client.received.map((r) => [r.src, r.sport, r.dport, r.detail & 0x17])).toEqual([
      ['10.20.17.71', 8080, 40000, 0x12],
      ['10.20.17.71', 8081, 40000, 0x12],
    ]);
  });
});

const VLANS = `
Iface trunk { index: 0 }
Iface v10 { index: 0, vlan: 10, address: 10.10.0.1, netmask: 255.255.255.0 }
Iface v20 { index: 0, vlan: 20, address: 10.20.0.1, netmask: 255.255.255.0 }
`;

describe('VLANs on a simulated network', () => {
  it('answers ping on each VLAN Iface with a tagged reply, and ignores unknown VLAN ids', async () => {
    const { attach } = await import('../../runtime/drivers/memory.ts');
    const { SimHost } = await import('../../runtime/sim-host.ts');
    const sim = new Sim(VLANS, 1);
    // A VLAN-aware host: a SimHost whose Iface is itself a VLAN 10 Iface.
    const nic = sim.net.createNic({ name: 'h10', mac: Uint8Array.of(2, 0, 0, 0, 0xc0, 1) });
    attach(nic, sim.net.switch('seg0'));
    const h = new SimHost({ name: 'h10', address: '10.10.0.5', prefix: 24, nic, clock: sim.clock, vlan: 10 });
    h.ping('10.10.0.1');
    sim.settle();
    expect(h.received.map((r) => [r.protocol, r.src, r.detail])).toEqual([[1, '10.10.0.1', 0]]);
    const other = new SimHost({ name: 'h30', address: '10.10.0.6', prefix: 24, nic: (() => {
      const n = sim.net.createNic({ name: 'h30', mac: Uint8Array.of(2, 0, 0, 0, 0xc0, 2) });
      attach(n, sim.net.switch('seg0'));
      return n;
    })(), clock: sim.clock, vlan: 30 });
    other.ping('10.10.0.1');
    sim.settle();
    expect(other.received).toEqual([]);
    expect(sim.appliance.statistics()['drop.unknown-vlan']).toBeGreaterThan(0);
  });

  it.each([
    ['802.1ad (a provider S-tag)', 0x88a8],
    ['0x9100', 0x9100],
  ])('drops and counts a frame whose only tag is %s: only 802.1Q selects a VLAN (section 14)', (_name, tpid) => {
    const sim = new Sim(VLANS, 1);
    const raw = sim.rawNic();
    const datagram = datagramOf('icmp 10.10.0.5 -> 10.10.0.1');
    // VID 10, then the IPv4 EtherType, then the datagram.
    const tagged = new Uint8Array(4 + datagram.length);
    tagged.set([0, 10, 0x08, 0x00]);
    tagged.set(datagram, 4);
    raw.send(sim.applianceMac(), tpid, tagged);
    expect(sim.appliance.statistics()['v10.packets_rx']).toBe(0);
    expect(sim.appliance.statistics()[`drop.ethertype-${tpid.toString(16)}`]).toBe(1);
    // The same frame with an 802.1Q tag reaches VLAN 10's Iface.
    raw.send(sim.applianceMac(), 0x8100, tagged);
    expect(sim.appliance.statistics()['v10.packets_rx']).toBe(1);
  });
});

describe('frames the appliance does not handle', () => {
  const ONE = 'Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }';

  it('counts unknown EtherTypes under a few names, not one counter per EtherType', () => {
    const sim = new Sim(ONE, 1);
    const raw = sim.rawNic();
    const before = Object.keys(sim.appliance.statistics()).length;
    for (let i = 0; i < 500; i++) raw.send(sim.applianceMac(), 0xa000 + i, new Uint8Array(46));
    raw.send(sim.applianceMac(), 0x86dd, new Uint8Array(46));
    const stats = sim.appliance.statistics();
    expect(stats['drop.ethertype-other']).toBe(500);
    expect(stats['drop.ethertype-86dd']).toBe(1);
    expect(Object.keys(stats).length - before).toBe(2);
  });

  it('counts a malformed IPv4 packet as received and dropped', () => {
    const sim = new Sim(ONE, 1);
    // Version 4, IHL 5, but a total length of 4000 in a 46-byte payload.
    const bad = new Uint8Array(46);
    bad.set([0x45, 0, 0x0f, 0xa0]);
    sim.rawNic().send(sim.applianceMac(), 0x0800, bad);
    const stats = sim.appliance.statistics();
    expect(stats['eth0.packets_rx']).toBe(1);
    expect(stats['eth0.packets_dropped']).toBe(1);
  });
});
