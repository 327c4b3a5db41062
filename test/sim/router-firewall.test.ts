import { describe, expect, it } from 'vitest';
import { datagramOf, Sim } from '../helpers/sim.ts';

const ROUTER = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: guard }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  forward: fw,
  inside: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan },
  outside: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan }
}
Filter::IP guard {
  Filter::ICMP { if (icmp.type == echo-request) { accept } }
  drop
}
Filter::IP fw {
  if (ct.state == established) { accept }
  Filter::UDP { if (udp.dport == 9999) { drop } }
  accept
}
`;

describe('a router with a firewall, on a simulated network', () => {
  it('answers ARP and ping on its own address', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    a.ping('10.0.0.1');
    sim.settle();
    expect(a.received.map((r) => [r.protocol, r.src, r.detail])).toEqual([[1, '10.0.0.1', 0]]);
  });

  it('forwards between subnets and decrements the TTL', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.udp('10.1.0.9', 5000, 'hello', 40000, 64);
    sim.settle();
    expect(b.received).toHaveLength(1);
    expect(b.received[0]).toMatchObject({ src: '10.0.0.5', dst: '10.1.0.9', ttl: 63, dport: 5000 });
    expect(new TextDecoder().decode(b.received[0]!.payload)).toBe('hello');
  });

  it('sends ICMP time exceeded for a packet arriving with TTL 1 (RFC 1812, fixing upstream)', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.udp('10.1.0.9', 5000, 'x', 40000, 1);
    sim.settle();
    expect(b.received).toEqual([]);
    expect(a.received.map((r) => [r.protocol, r.src, r.detail])).toEqual([[1, '10.0.0.1', 11]]);
  });

  it('answers a ping with TTL 1 to its address on another Iface: TTL expires only on packets it passes on (RFC 1812 5.3.1)', () => {
    const sim = new Sim(ROUTER);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    b.ping('10.0.0.1', { ttl: 1 });
    sim.settle();
    expect(b.received.map((r) => [r.protocol, r.src, r.detail])).toEqual([[1, '10.0.0.1', 0]]);
  });

  it('counts only IPv4 packets in packets_tx, not the ARP it sends', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const before = sim.appliance.statistics();
    a.ping('10.0.0.1');
    sim.settle();
    const after = sim.appliance.statistics();
    // One echo reply, and the ARP reply that told the host the appliance's MAC.
    expect(after['lan.packets_tx']! - before['lan.packets_tx']!).toBe(1);
    expect(after['frames_tx']! - before['frames_tx']!).toBe(2);
  });

  it('drops what the forward chain drops', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.udp('10.1.0.9', 9999, 'blocked');
    a.udp('10.1.0.9', 9998, 'allowed');
    sim.settle();
    expect(b.received.map((r) => r.dport)).toEqual([9998]);
  });

  it('drops a TCP SYN to the appliance that its input filter does not allow', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    a.syn('10.0.0.1', 22);
    sim.settle();
    expect(a.received).toEqual([]);
    expect(sim.appliance.statistics()['lan.drop.input-rule']).toBe(1);
  });

  it('answers a TCP SYN to a closed port with RST when nothing filters it', () => {
    const sim = new Sim(ROUTER);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    b.syn('10.1.0.1', 22);
    sim.settle();
    expect(b.received.map((r) => [r.protocol, r.src, r.detail & 0x04])).toEqual([[6, '10.1.0.1', 4]]);
  });

  it('gives up on an unreachable next hop after 1 + 3 ARP requests and reports host unreachable', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    a.udp('10.1.0.77', 5000, 'nobody home');
    sim.settle(5000);
    expect(a.received.map((r) => [r.protocol, r.detail])).toEqual([[1, 3]]);
    expect(sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx).toBeGreaterThanOrEqual(4);
  });

  it('re-sends an ARP request 1 s after the last, not at the next tick of its once-a-second timer', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    // Half-way between two ticks of the appliance's 1 s timer.
    sim.settle(500);
    const before = sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx;
    a.udp('10.1.0.77', 5000, 'nobody home');
    sim.settle();
    const requests = () => sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx - before;
    expect(requests()).toBe(1);
    sim.settle(900);
    expect(requests()).toBe(1);
    sim.settle(100);
    expect(requests()).toBe(2);
    sim.settle(1000);
    expect(requests()).toBe(3);
  });

  it('re-sends an ARP request 1 s after the last when the next hop its one-shot timer was armed for has answered meanwhile', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    sim.settle(500);
    const before = sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx;
    const requests = () => sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx - before;
    // b answers at once: the retry timer armed for it (due at 1.5 s) finds nothing to do.
    a.udp('10.1.0.9', 5000, 'hello b');
    sim.settle(200);
    expect(requests()).toBe(1);
    a.udp('10.1.0.77', 5000, 'nobody home');
    sim.settle();
    expect(requests()).toBe(2);
    sim.settle(1000);
    expect(requests()).toBe(3);
  });

  it('arms no ARP retry timer once stopped, for a frame that arrives while its drivers close', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    sim.appliance.stop();
    const before = sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx;
    a.udp('10.1.0.77', 5000, 'late');
    sim.settle(5000);
    // The frame itself still asks once; nothing runs on a timer after stop().
    expect(sim.appliance.ifaces.get('wan')!.counters.arp_requests_tx - before).toBe(1);
  });
});

const TWO_FILTERS = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  forward: [first, second],
  inside: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan },
  outside: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan }
}
Filter::IP first {
  Filter::UDP { if (udp.dport == 1111) { drop } }
  accept
}
Filter::IP second {
  Filter::UDP { if (udp.dport == 2222) { drop } }
  accept
}
`;

describe('a forward chain of two functions, run as one segment', () => {
  it('drops what either function drops and forwards what both accept', () => {
    const sim = new Sim(TWO_FILTERS);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    for (const port of [1111, 2222, 3333]) a.udp('10.1.0.9', port, 'x');
    sim.settle();
    expect(b.received.map((r) => r.dport)).toEqual([3333]);
    expect(sim.appliance.statistics()['lan.drop.forward-rule']).toBe(2);
  });

  it('counts a rule hit for each function that decided, the accepts in the middle included', () => {
    const sim = new Sim(TWO_FILTERS);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    for (const port of [1111, 2222, 3333]) a.udp('10.1.0.9', port, 'x');
    sim.settle();
    const hits = Object.fromEntries(sim.appliance.ruleIds.map((id, k) => [`${sim.appliance.ir.rules[id]!.function} line ${sim.appliance.ir.rules[id]!.line}`, sim.appliance.ruleHits[k]]));
    // first: dropped 1111, accepted 2222 and 3333; second: dropped 2222, accepted 3333.
    expect(hits).toEqual({ 'first line 10': 1, 'first line 11': 2, 'second line 14': 1, 'second line 15': 1 });
  });
});

describe('what a router must not forward or answer with an ICMP error', () => {
  const ROUTED = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  inside: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan },
  outside: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan }
}
`;
  it('sends no ICMP error about an ICMP error it cannot route', () => {
    const sim = new Sim(ROUTED);
    sim.rawNic().send(sim.applianceMac(), 0x0800, datagramOf('icmp 10.0.0.5 -> 192.0.2.1 type=3 code=3'));
    expect(sim.appliance.statistics()['lan.drop.no-route']).toBe(1);
    expect(sim.appliance.statistics()['lan.icmp_errors_tx']).toBe(0);
  });

  it('routes no multicast, and answers it with nothing', () => {
    const sim = new Sim(ROUTED);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    sim.rawNic().send(Uint8Array.of(0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb), 0x0800, datagramOf('udp 10.0.0.5:5353 -> 224.0.0.251:5353 ttl=255'));
    expect(sim.appliance.statistics()['lan.drop.multicast-not-routed']).toBe(1);
    expect(sim.appliance.statistics()['lan.icmp_errors_tx']).toBe(0);
    expect(b.received).toEqual([]);
  });

  it('does not forward a unicast packet that came in a broadcast frame', () => {
    const sim = new Sim(ROUTED);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    const raw = sim.rawNic();
    raw.send(Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 0x0800, datagramOf('udp 10.0.0.5:4000 -> 10.1.0.9:5000'));
    expect(b.received).toEqual([]);
    expect(sim.appliance.statistics()['lan.drop.link-broadcast-not-routed']).toBe(1);
    // The same packet to the appliance's MAC is forwarded.
    raw.send(sim.applianceMac(), 0x0800, datagramOf('udp 10.0.0.5:4000 -> 10.1.0.9:5000'));
    expect(b.received.map((r) => r.dport)).toEqual([5000]);
  });
  it('forwards the datagram, not the bytes a frame carried past its IP total length (they could exceed the egress MTU)', () => {
    const sim = new Sim(ROUTED, 2, [1500, 576]);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    const lengths: number[] = [];
    const wan = sim.nics.get('1')!;
    const send = wan.send.bind(wan);
    wan.send = (frames) => {
      for (const f of frames) if (f[12] === 0x08 && f[13] === 0x00) lengths.push(f.length);
      send(frames);
    };
    const raw = sim.rawNic();
    const datagram = datagramOf('udp 10.0.0.5:4000 -> 10.1.0.9:5000');
    // The first one resolves b's MAC; the second goes out at once, in the frame it arrived in.
    raw.send(sim.applianceMac(), 0x0800, datagram);
    const oversized = new Uint8Array(datagram.length + 1400);
    oversized.set(datagram);
    raw.send(sim.applianceMac(), 0x0800, oversized);
    expect(b.received.map((r) => r.dport)).toEqual([5000, 5000]);
    expect(lengths).toEqual([14 + datagram.length, 14 + datagram.length]);
  });
});
