import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CT_STATE } from '../../compiler/ir.ts';
import { Conntrack, type ConntrackSettings, DEFAULT_CONNTRACK_TIMEOUTS, TcpCtState } from '../../runtime/conntrack.ts';
import { CtInfo, newPacket } from '../../runtime/packet.ts';
import { IpProtocol } from '../../runtime/wire/ipv4.ts';
import { ACK, FIN_ACK, icmpError, ip, packet, ping, RST, SYN, SYN_ACK, tcp, udp } from './build.ts';

function tracker(settings: Partial<ConntrackSettings> = {}): Conntrack {
  return new Conntrack({ timeouts: DEFAULT_CONNTRACK_TIMEOUTS, limit: 0, reserve: 0, statefulTcp: false, hashSeed: 7, ...settings });
}

const T0 = 1_000_000;
const C = '10.0.0.2';
const S = '192.0.2.10';
const out = () => udp(C, 40000, S, 53);
const back = () => udp(S, 53, C, 40000);

describe('conntrack keys and directions', () => {
  it('creates an entry for the first packet of a flow and reports it NEW', () => {
    const ct = tracker();
    const pkt = out();
    const h = ct.track(pkt, T0);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(pkt.ctInfo).toBe(CtInfo.Original);
    expect(ct.packetState(h, pkt)).toBe(CT_STATE.new);
    expect(ct.size).toBe(1);
  });

  it('finds the same entry for later packets in the same direction', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    expect(ct.track(out(), T0 + 1)).toBe(h);
    expect(ct.counters.created).toBe(1);
  });

  it('finds the same entry for the reply, marked as reply direction', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    const reply = back();
    expect(ct.track(reply, T0 + 1)).toBe(h);
    expect(reply.ctInfo).toBe(CtInfo.Reply);
    expect(ct.size).toBe(1);
  });

  it('turns a confirmed flow ESTABLISHED on its first reply', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    ct.confirm(h, T0);
    const reply = back();
    ct.track(reply, T0 + 1);
    expect(ct.packetState(h, reply)).toBe(CT_STATE.established);
    expect(ct.packetState(h, out())).toBe(CT_STATE.established);
  });

  it('does not establish a flow whose first packet never passed a confirmation point', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    ct.track(back(), T0 + 1);
    expect(ct.state(h)).toBe(CT_STATE.new);
  });

  it('keeps reporting NEW for follow-up packets before any reply', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    ct.confirm(h, T0);
    const again = out();
    ct.track(again, T0 + 5);
    expect(ct.packetState(h, again)).toBe(CT_STATE.new);
  });

  it('keys ICMP echo on the identifier so that the reply finds the request', () => {
    const ct = tracker();
    const h = ct.track(ping(C, S, 0x1234), T0);
    const reply = ping(S, C, 0x1234, 'echo-reply');
    expect(ct.track(reply, T0)).toBe(h);
    expect(reply.ctInfo).toBe(CtInfo.Reply);
    expect(ct.replySport(h)).toBe(0x1234);
  });

  it('tracks two echo identifiers between the same hosts as two flows', () => {
    const ct = tracker();
    expect(ct.track(ping(C, S, 1), T0)).not.toBe(ct.track(ping(C, S, 2), T0));
    expect(ct.size).toBe(2);
  });

  it('keeps TCP and UDP flows with equal addresses and ports apart', () => {
    const ct = tracker();
    const a = ct.track(udp(C, 1000, S, 2000), T0);
    const b = ct.track(tcp(C, 1000, S, 2000), T0);
    expect(a).not.toBe(b);
    expect(ct.protocol(b)).toBe(IpProtocol.Tcp);
  });

  it('does not track other IP protocols', () => {
    const ct = tracker();
    const pkt = out();
    pkt.bytes[pkt.l3 + 9] = 47; // GRE
    expect(ct.track(pkt, T0)).toBe(-1);
    expect(pkt.ctInfo).toBe(CtInfo.None);
    expect(ct.counters.untracked).toBe(1);
    expect(ct.packetState(-1, pkt)).toBe(CT_STATE.invalid);
  });

  it('does not track a non-first fragment, whose first bytes are not ports', () => {
    const ct = tracker();
    expect(ct.track(udp(C, 40000, S, 53, { fragOffset: 1480 }), T0)).toBe(-1);
    expect(ct.counters.fragments).toBe(1);
    expect(ct.size).toBe(0);
  });

  it('tracks the first fragment of a datagram by its ports', () => {
    const ct = tracker();
    const h = ct.track(udp(C, 40000, S, 53, { moreFrags: true }), T0);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 40000, ip(S), 53)).toBe(h);
  });

  it('reports a TCP header too short to hold the ports as untracked', () => {
    const ct = tracker();
    const pkt = tcp(C, 1, S, 2);
    pkt.end = pkt.l4 + 3;
    expect(ct.track(pkt, T0)).toBe(-1);
    expect(ct.counters.malformed).toBe(1);
  });

  it('stores an entry under its original and its reply tuple', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 40000, ip(S), 53)).toBe(h);
    expect(ct.lookup(IpProtocol.Udp, ip(S), 53, ip(C), 40000)).toBe(h);
    expect([ct.origSrc(h), ct.origSport(h), ct.origDst(h), ct.origDport(h)]).toEqual([ip(C), 40000, ip(S), 53]);
    expect([ct.replySrc(h), ct.replySport(h), ct.replyDst(h), ct.replyDport(h)]).toEqual([ip(S), 53, ip(C), 40000]);
  });
});

describe('conntrack RELATED ICMP errors', () => {
  it('relates a port unreachable to the flow of the datagram it quotes', () => {
    const ct = tracker();
    const first = out();
    const h = ct.track(first, T0);
    const error = icmpError(S, C, first);
    expect(ct.track(error, T0 + 1)).toBe(h);
    expect(error.ctInfo).toBe(CtInfo.Reply | CtInfo.Related);
    expect(ct.packetState(h, error)).toBe(CT_STATE.related);
    expect(ct.size).toBe(1);
    expect(ct.counters.related).toBe(1);
  });

  it('relates a time exceeded from a router on the path', () => {
    const ct = tracker();
    const first = tcp(C, 40001, S, 80, { flags: SYN });
    const h = ct.track(first, T0);
    expect(ct.track(icmpError('198.51.100.1', C, first, 'time-exceeded', 0), T0)).toBe(h);
  });

  it('relates an error about a reply-direction packet in the original direction', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    const reply = back();
    ct.track(reply, T0);
    const error = icmpError(C, S, reply);
    expect(ct.track(error, T0)).toBe(h);
    expect(error.ctInfo).toBe(CtInfo.Original | CtInfo.Related);
  });

  it('relates an error about an echo request to the ping flow', () => {
    const ct = tracker();
    const request = ping(C, S, 99);
    const h = ct.track(request, T0);
    expect(ct.track(icmpError('198.51.100.1', C, request, 'time-exceeded', 0), T0)).toBe(h);
  });

  it('neither relates nor creates anything for an error about an unknown flow', () => {
    const ct = tracker();
    expect(ct.track(icmpError(S, C, out()), T0)).toBe(-1);
    expect(ct.size).toBe(0);
    expect(ct.counters.related_unmatched).toBe(1);
  });

  it('does not refresh the flow an error relates to', () => {
    const ct = tracker();
    const first = out();
    const h = ct.track(first, T0);
    const expiry = ct.expiresAt(h);
    ct.track(icmpError(S, C, first), T0 + 5000);
    expect(ct.expiresAt(h)).toBe(expiry);
  });
});

describe('conntrack timeouts', () => {
  it('gives a new entry the unconfirmed timeout', () => {
    const ct = tracker();
    const h = ct.track(tcp(C, 1, S, 2), T0);
    expect(ct.expiresAt(h)).toBe(T0 + 10_000);
    expect(ct.isConfirmed(h)).toBe(false);
  });

  it('gives a confirmed entry the confirmed timeout', () => {
    const ct = tracker();
    const h = ct.track(tcp(C, 1, S, 2), T0);
    ct.confirm(h, T0 + 100);
    expect(ct.isConfirmed(h)).toBe(true);
    expect(ct.expiresAt(h)).toBe(T0 + 100 + 30_000);
  });

  it('refreshes an established TCP flow with the established timeout', () => {
    const ct = tracker();
    const h = ct.track(tcp(C, 1, S, 2), T0);
    ct.confirm(h, T0);
    ct.track(tcp(S, 2, C, 1), T0 + 1000);
    expect(ct.expiresAt(h)).toBe(T0 + 1000 + 300_000);
  });

  it('uses the configured timeouts, given in seconds', () => {
    const ct = tracker({
      timeouts: {
        unconfirmed: { tcp: 1, udp: 2, icmp: 3 },
        confirmed: { tcp: 4, udp: 5, icmp: 6 },
        established: { tcp: 7, udp: 8, icmp: 9 },
      },
    });
    const h = ct.track(out(), T0);
    expect(ct.expiresAt(h)).toBe(T0 + 2000);
    ct.confirm(h, T0);
    expect(ct.expiresAt(h)).toBe(T0 + 5000);
    ct.track(back(), T0);
    expect(ct.expiresAt(h)).toBe(T0 + 8000);
    const p = ct.track(ping(C, S, 1), T0);
    expect(ct.expiresAt(p)).toBe(T0 + 3000);
  });

  it('starts a flow over when its entry expired before the next packet', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    ct.confirm(h, T0);
    ct.track(back(), T0);
    const later = out();
    ct.track(later, T0 + 10_000);
    expect(ct.counters).toMatchObject({ created: 2, expired: 1, entries: 1 });
    expect(later.ctInfo).toBe(CtInfo.Original);
    expect(ct.packetState(ct.lookup(IpProtocol.Udp, ip(C), 40000, ip(S), 53), later)).toBe(CT_STATE.new);
  });

  it('sweeps out expired entries and keeps live ones', () => {
    const ct = tracker();
    const a = ct.track(udp(C, 1, S, 53), T0);
    const b = ct.track(udp(C, 2, S, 53), T0 + 5000);
    expect(ct.sweep(T0 + 9_999)).toBe(0);
    expect(ct.sweep(T0 + 10_000)).toBe(1);
    expect(ct.isAlive(a)).toBe(false);
    expect(ct.isAlive(b)).toBe(true);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 1, ip(S), 53)).toBe(-1);
    expect(ct.counters.entries).toBe(1);
  });

  it('tells close listeners about an expiring entry while it is still readable', () => {
    const ct = tracker();
    const seen: string[] = [];
    ct.onClose((h, reason) => seen.push(`${reason} ${ct.origSport(h)}`));
    ct.track(out(), T0);
    ct.sweep(T0 + 60_000);
    expect(seen).toEqual(['expired 40000']);
  });

  it('stops calling a listener once it unsubscribed', () => {
    const ct = tracker();
    let calls = 0;
    const unsubscribe = ct.onClose(() => calls++);
    unsubscribe();
    ct.track(out(), T0);
    ct.sweep(T0 + 60_000);
    expect(calls).toBe(0);
  });

  it('ends a connection on remove', () => {
    const ct = tracker();
    const reasons: string[] = [];
    ct.onClose((_, reason) => reasons.push(reason));
    const h = ct.track(out(), T0);
    ct.remove(h);
    expect(reasons).toEqual(['removed']);
    expect(ct.size).toBe(0);
  });
});

describe('conntrack limit and eviction', () => {
  it('counts the limit in connections, not in keys', () => {
    const ct = tracker({ limit: 2 });
    ct.confirm(ct.track(udp(C, 1, S, 53), T0), T0);
    ct.confirm(ct.track(udp(C, 2, S, 53), T0), T0);
    ct.track(udp(S, 53, C, 1), T0);
    ct.track(udp(S, 53, C, 2), T0);
    // Each client speaks again after the answer: both entries are assured, none can be evicted.
    ct.track(udp(C, 1, S, 53), T0);
    ct.track(udp(C, 2, S, 53), T0);
    expect(ct.size).toBe(2);
    expect(ct.track(udp(C, 3, S, 53), T0)).toBe(-1);
    expect(ct.counters.refused_full).toBe(1);
  });

  it('evicts the oldest unconfirmed entry first when the table is full', () => {
    const ct = tracker({ limit: 3 });
    const confirmed = ct.track(udp(C, 1, S, 53), T0);
    ct.confirm(confirmed, T0);
    ct.track(udp(C, 2, S, 53), T0 + 1);
    ct.track(udp(C, 3, S, 53), T0 + 2);
    expect(ct.track(udp(C, 4, S, 53), T0 + 3)).toBeGreaterThanOrEqual(0);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 2, ip(S), 53)).toBe(-1);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 3, ip(S), 53)).toBeGreaterThanOrEqual(0);
    expect(ct.isAlive(confirmed)).toBe(true);
    expect(ct.counters.evicted).toBe(1);
  });

  it('then evicts the oldest confirmed entry that is not assured', () => {
    const ct = tracker({ limit: 2 });
    const a = ct.track(udp(C, 1, S, 53), T0);
    ct.confirm(a, T0);
    const b = ct.track(udp(C, 2, S, 53), T0);
    ct.confirm(b, T0);
    ct.track(udp(S, 53, C, 1), T0); // a is answered: assured
    ct.track(udp(C, 3, S, 53), T0);
    expect(ct.isAlive(a)).toBe(true);
    expect(ct.lookup(IpProtocol.Udp, ip(C), 2, ip(S), 53)).toBe(-1);
  });

  it('refuses a new flow when every entry is assured, and keeps the existing ones working', () => {
    const ct = tracker({ limit: 1 });
    const a = ct.track(out(), T0);
    ct.confirm(a, T0);
    ct.track(back(), T0);
    ct.track(out(), T0);
    expect(ct.isAssured(a)).toBe(true);
    expect(ct.track(udp(C, 9, S, 53), T0)).toBe(-1);
    expect(ct.counters.refused_full).toBe(1);
    expect(ct.track(out(), T0 + 1)).toBe(a);
  });

  it('assures an entry only when the original side speaks after the reply, so an unanswered reply stays evictable', () => {
    const ct = tracker({ limit: 1 });
    // A SYN from a spoofed source, and the server's SYN-ACK that nobody will answer.
    const spoofed = ct.track(tcp(C, 1000, S, 80, { flags: SYN }), T0);
    ct.confirm(spoofed, T0);
    ct.track(tcp(S, 80, C, 1000, { flags: SYN_ACK }), T0);
    ct.track(tcp(S, 80, C, 1000, { flags: SYN_ACK }), T0 + 1000);
    expect(ct.state(spoofed)).toBe(CT_STATE.established);
    expect(ct.isAssured(spoofed)).toBe(false);
    // A real client's flow takes its place.
    expect(ct.track(tcp(C, 2000, S, 80, { flags: SYN }), T0 + 2000)).toBeGreaterThanOrEqual(0);
    expect(ct.counters.evicted).toBe(1);
  });

  it('tells close listeners that an entry was evicted', () => {
    const ct = tracker({ limit: 1 });
    const reasons: string[] = [];
    ct.onClose((_, reason) => reasons.push(reason));
    ct.track(udp(C, 1, S, 53), T0);
    ct.track(udp(C, 2, S, 53), T0);
    expect(reasons).toEqual(['evicted']);
  });

  it('grows past its reserve when unlimited and still finds every flow', () => {
    const ct = tracker({ reserve: 16 });
    const handles: number[] = [];
    for (let port = 1; port <= 1000; port++) handles.push(ct.track(udp(C, port, S, 53), T0));
    expect(ct.capacity).toBeGreaterThanOrEqual(1000);
    for (let port = 1; port <= 1000; port++) {
      expect(ct.lookup(IpProtocol.Udp, ip(S), 53, ip(C), port)).toBe(handles[port - 1]);
    }
  });

  it('finds every flow after each new one while it grows a few slots at a time, whatever the hash seed', () => {
    for (let seed = 0; seed < 50; seed++) {
      const ct = tracker({ reserve: 16, hashSeed: seed });
      const handles: number[] = [];
      // Mismatches are collected and compared once: 20,000 lookups a seed, each through expect(), took
      // longer than the timeout on a busy 2-core machine.
      const wrong: string[] = [];
      for (let port = 1; port <= 200; port++) {
        handles.push(ct.track(udp(C, port, S, 53), T0));
        for (let q = 1; q <= port; q++) {
          const found = ct.lookup(IpProtocol.Udp, ip(C), q, ip(S), 53);
          if (found !== handles[q - 1]) wrong.push(`seed ${seed}, ${port} flows: port ${q} found ${found}, not ${handles[q - 1]}`);
        }
        // A tuple no flow has is not found, and the search ends.
        const absent = ct.lookup(IpProtocol.Udp, ip(C), 60000, ip(S), 53);
        if (absent !== -1) wrong.push(`seed ${seed}, ${port} flows: port 60000 found ${absent}`);
      }
      expect(wrong).toEqual([]);
    }
  }, 10_000);

  it('finds every flow, under both keys, while it grows a few slots at a time (flows ending and re-keyed meanwhile)', () => {
    const op = fc.oneof(
      { weight: 6, arbitrary: fc.constant({ kind: 'open' as const }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('close' as const), pick: fc.nat() }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('rekey' as const), pick: fc.nat() }) },
      { weight: 1, arbitrary: fc.constant({ kind: 'sweep' as const }) },
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), fc.integer({ min: 0, max: 0xffff }), (ops, seed) => {
        const ct = tracker({ reserve: 16, hashSeed: seed });
        type Flow = { handle: number; port: number; reply: [number, number, number, number] };
        const live: Flow[] = [];
        const gone: Flow[] = [];
        let next = 1;
        for (const o of ops) {
          if (o.kind === 'open') {
            const port = next++;
            const handle = ct.track(udp(C, port, S, 53), T0);
            live.push({ handle, port, reply: [ip(S), 53, ip(C), port] });
          } else if (o.kind === 'close' && live.length > 0) {
            const [flow] = live.splice(o.pick % live.length, 1);
            ct.remove(flow!.handle);
            gone.push(flow!);
          } else if (o.kind === 'rekey' && live.length > 0) {
            const flow = live[o.pick % live.length]!;
            const reply: [number, number, number, number] = [ip(S), 53, ip('198.51.100.1'), 10000 + next++];
            if (ct.setReplyTuple(flow.handle, ...reply)) flow.reply = reply;
          } else if (o.kind === 'sweep') {
            ct.sweep(T0);
          }
          // After every step, mid-migration too: keys not yet moved must still be found.
          for (const flow of live) {
            expect(ct.lookup(IpProtocol.Udp, ip(C), flow.port, ip(S), 53)).toBe(flow.handle);
            expect(ct.lookup(IpProtocol.Udp, ...flow.reply)).toBe(flow.handle);
          }
        }
        for (const flow of gone) expect(ct.lookup(IpProtocol.Udp, ip(C), flow.port, ip(S), 53)).toBe(-1);
        expect(ct.size).toBe(live.length);
      }),
      { numRuns: 100 },
    );
  });

  it('never grows past the limit', () => {
    const ct = tracker({ limit: 40, reserve: 1000 });
    expect(ct.capacity).toBe(40);
  });

  it('spends at most 128 bytes per connection', () => {
    const ct = tracker({ reserve: 100_000 });
    expect(ct.bytesPerEntry()).toBeLessThanOrEqual(128);
  });
});

describe('conntrack re-keying for NAT', () => {
  it('finds the entry under its new reply tuple and no longer under the old one', () => {
    const ct = tracker();
    const h = ct.track(out(), T0);
    expect(ct.setReplyTuple(h, ip(S), 53, ip('203.0.113.1'), 50000)).toBe(true);
    const reply = udp(S, 53, '203.0.113.1', 50000);
    expect(ct.track(reply, T0)).toBe(h);
    expect(reply.ctInfo).toBe(CtInfo.Reply);
    expect(ct.lookup(IpProtocol.Udp, ip(S), 53, ip(C), 40000)).toBe(-1);
  });

  it('refuses a reply tuple that another entry owns', () => {
    const ct = tracker();
    const a = ct.track(udp(C, 1, S, 53), T0);
    const b = ct.track(udp(C, 2, S, 53), T0);
    expect(ct.setReplyTuple(b, ip(S), 53, ip(C), 1)).toBe(false);
    expect(ct.lookup(IpProtocol.Udp, ip(S), 53, ip(C), 1)).toBe(a);
    expect(ct.lookup(IpProtocol.Udp, ip(S), 53, ip(C), 2)).toBe(b);
  });

  it('refuses a new flow whose reply tuple another entry already maps', () => {
    const ct = tracker();
    const h = ct.track(udp(C, 1, S, 53), T0);
    ct.setReplyTuple(h, ip(S), 53, ip('203.0.113.1'), 50000);
    expect(ct.track(udp(C, 1, S, 53), T0)).toBe(h);
    // S:53 -> C:1 is no longer a key, but its reverse is h's original tuple.
    expect(ct.track(udp(S, 53, C, 1), T0)).toBe(-1);
    expect(ct.counters.clash).toBe(1);
  });
});

describe('conntrack stateful TCP', () => {
  const stateful = () => tracker({ statefulTcp: true });

  it('does not track a segment of an unknown connection that is not a SYN', () => {
    const ct = stateful();
    expect(ct.track(tcp(C, 40000, S, 80, { flags: ACK }), T0)).toBe(-1);
    expect(ct.counters.tcp_not_syn).toBe(1);
    expect(ct.size).toBe(0);
  });

  it('shows the reset answering a SYN as established, as a SYN-ACK would be, and closes the connection', () => {
    const ct = stateful();
    const h = ct.track(tcp(C, 40000, S, 81, { flags: SYN }), T0);
    ct.confirm(h, T0);
    const reset = tcp(S, 81, C, 40000, { flags: RST | ACK });
    expect(ct.track(reset, T0 + 1)).toBe(h);
    expect(ct.packetState(h, reset)).toBe(CT_STATE.established);
    expect(ct.tcpState(h)).toBe(TcpCtState.Close);
  });

  it('takes a segment of a flow said to be under way (trace and test ct=) without its SYN', () => {
    const ct = stateful();
    const h = ct.track(tcp(S, 80, C, 40000, { flags: ACK }), T0, true);
    expect(h).toBeGreaterThanOrEqual(0);
    expect(ct.tcpState(h)).toBe(TcpCtState.Established);
    expect(ct.counters.tcp_not_syn).toBe(0);
  });

  it('does not open a connection from a lone SYN-ACK', () => {
    const ct = stateful();
    expect(ct.track(tcp(S, 80, C, 40000, { flags: SYN_ACK }), T0)).toBe(-1);
  });

  it('follows the three-way handshake to an assured ESTABLISHED connection', () => {
    const ct = stateful();
    const h = ct.track(tcp(C, 40000, S, 80, { flags: SYN }), T0);
    expect([ct.state(h), ct.tcpState(h)]).toEqual([CT_STATE.new, TcpCtState.SynSent]);
    ct.confirm(h, T0);
    expect(ct.expiresAt(h)).toBe(T0 + 30_000);
    ct.track(tcp(S, 80, C, 40000, { flags: SYN_ACK }), T0 + 10);
    expect([ct.state(h), ct.tcpState(h), ct.expiresAt(h)]).toEqual([CT_STATE.established, TcpCtState.SynRecv, T0 + 10 + 60_000]);
    expect(ct.isAssured(h)).toBe(false);
    ct.track(tcp(C, 40000, S, 80, { flags: ACK }), T0 + 20);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.Established, T0 + 20 + 24 * 3_600_000]);
    expect(ct.isAssured(h)).toBe(true);
  });

  function established(ct: Conntrack): number {
    const h = ct.track(tcp(C, 40000, S, 80, { flags: SYN }), T0);
    ct.confirm(h, T0);
    ct.track(tcp(S, 80, C, 40000, { flags: SYN_ACK }), T0);
    ct.track(tcp(C, 40000, S, 80, { flags: ACK }), T0);
    return h;
  }

  it('closes on RST but keeps the entry for 10 s and still passes the packet', () => {
    const ct = stateful();
    const h = established(ct);
    expect(ct.track(tcp(S, 80, C, 40000, { flags: RST }), T0 + 1000)).toBe(h);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.Close, T0 + 1000 + 10_000]);
  });

  it('walks FIN_WAIT, TIME_WAIT and CLOSE when the originator closes first', () => {
    const ct = stateful();
    const h = established(ct);
    ct.track(tcp(C, 40000, S, 80, { flags: FIN_ACK }), T0);
    expect(ct.tcpState(h)).toBe(TcpCtState.FinWait);
    ct.track(tcp(C, 40000, S, 80, { flags: FIN_ACK }), T0); // retransmission
    expect(ct.tcpState(h)).toBe(TcpCtState.FinWait);
    ct.track(tcp(S, 80, C, 40000, { flags: FIN_ACK }), T0);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.TimeWait, T0 + 120_000]);
    ct.track(tcp(C, 40000, S, 80, { flags: ACK }), T0);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.Close, T0 + 10_000]);
  });

  it('walks CLOSE_WAIT, LAST_ACK and CLOSE when the responder closes first', () => {
    const ct = stateful();
    const h = established(ct);
    ct.track(tcp(S, 80, C, 40000, { flags: FIN_ACK }), T0);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.CloseWait, T0 + 720_000]);
    ct.track(tcp(C, 40000, S, 80, { flags: FIN_ACK }), T0);
    expect([ct.tcpState(h), ct.expiresAt(h)]).toEqual([TcpCtState.LastAck, T0 + 30_000]);
    ct.track(tcp(S, 80, C, 40000, { flags: ACK }), T0);
    expect(ct.tcpState(h)).toBe(TcpCtState.Close);
  });

  it('reopens a closed connection on a new SYN from the originator', () => {
    const ct = stateful();
    const h = established(ct);
    ct.track(tcp(C, 40000, S, 80, { flags: RST }), T0);
    const syn = tcp(C, 40000, S, 80, { flags: SYN });
    expect(ct.track(syn, T0 + 1)).toBe(h);
    expect([ct.packetState(h, syn), ct.tcpState(h), ct.isAssured(h)]).toEqual([CT_STATE.new, TcpCtState.SynSent, false]);
  });

  it('keeps the short unconfirmed timeout for a SYN that never got through', () => {
    const ct = stateful();
    const h = ct.track(tcp(C, 40000, S, 80, { flags: SYN }), T0);
    ct.track(tcp(C, 40000, S, 80, { flags: SYN }), T0 + 3000);
    expect(ct.expiresAt(h)).toBe(T0 + 3000 + 10_000);
    ct.track(tcp(S, 80, C, 40000, { flags: SYN_ACK }), T0 + 3001);
    expect(ct.state(h)).toBe(CT_STATE.new);
  });

  it('refuses a SYN when the table is full instead of crashing', () => {
    const ct = tracker({ statefulTcp: true, limit: 1 });
    established(ct);
    expect(ct.track(tcp(C, 40001, S, 80, { flags: SYN }), T0)).toBe(-1);
    expect(ct.counters.refused_full).toBe(1);
  });

  it('tracks UDP generically when stateful TCP is on', () => {
    const ct = stateful();
    expect(ct.track(out(), T0)).toBeGreaterThanOrEqual(0);
  });
});

describe('conntrack robustness', () => {
  it('never throws on random bytes and returns a live handle or -1', () => {
    const ct = tracker({ statefulTcp: true, limit: 64 });
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 80 }),
        fc.nat(90),
        fc.nat(90),
        fc.nat(90),
        fc.nat(100_000),
        (bytes, l3, l4, end, now) => {
          const pkt = newPacket();
          pkt.bytes = bytes;
          pkt.l3 = l3;
          pkt.l4 = l4;
          pkt.end = end;
          const h = ct.track(pkt, now);
          expect(h === -1 || ct.isAlive(h)).toBe(true);
          if (h === -1) expect(pkt.ctInfo).toBe(CtInfo.None);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid packets', () => {
    const ct = tracker({ statefulTcp: true });
    const templates = [tcp(C, 1, S, 2, { flags: SYN }).bytes, out().bytes, ping(C, S, 3).bytes, icmpError(S, C, out()).bytes];
    fc.assert(
      fc.property(fc.nat(templates.length - 1), fc.array(fc.tuple(fc.nat(120), fc.nat(255)), { maxLength: 6 }), (which, edits) => {
        const bytes = templates[which]!.slice();
        for (const [at, value] of edits) if (at < bytes.length) bytes[at] = value;
        const pkt = packet(templates[which]!.slice());
        pkt.bytes = bytes;
        const h = ct.track(pkt, T0);
        expect(h === -1 || ct.isAlive(h)).toBe(true);
      }),
    );
  });

  it('agrees with a Map model over random creates, re-keys, removals and sweeps', () => {
    type Op =
      | { kind: 'track'; sport: number; dport: number; reply: boolean; at: number }
      | { kind: 'rekey'; which: number; port: number }
      | { kind: 'remove'; which: number }
      | { kind: 'sweep'; at: number };
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ kind: fc.constant('track' as const), sport: fc.integer({ min: 1, max: 40 }), dport: fc.integer({ min: 1, max: 3 }), reply: fc.boolean(), at: fc.nat(30_000) }),
      fc.record({ kind: fc.constant('rekey' as const), which: fc.nat(100), port: fc.integer({ min: 1, max: 60 }) }),
      fc.record({ kind: fc.constant('remove' as const), which: fc.nat(100) }),
      fc.record({ kind: fc.constant('sweep' as const), at: fc.nat(30_000) }),
    );
    const key = (src: number, sport: number, dst: number, dport: number) => `${src}:${sport}>${dst}:${dport}`;
    fc.assert(
      fc.property(fc.array(op, { maxLength: 150 }), (ops) => {
        const ct = tracker({ reserve: 16, limit: 0 });
        // Model: key -> handle for every live entry's two keys.
        const model = new Map<string, number>();
        const keysOf = (h: number) => [
          key(ct.origSrc(h), ct.origSport(h), ct.origDst(h), ct.origDport(h)),
          key(ct.replySrc(h), ct.replySport(h), ct.replyDst(h), ct.replyDport(h)),
        ];
        ct.onClose((h) => keysOf(h).forEach((k) => model.delete(k)));
        let clock = T0;
        const live = () => [...new Set(model.values())];
        const b = ip(S);
        for (const o of ops) {
          if (o.kind === 'track') {
            clock += o.at % 100;
            const pkt = o.reply ? udp(S, o.dport, C, o.sport) : udp(C, o.sport, S, o.dport);
            const h = ct.track(pkt, clock);
            if (h >= 0) keysOf(h).forEach((k) => model.set(k, h));
          } else if (o.kind === 'rekey') {
            const handles = live();
            if (handles.length === 0) continue;
            const h = handles[o.which % handles.length]!;
            const old = keysOf(h)[1]!;
            const ok = ct.setReplyTuple(h, b, ct.replySport(h), ip('203.0.113.1'), 1000 + o.port);
            const fresh = key(b, ct.replySport(h), ip('203.0.113.1'), 1000 + o.port);
            expect(ok).toBe(!model.has(fresh) || model.get(fresh) === h);
            if (ok) {
              model.delete(old);
              model.set(fresh, h);
            }
          } else if (o.kind === 'remove') {
            const handles = live();
            if (handles.length > 0) ct.remove(handles[o.which % handles.length]!);
          } else {
            ct.sweep(clock + o.at);
          }
          expect(ct.size).toBe(live().length);
          for (const [k, h] of model) {
            const [s, d] = k.split('>') as [string, string];
            const [sa, sp] = s.split(':').map(Number) as [number, number];
            const [da, dp] = d.split(':').map(Number) as [number, number];
            expect(ct.lookup(IpProtocol.Udp, sa, sp, da, dp)).toBe(h);
          }
        }
      }),
      { numRuns: 300 },
    );
  });
});
