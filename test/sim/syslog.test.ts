import { describe, expect, it } from 'vitest';
import { Sim } from '../helpers/sim.ts';

// The ManualClock's wall time starts at 2026-01-01T00:00:00Z.
const SERVER = `
Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: guard }
Syslog collector { address: 10.0.0.9, port: 514 }
Filter::IP guard {
  Filter::UDP {
    if (udp.dport == 7) { syslog(ERR, "echo refused from ", ip.saddr) drop }
  }
  syslog(INFO, "other from ", ip.saddr)
  accept
}
`;
const text = (payload: Uint8Array) => new TextDecoder().decode(payload);

describe('syslog(...) with a Syslog server', () => {
  it('sends RFC 5424 datagrams with the RFC PRI (facility user), from the Iface on NIC 0', () => {
    const sim = new Sim(SERVER, 1);
    const collector = sim.host('collector', 0, '10.0.0.9', 24);
    const client = sim.host('client', 0, '10.0.0.5', 24);
    client.udp('10.0.0.1', 7, 'x');
    sim.settle();
    const logs = collector.received.filter((r) => r.protocol === 17 && r.dport === 514);
    expect(logs).toHaveLength(1);
    expect(logs[0]!.src).toBe('10.0.0.1');
    expect(text(logs[0]!.payload)).toBe('<11>1 2026-01-01T00:00:00.000Z 10.0.0.1 nacl 1 UDPOUT - echo refused from 10.0.0.5');
  });

  it('sends every message from one ephemeral port, taken from the port table masquerade draws from', () => {
    const sim = new Sim(SERVER.replace('input: guard', 'input: guard, masquerade: true'), 1);
    const collector = sim.host('collector', 0, '10.0.0.9', 24);
    const client = sim.host('client', 0, '10.0.0.5', 24);
    client.udp('10.0.0.1', 7, 'x');
    client.udp('10.0.0.1', 8, 'y');
    sim.settle();
    const ports = collector.received.filter((r) => r.dport === 514).map((r) => r.sport);
    expect(ports).toHaveLength(2);
    expect(ports[0]).toBe(ports[1]);
    expect(ports[0]).toBeGreaterThanOrEqual(49152);
    expect(sim.appliance.nat!.portsFor(0x0a000001).isBound(ports[0]!)).toBe(true);
  });

  it('uses the facility and the RFC 3164 framing the operator chose at boot', () => {
    const sim = new Sim(SERVER, 1, [], { syslog: { facility: 19, framing: 'rfc3164' } });
    const collector = sim.host('collector', 0, '10.0.0.9', 24);
    sim.host('client', 0, '10.0.0.5', 24).udp('10.0.0.1', 9, 'x');
    sim.settle();
    const [log] = collector.received.filter((r) => r.dport === 514);
    // local3 (19) * 8 + info (6); the BSD timestamp is local time, so only its shape is fixed.
    expect(text(log!.payload)).toMatch(/^<158>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} 10\.0\.0\.1 nacl\[1\]: other from 10\.0\.0\.5$/);
  });

  it('counts a message it cannot send because the Iface has no address yet', () => {
    const sim = new Sim(SERVER.replace('address: 10.0.0.1, netmask: 255.255.255.0,', 'config: dhcp,'), 1);
    sim.appliance.rt.syslog(null as never, 3, 'lost');
    expect(sim.appliance.statistics()['syslog_unsent']).toBe(1);
  });
});

describe('syslog(...) without a Syslog server', () => {
  it('prints <PRI> FACILITY.SEVERITY, the time and the app name to the console', () => {
    const sim = new Sim(SERVER.replace('Syslog collector { address: 10.0.0.9, port: 514 }', ''), 1, [], { syslog: { facility: 3, framing: 'rfc5424' } });
    sim.host('client', 0, '10.0.0.5', 24).udp('10.0.0.1', 7, 'x');
    sim.settle();
    expect(sim.logs).toContain('<27> DAEMON.ERR 2026-01-01T00:00:00.000Z nacl: echo refused from 10.0.0.5');
  });
});
