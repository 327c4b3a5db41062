import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { EXAMPLES_DIR } from '../helpers/examples.ts';
import { Sim } from '../helpers/sim.ts';

describe('NIC limits on a simulated network', () => {
  const LIMITED = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, send_queue_limit: 3, buffer_limit: 5 }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw { a: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan }, b: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan } }
`;

  it('takes at most buffer_limit frames of one receive batch and counts the rest', () => {
    const sim = new Sim(LIMITED);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.ping('10.0.0.1'); // resolve ARP first, so the burst is not held in the host's ARP queue
    sim.settle();
    for (let i = 0; i < 8; i++) a.udp('10.1.0.9', 5000 + i, 'x');
    sim.settle();
    expect(sim.appliance.statistics()['nic0.rx_buffer_dropped']).toBe(3);
  });

  it('keeps at most send_queue_limit frames queued on a NIC and tail-drops the rest', () => {
    const sim = new Sim(LIMITED);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    a.ping('10.0.0.1', { seq: 99 });
    sim.settle();
    a.clear();
    // Five echo requests in one batch produce five replies on lan: three fit.
    for (let i = 0; i < 5; i++) a.ping('10.0.0.1', { seq: i });
    sim.settle();
    expect(a.received.filter((r) => r.protocol === 1)).toHaveLength(3);
    expect(sim.appliance.statistics()['nic0.sendq_dropped']).toBe(2);
    expect(b.received).toEqual([]);
  });
});

describe('Timers on a simulated network', () => {
  it('print their items first after 1 s, then every interval, in the fixed order (8.10)', () => {
    const sim = new Sim('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nTimer t { interval: 5, data: [timers, timestamp, cpu, memory, stats] }\n', 1);
    sim.settle(900);
    expect(sim.logs.filter((l) => l.startsWith('[ NaCl Timer'))).toEqual([]);
    sim.settle(200);
    const first = sim.logs.filter((l) => l.startsWith('[ NaCl Timer'));
    expect(first.map((l) => l.split(' ]')[0])).toEqual(['[ NaCl Timer Timestamp', '[ NaCl Timer Stats', '[ NaCl Timer Memory', '[ NaCl Timer CPU', '[ NaCl Timer Timers']);
    expect(first[0]).toMatch(/^\[ NaCl Timer Timestamp \] (Sun|Mon|Tue|Wed|Thu|Fri|Sat) [A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} \d{4}$/);
    expect(first[1]).toContain('"eth0.packets_rx":0');
    sim.logs.length = 0;
    sim.settle(5000);
    expect(sim.logs.filter((l) => l.startsWith('[ NaCl Timer Timestamp'))).toHaveLength(1);
  });
});

describe('the Timer item timers', () => {
  it('counts the timers that run, the same at every report: a re-armed timer replaces its handle', () => {
    const sim = new Sim('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nTimer t { interval: 5, data: [timers] }\n', 1);
    sim.settle(61_000);
    const reports = sim.logs.filter((l) => l.startsWith('[ NaCl Timer Timers'));
    expect(reports).toHaveLength(13);
    // The 1 s housekeeping tick and this Timer.
    expect(new Set(reports)).toEqual(new Set(['[ NaCl Timer Timers ] Active: 2 Existing: 2 Free: 0']));
  });
});

describe('the Timer item stack-sampling', () => {
  const CONFIG = 'Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nTimer t { interval: 5, data: [stack-sampling] }\n';
  const host = (functions: { name: string; count: number }[]) => {
    const calls = { started: 0, taken: 0 };
    const api = {
      memory: () => ({ used: 1, total: 2 }),
      cpuMicros: () => 0,
      startStackSampling: () => (calls.started++, true),
      stackSamples: () => (calls.taken++, { total: functions.reduce((n, f) => n + f.count, 0), functions }),
    };
    return { api, calls };
  };

  it('starts the host sampler at boot and prints the sample count and the top 5 functions with their share (8.2)', () => {
    const functions = ['(idle)', 'checksumSum (nacl-runtime.js)', 'filter_in (nacl-generated.js)', 'parse (nacl-runtime.js)', 'a', 'b'].map((name, i) => ({ name, count: 60 - i * 10 }));
    const { api, calls } = host(functions);
    const sim = new Sim(CONFIG, 1, [], { host: api });
    expect(calls.started).toBe(1);
    sim.settle(1100);
    expect(calls.taken).toBe(1);
    const at = sim.logs.indexOf('[ NaCl Timer Stack Sampling ]');
    expect(sim.logs.slice(at, at + 7)).toEqual([
      '[ NaCl Timer Stack Sampling ]',
      'Stack sampling - 6 results (210 samples)',
      ' 28.57%  60: (idle)',
      ' 23.81%  50: checksumSum (nacl-runtime.js)',
      ' 19.05%  40: filter_in (nacl-generated.js)',
      ' 14.29%  30: parse (nacl-runtime.js)',
      '  9.52%  20: a',
    ]);
    expect(sim.logs.filter((l) => l.endsWith(': b'))).toEqual([]);
  });

  it('says so when the host cannot sample, and starts no sampler without a Timer that asks', () => {
    const sim = new Sim(CONFIG, 1);
    sim.settle(1100);
    expect(sim.logs).toContain('[ NaCl Timer Stack Sampling ] stack sampling is not available on this host');
    const { api, calls } = host([]);
    new Sim('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nTimer t { interval: 5, data: [cpu] }\n', 1, [], { host: api });
    expect(calls.started).toBe(0);
  });
});

describe('a config with a Load_balancer, on a simulated network', () => {
  it('says at boot where its clients connect and how many nodes it has', () => {
    const sim = new Sim(readFileSync(join(EXAMPLES_DIR, 'lb.nacl'), 'utf8'), 2);
    expect(sim.logs).toContain('[ NaCl LB ] lb: clients on outside port 80, 2 nodes via inside (round_robin)');
  });

  it('answers a SYN to its clients port with SYN-ACK, and one to another port with RST', () => {
    const sim = new Sim(readFileSync(join(EXAMPLES_DIR, 'lb.nacl'), 'utf8'), 2);
    const a = sim.host('a', 0, '10.20.17.5', 24);
    a.syn('10.20.17.71', 80);
    a.syn('10.20.17.71', 81);
    sim.settle();
    expect(a.received.map((r) => [r.src, r.sport, r.detail & 0x17])).toEqual([
      ['10.20.17.71', 80, 0x12],
      ['10.20.17.71', 81, 0x14],
    ]);
  });

  it('retransmits an unanswered SYN-ACK at the millisecond its timeout is due (1 s), not at a later tick', () => {
    const sim = new Sim(readFileSync(join(EXAMPLES_DIR, 'lb.nacl'), 'utf8'), 2);
    const a = sim.host('a', 0, '10.20.17.5', 24);
    // Off any beat of a periodic timer started at boot.
    sim.clock.advance(17, () => sim.net.flush());
    a.syn('10.20.17.71', 80);
    sim.settle();
    const synAcks = () => a.received.filter((r) => r.sport === 80 && (r.detail & 0x12) === 0x12).length;
    expect(synAcks()).toBe(1);
    const sentAt = sim.clock.now();
    let resentAt = -1;
    for (let t = 0; t < 1200 && resentAt < 0; t++) {
      sim.clock.advance(1, () => sim.net.flush());
      sim.net.flush();
      if (synAcks() === 2) resentAt = sim.clock.now();
    }
    expect(resentAt - sentAt).toBe(1000);
  });

  it('arms no timer while idle but the once-a-second housekeeping and its node checks, and none after stop()', () => {
    const sim = new Sim(readFileSync(join(EXAMPLES_DIR, 'lb.nacl'), 'utf8'), 2);
    // The nodes are silent: their checks time out and they go down, checked again every CHECK_INTERVAL.
    sim.settle(60_000);
    const setTimer = vi.spyOn(sim.clock, 'setTimer');
    sim.settle(30_000);
    const delays = setTimer.mock.calls.map(([ms]) => ms);
    // A 50 ms tick would have armed 600 timers; the checks of two nodes arm a handful (ARP, SYN retransmissions).
    expect(delays.filter((ms) => ms === 1000).length).toBeGreaterThanOrEqual(30);
    expect(delays.filter((ms) => ms !== 1000).length).toBeLessThan(30);
    sim.appliance.stop();
    expect(sim.clock['timers'].size).toBe(0);
  });
});

describe('fragments and the MTU on a simulated network', () => {
  const ROUTER = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw { a: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan }, b: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan } }
`;

  it('reassembles a fragmented datagram addressed to the appliance', () => {
    const sim = new Sim(ROUTER);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    // The host's own core fragments a 3000-byte echo request for its 1500-byte MTU.
    a.ping('10.0.0.1', { payload: new Uint8Array(3000).fill(7) });
    sim.settle();
    const reply = a.received.find((r) => r.protocol === 1);
    expect(reply?.detail).toBe(0);
    expect(reply?.payload.length).toBe(3000);
  });

  it('reassembles a fragmented datagram addressed to an Iface that tracks no connections', () => {
    const sim = new Sim('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }', 1);
    const a = sim.host('a', 0, '10.0.0.5', 24);
    a.ping('10.0.0.1', { payload: new Uint8Array(3000).fill(7) });
    sim.settle();
    expect(a.received.find((r) => r.protocol === 1)?.payload.length).toBe(3000);
    expect(sim.appliance.statistics()['reassembly.reassembled']).toBe(1);
  });

  it('fragments a forwarded datagram too big for the egress MTU, and the receiver gets all of it', () => {
    const sim = new Sim(ROUTER, 2, [1500, 576]);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.udp('10.1.0.9', 5000, new Uint8Array(1200).fill(1));
    sim.settle();
    expect(b.received.map((r) => [r.dport, r.payload.length])).toEqual([[5000, 1200]]);
  });

  const FIREWALL = `
Iface lan { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: guard }
Iface wan { index: 1, address: 10.1.0.1, netmask: 255.255.255.0 }
Gateway gw {
  forward: policy,
  a: { net: 10.0.0.0, netmask: 255.255.255.0, iface: lan },
  b: { net: 10.1.0.0, netmask: 255.255.255.0, iface: wan }
}
Filter::IP guard { Filter::ICMP { accept } drop }
Filter::IP policy {
  if (ct.state == established) { accept }
  Filter::UDP { if (udp.dport == 5000) { accept } }
  Filter::ICMP { accept }
  drop
}
`;

  it('reassembles fragments before conntrack, so a filter passes a fragmented datagram it allows and the egress fragments it again', () => {
    const sim = new Sim(FIREWALL, 2, [1500, 576]);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    // Resolve b first, so the fragments are not held back by ARP.
    a.ping('10.1.0.9');
    sim.settle();
    // The host fragments 3000 bytes for its 1500-byte MTU; only the first fragment has the ports.
    a.udp('10.1.0.9', 5000, new Uint8Array(3000).fill(1));
    a.udp('10.1.0.9', 5001, new Uint8Array(3000).fill(2));
    sim.settle();
    expect(b.received.filter((r) => r.protocol === 17).map((r) => [r.dport, r.payload.length])).toEqual([[5000, 3000]]);
    const stats = sim.appliance.statistics();
    expect(stats['reassembly.reassembled']).toBe(2);
    expect(stats['lan.drop.forward-rule']).toBe(1);
    expect(stats['lan.drop.no-conntrack-entry'] ?? 0).toBe(0);
  });

  it('tracks a reassembled datagram to the appliance like any other: its reply passes the established rule', () => {
    const sim = new Sim(FIREWALL);
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    // Addressed to lan's address from wan: it crosses the forward chain to lan's input, and the reply back.
    b.ping('10.0.0.1', { payload: new Uint8Array(3000).fill(7) });
    sim.settle();
    const reply = b.received.find((r) => r.protocol === 1);
    expect(reply?.detail).toBe(0);
    expect(reply?.payload.length).toBe(3000);
  });

  it('answers fragmentation needed for a DF datagram too big for the egress MTU', () => {
    const sim = new Sim(ROUTER, 2, [1500, 576]);
    const a = sim.host('a', 0, '10.0.0.5', 24, '10.0.0.1');
    const b = sim.host('b', 1, '10.1.0.9', 24, '10.1.0.1');
    a.udp('10.1.0.9', 5000, new Uint8Array(1200).fill(1), 40000, 64, true);
    sim.settle();
    expect(b.received).toEqual([]);
    const icmp = a.received.find((r) => r.protocol === 1);
    expect(icmp?.detail).toBe(3);
    expect(sim.appliance.statistics()['wan.drop.too-big-df']).toBe(1);
  });
});

