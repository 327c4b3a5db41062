import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IrRoute } from '../../compiler/ir.ts';
import { forwardTtl, nextHop, type RouteSpec, RoutingTable, timeExceededAllowed, ttlExpired, TtlVerdict } from '../../runtime/router.ts';
import { ipv4ChecksumIsValid, ipv4Ttl } from '../../runtime/wire/ipv4.ts';
import { icmpError, ip, ping, tcp, udp } from './build.ts';

const route = (net: string, netmask: string, iface: string, extra: Partial<RouteSpec> = {}): RouteSpec => ({
  net: ip(net),
  netmask: ip(netmask),
  iface,
  ...extra,
});

describe('route selection', () => {
  it('picks the most specific matching prefix', () => {
    const table = new RoutingTable([
      route('0.0.0.0', '0.0.0.0', 'wan'),
      route('10.0.0.0', '255.0.0.0', 'lan'),
      route('10.1.0.0', '255.255.0.0', 'dmz'),
    ]);
    expect(table.lookup(ip('10.1.2.3'))?.iface).toBe('dmz');
    expect(table.lookup(ip('10.2.2.3'))?.iface).toBe('lan');
    expect(table.lookup(ip('8.8.8.8'))?.iface).toBe('wan');
  });

  it('breaks a tie between equal prefixes by the lowest cost', () => {
    const table = new RoutingTable([
      route('10.0.0.0', '255.0.0.0', 'expensive', { cost: 10 }),
      route('10.0.0.0', '255.0.0.0', 'cheap', { cost: 2 }),
    ]);
    expect(table.lookup(ip('10.9.9.9'))?.iface).toBe('cheap');
  });

  it('breaks a tie of prefix and cost by table order', () => {
    const table = new RoutingTable([route('10.0.0.0', '255.0.0.0', 'first'), route('10.0.0.0', '255.0.0.0', 'second')]);
    expect(table.lookup(ip('10.9.9.9'))?.iface).toBe('first');
  });

  it('lets a more specific route win over a cheaper one', () => {
    const table = new RoutingTable([
      route('10.0.0.0', '255.0.0.0', 'cheap', { cost: 1 }),
      route('10.1.0.0', '255.255.0.0', 'specific', { cost: 50 }),
    ]);
    expect(table.lookup(ip('10.1.0.1'))?.iface).toBe('specific');
  });

  it('finds no route for an address nothing covers', () => {
    const table = new RoutingTable([route('10.0.0.0', '255.0.0.0', 'lan')]);
    expect(table.lookup(ip('192.168.0.1'))).toBeNull();
    expect(table.lookupIndex(ip('192.168.0.1'))).toBe(-1);
  });

  it('matches a host route only for that host', () => {
    const table = new RoutingTable([route('192.0.2.7', '255.255.255.255', 'host')]);
    expect(table.lookup(ip('192.0.2.7'))?.iface).toBe('host');
    expect(table.lookup(ip('192.0.2.8'))).toBeNull();
  });

  it('treats a net with host bits set as its network', () => {
    const table = new RoutingTable([route('10.1.2.3', '255.255.0.0', 'lan')]);
    expect(table.lookup(ip('10.1.200.1'))?.net).toBe(ip('10.1.0.0'));
  });

  it('builds the table from IR routes with their next hops and costs', () => {
    const span = { file: 'x.nacl', line: 1, column: 1, endLine: 1, endColumn: 1 };
    const routes: IrRoute[] = [
      { name: 'outside', net: '0.0.0.0', netmask: '0.0.0.0', prefixLength: 0, nexthop: '198.51.100.1', iface: 'wan', cost: 1, source: span },
      { name: 'inside', net: '10.1.0.0', netmask: '255.255.255.0', prefixLength: 24, nexthop: null, iface: 'lan', cost: 1, source: span },
    ];
    const table = RoutingTable.fromIr(routes);
    expect(table.lookup(ip('10.1.0.9'))).toMatchObject({ name: 'inside', nexthop: 0 });
    expect(table.lookup(ip('1.1.1.1'))).toMatchObject({ name: 'outside', nexthop: ip('198.51.100.1') });
  });

  it('agrees with a naive reference on random tables, small (scanned) and large (hashed per netmask)', () => {
    // Nets from a few /8s and /16s as well as anywhere, so equal prefixes, overlaps and ties are common.
    const near = fc.tuple(fc.constantFrom(0x0a000000, 0x0a010000, 0xc0a80000, 0xfffe0000), fc.integer({ min: 0, max: 0xffff })).map(([base, low]) => (base | low) >>> 0);
    const spec = fc.record({
      net: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), near),
      prefix: fc.oneof(fc.integer({ min: 0, max: 32 }), fc.constantFrom(8, 16, 24)),
      cost: fc.integer({ min: 0, max: 3 }),
    });
    fc.assert(
      fc.property(fc.oneof(fc.array(spec, { maxLength: 12 }), fc.array(spec, { minLength: 17, maxLength: 80 })), fc.array(fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), near), { minLength: 1, maxLength: 20 }), (specs, dsts) => {
        const routes = specs.map((s, i) => {
          const netmask = s.prefix === 0 ? 0 : (0xffffffff << (32 - s.prefix)) >>> 0;
          return { net: s.net, netmask, iface: `if${i}`, cost: s.cost };
        });
        const table = new RoutingTable(routes);
        for (const dst of [...dsts, ...routes.map((r) => r.net)]) {
          let best: (typeof routes)[number] | null = null;
          for (const r of routes) {
            if (((dst & r.netmask) >>> 0) !== ((r.net & r.netmask) >>> 0)) continue;
            if (best === null || r.netmask > best.netmask || (r.netmask === best.netmask && r.cost < best.cost)) best = r;
          }
          expect(table.lookup(dst)?.iface ?? null).toBe(best?.iface ?? null);
        }
      }),
      { numRuns: 800 },
    );
  });
});

describe('next hop', () => {
  const lan = { address: ip('10.1.0.1'), netmask: ip('255.255.255.0'), gateway: 0 };
  const wan = { address: ip('198.51.100.10'), netmask: ip('255.255.255.0'), gateway: ip('198.51.100.1') };
  const table = new RoutingTable([
    route('10.1.0.0', '255.255.255.0', 'lan'),
    route('10.2.0.0', '255.255.0.0', 'lan', { nexthop: ip('10.1.0.254') }),
    route('0.0.0.0', '0.0.0.0', 'wan'),
  ]);

  it('is the destination itself when it is on the egress subnet', () => {
    expect(nextHop(ip('10.1.0.80'), table.lookup(ip('10.1.0.80')), lan)).toBe(ip('10.1.0.80'));
  });

  it('is the route next hop for a destination beyond the subnet', () => {
    expect(nextHop(ip('10.2.3.4'), table.lookup(ip('10.2.3.4')), lan)).toBe(ip('10.1.0.254'));
  });

  it('falls back to the egress gateway when the route has no next hop', () => {
    expect(nextHop(ip('8.8.8.8'), table.lookup(ip('8.8.8.8')), wan)).toBe(ip('198.51.100.1'));
  });

  it('is none when neither the route nor the interface has a gateway', () => {
    expect(nextHop(ip('8.8.8.8'), table.lookup(ip('8.8.8.8')), lan)).toBe(0);
  });

  it('does not treat everything as on-link for an interface without an address', () => {
    expect(nextHop(ip('10.1.0.80'), null, { address: 0, netmask: 0, gateway: 0 })).toBe(0);
  });
});

describe('TTL on forwarding', () => {
  it('forwards a packet with TTL 2 and decrements it with a valid checksum', () => {
    const pkt = udp('10.1.0.20', 1, '8.8.8.8', 53, { ttl: 2 });
    expect(forwardTtl(pkt, false)).toBe(TtlVerdict.Forward);
    expect(ipv4Ttl(pkt.bytes, pkt.l3)).toBe(1);
    expect(ipv4ChecksumIsValid(pkt.bytes, pkt.l3)).toBe(true);
  });

  it('does not forward a packet arriving with TTL 1 and asks for Time Exceeded', () => {
    const pkt = udp('10.1.0.20', 1, '8.8.8.8', 53, { ttl: 1 });
    expect(forwardTtl(pkt, false)).toBe(TtlVerdict.TimeExceeded);
    expect(ipv4Ttl(pkt.bytes, pkt.l3)).toBe(1);
    expect(ttlExpired(1)).toBe(true);
    expect(ttlExpired(0)).toBe(true);
    expect(ttlExpired(2)).toBe(false);
  });

  it('keeps the TTL of a locally sourced packet', () => {
    const pkt = udp('10.1.0.1', 1, '8.8.8.8', 53, { ttl: 1 });
    expect(forwardTtl(pkt, true)).toBe(TtlVerdict.Forward);
    expect(ipv4Ttl(pkt.bytes, pkt.l3)).toBe(1);
  });

  it('drops a locally sourced packet with TTL 0 silently', () => {
    expect(forwardTtl(udp('10.1.0.1', 1, '8.8.8.8', 53, { ttl: 0 }), true)).toBe(TtlVerdict.Drop);
  });

  it('allows Time Exceeded for an ordinary unicast packet when enabled', () => {
    const pkt = tcp('10.1.0.20', 1, '8.8.8.8', 80, { ttl: 1 });
    expect(timeExceededAllowed(pkt, true)).toBe(true);
    expect(timeExceededAllowed(pkt, false)).toBe(false);
  });

  it('never sends Time Exceeded about multicast, broadcast, fragments or ICMP errors', () => {
    expect(timeExceededAllowed(udp('10.1.0.20', 1, '224.0.0.5', 53), true)).toBe(false);
    expect(timeExceededAllowed(udp('10.1.0.20', 1, '255.255.255.255', 53), true)).toBe(false);
    expect(timeExceededAllowed(udp('0.0.0.0', 68, '10.1.0.1', 67), true)).toBe(false);
    expect(timeExceededAllowed(udp('10.1.0.20', 1, '8.8.8.8', 53, { fragOffset: 8 }), true)).toBe(false);
    expect(timeExceededAllowed(icmpError('10.1.0.20', '8.8.8.8', udp('8.8.8.8', 53, '10.1.0.20', 1)), true)).toBe(false);
    expect(timeExceededAllowed(ping('10.1.0.20', '8.8.8.8', 1), true)).toBe(true);
  });
});
