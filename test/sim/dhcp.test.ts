import { describe, expect, it } from 'vitest';
import type { SimHost } from '../../runtime/sim-host.ts';
import { DhcpMessageType, DhcpRepr, type DhcpRepr as Dhcp } from '../../runtime/wire/dhcp.ts';
import { formatIpv4Address, parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import { Sim } from '../helpers/sim.ts';

/*
 * `config: dhcp` and `dhcp-with-fallback` (runtime-semantics.md 6.1, 6.2) on a
 * simulated segment: a host plays the DHCP server, answering what the
 * appliance's client sends; time is a manual clock.
 */

const ip = (s: string) => parseIpv4Address(s)!;
const SERVER = '10.9.0.1';
const LEASED = '10.9.0.50';

interface ServerOptions {
  leaseTime?: number;
  /** Answer nothing (a dead server). */
  silent?: boolean;
}

/** The DHCP messages the server host received from the appliance, parsed. */
function requests(server: SimHost): Dhcp[] {
  return server.received.filter((r) => r.protocol === 17 && r.dport === 67).map((r) => DhcpRepr.parse(r.payload) as Dhcp);
}

/** Answers every DISCOVER with an OFFER and every REQUEST with an ACK, then forgets them. */
function serve(server: SimHost, options: ServerOptions = {}): Dhcp[] {
  const seen = requests(server);
  server.clear();
  if (options.silent) return seen;
  for (const m of seen) {
    const type = m.messageType === DhcpMessageType.Discover ? DhcpMessageType.Offer : m.messageType === DhcpMessageType.Request ? DhcpMessageType.Ack : 0;
    if (!type) continue;
    const reply: Dhcp = {
      ...m,
      op: 2,
      messageType: type,
      yiaddr: ip(LEASED),
      ciaddr: 0,
      subnetMask: ip('255.255.255.0'),
      routers: [ip(SERVER)],
      dnsServers: [ip('10.9.0.53')],
      leaseTime: options.leaseTime ?? 3600,
      serverId: ip(SERVER),
      requestedIp: null,
      clientId: null,
      parameterRequestList: [],
    };
    // A renewal is unicast, so is its answer; the rest is broadcast (the client asked for it).
    server.udp(m.ciaddr ? formatIpv4Address(m.ciaddr) : '255.255.255.255', 68, DhcpRepr.emit(reply), 67);
  }
  return seen;
}

/** Lets `ms` pass in 100 ms steps, the server answering as it goes; returns what it saw. */
function run(sim: Sim, server: SimHost, ms: number, options: ServerOptions = {}): Dhcp[] {
  const seen: Dhcp[] = [];
  for (let t = 0; t < ms; t += 100) {
    sim.settle(100);
    seen.push(...serve(server, options));
    sim.settle();
  }
  return seen;
}

function pingFrom(sim: Sim, host: SimHost, address: string): boolean {
  host.clear();
  host.ping(address);
  sim.settle(100);
  return host.received.some((r) => r.protocol === 1 && r.detail === 0 && r.src === address);
}

describe('DHCP on an Iface', () => {
  it('gets a lease from a server, applies it and answers on the leased address', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp }', 1);
    const server = sim.host('server', 0, SERVER, 24);
    const seen = run(sim, server, 1500);
    expect(seen.map((m) => m.messageType)).toEqual([DhcpMessageType.Discover, DhcpMessageType.Request]);
    expect(seen[0]).toMatchObject({ broadcast: true, ciaddr: 0, parameterRequestList: [1, 3, 6, 15] });
    expect(seen[1]).toMatchObject({ requestedIp: ip(LEASED), serverId: ip(SERVER) });
    const eth0 = sim.appliance.ifaces.get('eth0')!;
    expect([eth0.address, eth0.prefix, eth0.gateway, eth0.dns]).toEqual([ip(LEASED), 24, ip(SERVER), ip('10.9.0.53')]);
    expect(sim.logs).toContain('[ eth0 ] DHCP: 10.9.0.50/24, gateway 10.9.0.1, dns 10.9.0.53, lease 3600 s from 10.9.0.1');
    expect(pingFrom(sim, server, LEASED)).toBe(true);
    expect(sim.appliance.statistics()).toMatchObject({ 'eth0.dhcp.discovers': 2, 'eth0.dhcp.offers': 1, 'eth0.dhcp.acks': 1 });
  });

  it('sends a DISCOVER a second for 10 s, then gives up for good and stays unconfigured', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp }', 1);
    const listener = sim.host('listener', 0, SERVER, 24);
    const before = run(sim, listener, 9_500, { silent: true });
    // The DISCOVER at t = 0 went out before the listener was plugged in: 9 of the 10.
    expect(before.map((m) => m.messageType)).toEqual(Array(9).fill(DhcpMessageType.Discover));
    expect(sim.appliance.ifaces.get('eth0')!.dhcp!.counters.discovers).toBe(10);
    const after = run(sim, listener, 5_000, { silent: true });
    expect(after).toEqual([]);
    expect(sim.logs).toContain('[ eth0 ] DHCP request timed out. Nothing to do.');
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(0);
  });

  it('applies the static fallback when no server answers within 10 s (dhcp-with-fallback)', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp-with-fallback, address: 10.9.0.7, netmask: 255.255.255.0 }', 1);
    const host = sim.host('host', 0, SERVER, 24);
    run(sim, host, 9_500, { silent: true });
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(0);
    run(sim, host, 1_000, { silent: true });
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip('10.9.0.7'));
    expect(sim.logs).toContain('[ eth0 ] DHCP request timed out. Applying the fallback configuration.');
    expect(pingFrom(sim, host, '10.9.0.7')).toBe(true);
  });

  it('ignores the fallback when a server answers (dhcp-with-fallback)', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp-with-fallback, address: 10.9.0.7, netmask: 255.255.255.0 }', 1);
    const server = sim.host('server', 0, SERVER, 24);
    run(sim, server, 12_000);
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip(LEASED));
  });

  it('renews the lease with the server at T1 (unicast) and keeps the address', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp }', 1);
    const server = sim.host('server', 0, SERVER, 24);
    run(sim, server, 1_500, { leaseTime: 120 });
    // Bound at about 1 s: T1 (half the lease) falls due at the tick after 61 s.
    const seen = run(sim, server, 61_000, { leaseTime: 120 });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ messageType: DhcpMessageType.Request, ciaddr: ip(LEASED), broadcast: false });
    expect(sim.appliance.ifaces.get('eth0')!.dhcp!.state).toBe('bound');
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip(LEASED));
  });

  it('rebinds by broadcast at T2 when the server is silent, and starts over when the lease ends', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp }', 1);
    const server = sim.host('server', 0, SERVER, 24);
    run(sim, server, 1_500, { leaseTime: 120 });
    const silent = run(sim, server, 119_000, { silent: true });
    // T1 = 60 s: a unicast REQUEST; T2 = 105 s: a broadcast one.
    expect(silent.map((m) => [m.messageType, m.ciaddr])).toEqual([
      [DhcpMessageType.Request, ip(LEASED)],
      [DhcpMessageType.Request, ip(LEASED)],
    ]);
    expect(sim.appliance.ifaces.get('eth0')!.dhcp!.state).toBe('rebinding');
    run(sim, server, 2_000, { silent: true });
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(0);
    expect(sim.logs).toContain('[ eth0 ] DHCP: the lease on 10.9.0.50 ended; negotiating again');
    // The server is back: a new lease.
    run(sim, server, 1_500);
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip(LEASED));
  });

  it('after losing its lease, falls back to its static values 10 s later and takes a lease again when the server returns (dhcp-with-fallback)', () => {
    const sim = new Sim('Iface eth0 { index: 0, config: dhcp-with-fallback, address: 10.9.0.7, netmask: 255.255.255.0 }', 1);
    const server = sim.host('server', 0, SERVER, 24);
    run(sim, server, 1_500, { leaseTime: 120 });
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip(LEASED));
    // The server goes silent past the lease's end, and ten seconds more.
    run(sim, server, 119_000 + 12_000, { silent: true });
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip('10.9.0.7'));
    expect(sim.logs).toContain('[ eth0 ] DHCP request timed out. Applying the fallback configuration while still asking for a lease.');
    // Back after ten minutes: the next DISCOVER (a minute apart by then) gets the lease.
    run(sim, server, 600_000, { silent: true });
    run(sim, server, 65_000);
    expect(sim.appliance.ifaces.get('eth0')!.address).toBe(ip(LEASED));
  });
});

