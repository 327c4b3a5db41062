import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../runtime/port-allocator.ts';
import { initialSequenceNumber } from '../../runtime/tcp/isn.ts';
import { SYN_BACKLOG, TcpStack, TIME_WAIT_SCAN_MS, type TcpSocket } from '../../runtime/tcp/stack.ts';
import { encodeTcpOptions } from '../../runtime/wire/tcp-options.ts';
import { TcpFlag, TcpRepr } from '../../runtime/wire/tcp.ts';
import { client, echoServer, TcpNet } from '../helpers/tcp-net.ts';

const A = 0x0a000001;
const B = 0x0a000002;

function lone(sent: { remote: number; segment: TcpRepr }[] = []) {
  const stack = new TcpStack({ address: () => A, send: (remote, segment) => sent.push({ remote, segment }), now: () => 0, ports: new PortAllocator(() => 0), random: () => 0.25 });
  return { stack, sent };
}

const syn = (srcPort: number, dstPort = 80, seq = 1000): TcpRepr => ({ srcPort, dstPort, seq, ack: 0, flags: TcpFlag.Syn, window: 65535, payload: new Uint8Array(0) });

describe('the TCP stack of an address', () => {
  it('answers a SYN to a listening port with SYN-ACK, and hands the connection over once the handshake is done', () => {
    const net = new TcpNet();
    const server = net.stack('10.0.0.2');
    const accepted: number[] = [];
    server.listen(80, { accept: (s) => accepted.push(s.remotePort) });
    const c = client(net.stack('10.0.0.1'), '10.0.0.2', 80, '', true);
    net.settle();
    expect(c.events).toEqual(['connected']);
    expect(accepted).toEqual([c.socket.localPort]);
    expect(server.counters.connections_accepted).toBe(1);
  });

  it('takes nothing that is not for one of its connections or a SYN to a listener (the caller answers RST)', () => {
    const { stack } = lone();
    stack.listen(80, { accept: () => {} });
    const ack: TcpRepr = { ...syn(4000), flags: TcpFlag.Ack };
    expect(stack.receiveSegment(B, ack)).toBe(false);
    expect(stack.receiveSegment(B, syn(4000, 81))).toBe(false);
    expect(stack.receiveSegment(B, { ...syn(4000), flags: TcpFlag.Syn | TcpFlag.Rst })).toBe(false);
    expect(stack.receiveSegment(B, syn(4000))).toBe(true);
  });

  it('evicts the oldest half-open connection when SYN_BACKLOG are waiting (a SYN flood cannot lock clients out)', () => {
    const { stack, sent } = lone();
    stack.listen(80, { accept: () => {} });
    for (let i = 0; i < SYN_BACKLOG + 1; i++) stack.receiveSegment(B, syn(10000 + i));
    expect(stack.counters.syn_backlog_evictions).toBe(1);
    expect(stack.size).toBe(SYN_BACKLOG);
    // The evicted one is gone: its next segment is not taken.
    expect(stack.receiveSegment(B, { ...syn(10000), flags: TcpFlag.Ack, seq: 1001, ack: (sent[0]!.segment.seq + 1) >>> 0 })).toBe(false);
  });

  /** An established connection from B:4000 (the peer's next sequence number is 1001); `iss` is the stack's ISN. */
  function established() {
    const { stack, sent } = lone();
    let socket: TcpSocket | undefined;
    stack.listen(80, { accept: (s) => (socket = s) });
    stack.receiveSegment(B, syn(4000));
    const iss = sent[0]!.segment.seq;
    stack.receiveSegment(B, { ...syn(4000), flags: TcpFlag.Ack, seq: 1001, ack: (iss + 1) >>> 0 });
    const data = (seq: number, text: string): TcpRepr => ({ ...syn(4000), flags: TcpFlag.Ack | TcpFlag.Psh, seq, ack: (iss + 1) >>> 0, payload: new TextEncoder().encode(text) });
    return { stack, sent, socket: socket!, data };
  }

  /** A SACK-permitting connection from B:4000, established at 10 ms (a 10 ms round trip); `ack(n)` acknowledges n bytes of ours at `now`. */
  function sackEstablished() {
    const clock = { now: 0 };
    const sent: TcpRepr[] = [];
    const stack = new TcpStack({ address: () => A, send: (_, segment) => sent.push(segment), now: () => clock.now, ports: new PortAllocator(() => 0), random: () => 0.25 });
    let socket: TcpSocket | undefined;
    stack.listen(80, { accept: (s) => (socket = s) });
    stack.receiveSegment(B, { ...syn(4000), options: encodeTcpOptions({ mss: 1460, sackPermitted: true }) as Uint8Array });
    const iss = sent[0]!.seq;
    const ack = (n: number) => stack.receiveSegment(B, { ...syn(4000), flags: TcpFlag.Ack, seq: 1001, ack: (iss + 1 + n) >>> 0 });
    clock.now = 10;
    ack(0);
    return { stack, clock, connection: socket!.connection, ack };
  }

  it('announces the deadline of a tail loss probe as its soonest timer, then the retransmission timeout after it', () => {
    const { stack, clock, connection } = sackEstablished();
    // Three segments in flight, with a 10 ms round trip measured: a probe 2 RTT on.
    connection.write(new Uint8Array(4000));
    expect(stack.soonest).toBe(clock.now + 20);
    expect(connection.nextTimer()).toBe(clock.now + 20);
    stack.tick(clock.now + 20);
    expect(stack.counters.tail_loss_probes).toBe(1);
    expect(stack.soonest).toBe(connection.nextTimer());
  });

  it('takes every timer for its soonest: a lone segment in flight makes it the retransmission timeout, served at that millisecond', () => {
    const { stack, clock, connection } = sackEstablished();
    // A lone segment gets no tail loss probe (the peer may be delaying its ACK): only the RTO, MIN_RTO on.
    connection.write(new Uint8Array(100));
    expect(connection.nextTimer()).toBe(clock.now + 200);
    expect(stack.soonest).toBe(clock.now + 200);
    stack.tick(clock.now + 199);
    expect(stack.counters.retransmit_timeouts).toBe(0);
    stack.tick(clock.now + 200);
    expect(stack.counters.retransmit_timeouts).toBe(1);
  });

  it('times a write made between segments (the balancer relaying from another connection) from the clock, not from the last segment', () => {
    const { stack, clock, connection } = sackEstablished();
    // Idle for ten seconds, then the application writes: no segment or tick has told the connection the time since.
    clock.now = 10_000;
    connection.write(new Uint8Array(100));
    // The retransmission timeout is MIN_RTO after the write, not after the last segment (long past: a wake-up at once, and a spurious timeout).
    expect(connection.nextTimer()).toBe(10_200);
    stack.tick(10_001);
    expect(stack.counters.retransmit_timeouts).toBe(0);
  });

  it('sets its soonest anew at a tick that finds the deadline stopped, and to Infinity when no timer runs', () => {
    const { stack, clock, connection, ack } = sackEstablished();
    connection.write(new Uint8Array(100));
    expect(stack.soonest).toBe(210);
    clock.now = 20;
    ack(100);
    expect(connection.nextTimer()).toBeUndefined();
    // Stopping a timer costs nothing per segment: the stack learns of it at the tick it had asked for.
    expect(stack.soonest).toBe(210);
    stack.tick(210);
    expect(stack.soonest).toBe(Infinity);
  });

  it('announces a probe re-armed after the one it announced, once a tick finds the announced one gone', () => {
    const { stack, clock, connection, ack } = sackEstablished();
    connection.write(new Uint8Array(5000));
    expect(stack.soonest).toBe(30);
    // An ACK re-arms the probe later than the one announced.
    clock.now = 20;
    ack(1460);
    const probeAt = connection.nextTimer()!;
    expect(probeAt).toBeGreaterThan(30);
    stack.tick(30);
    expect(stack.soonest).toBe(probeAt);
  });

  it('acknowledges the data of one held batch once, at release', () => {
    const { stack, sent, socket, data } = established();
    socket.onEvent = (e) => e.kind === 'readable' && socket.connection.read();
    const before = sent.length;
    stack.hold();
    stack.receiveSegment(B, data(1001, 'abc'));
    stack.receiveSegment(B, data(1004, 'defg'));
    expect(sent.length).toBe(before);
    stack.release();
    expect(sent.slice(before).map((x) => [x.segment.flags, x.segment.ack])).toEqual([[TcpFlag.Ack, 1008]]);
  });

  it('sends no ACK of its own at release when an answer written during the batch carried it', () => {
    const { stack, sent, socket, data } = established();
    socket.onEvent = (e) => e.kind === 'readable' && socket.connection.read() && socket.connection.write(new TextEncoder().encode('ok'));
    const before = sent.length;
    stack.hold();
    stack.receiveSegment(B, data(1001, 'abc'));
    stack.release();
    expect(sent.slice(before).map((x) => [x.segment.ack, x.segment.payload.length])).toEqual([[1004, 2]]);
  });

  it('acknowledges every segment at once when not holding', () => {
    const { stack, sent, data } = established();
    const before = sent.length;
    stack.receiveSegment(B, data(1001, 'abc'));
    stack.receiveSegment(B, data(1004, 'defg'));
    expect(sent.slice(before).map((x) => x.segment.ack)).toEqual([1004, 1008]);
  });

  /** A connection from B:4000 that the stack's side closed first, left in TIME-WAIT; `iss` is the stack's ISN. */
  function inTimeWait() {
    const { stack, sent } = lone();
    const events: string[] = [];
    let socket: TcpSocket | undefined;
    stack.listen(80, {
      accept: (s) => {
        socket = s;
        s.onEvent = (e) => events.push(e.kind);
      },
    });
    stack.receiveSegment(B, syn(4000));
    const iss = sent[0]!.segment.seq;
    stack.receiveSegment(B, { ...syn(4000), flags: TcpFlag.Ack, seq: 1001, ack: (iss + 1) >>> 0 });
    socket!.connection.close();
    stack.receiveSegment(B, { ...syn(4000), flags: TcpFlag.Fin | TcpFlag.Ack, seq: 1001, ack: (iss + 2) >>> 0 });
    expect(socket!.connection.state).toBe('time-wait');
    return { stack, sent, events, socket: socket!, iss };
  }

  it('lets a SYN past what TIME-WAIT received open a new connection on the four-tuple, with an ISN past what the old one sent', () => {
    const { stack, sent, events, iss } = inTimeWait();
    expect(events).toEqual(['end']);
    expect(stack.receiveSegment(B, syn(4000, 80, 900_000))).toBe(true);
    expect(stack.counters.time_wait_reopened).toBe(1);
    // The old incarnation is over for its application too.
    expect(events).toEqual(['end', 'closed']);
    const synAck = sent.at(-1)!.segment;
    expect(synAck.flags).toBe(TcpFlag.Syn | TcpFlag.Ack);
    expect(synAck.ack).toBe(900_001);
    expect(((synAck.seq - iss) | 0) > 65535).toBe(true);
    expect(stack.size).toBe(1);
  });

  it('answers a SYN not past what TIME-WAIT received with an ACK and keeps the old connection', () => {
    const { stack, sent, socket } = inTimeWait();
    const before = sent.length;
    expect(stack.receiveSegment(B, syn(4000, 80, 1001))).toBe(true);
    expect(stack.counters.time_wait_reopened).toBe(0);
    expect(socket.connection.state).toBe('time-wait');
    expect(sent.slice(before).map((x) => x.segment.flags)).toEqual([TcpFlag.Ack]);
  });

  it('keeps at most maxTimeWait connections in TIME-WAIT; beyond, a connection ends once it has acknowledged the FIN', () => {
    const net = new TcpNet();
    const server = net.stack('10.0.0.2');
    echoServer(server, 80, 'srv');
    // Clients close first, so their side lingers in TIME-WAIT.
    const here = net.stack('10.0.0.1', 3);
    const clients = Array.from({ length: 5 }, () => client(here, '10.0.0.2', 80, 'x'));
    net.advance(500);
    expect(clients.every((c) => c.received() === 'srv\nx')).toBe(true);
    expect(here.size).toBe(3);
    expect(here.counters.time_wait_overflow).toBe(2);
    expect(server.size).toBe(0);
    // The places free up as TIME-WAIT ends.
    net.advance(60_000);
    expect(here.size).toBe(0);
    client(here, '10.0.0.2', 80, 'y');
    net.advance(500);
    expect(here.size).toBe(1);
    expect(here.counters.time_wait_overflow).toBe(2);
  });

  it('completes a burst of 100 handshakes that arrive at once, resetting none', () => {
    const net = new TcpNet();
    const server = net.stack('10.0.0.2');
    echoServer(server, 80, 'srv');
    const clients = Array.from({ length: 100 }, (_, i) => client(net.stack(`10.0.1.${i + 1}`), '10.0.0.2', 80, `c${i}`));
    net.advance(1000);
    expect(clients.filter((c, i) => c.received() !== `srv\nc${i}`)).toEqual([]);
    expect(server.counters.syn_backlog_evictions).toBe(0);
  });

  it('ends its oldest connection in TIME-WAIT to free a port when every ephemeral port is taken', () => {
    const net = new TcpNet();
    const server = net.stack('10.0.0.2');
    echoServer(server, 80, 'srv');
    // Three ports; the clients close first, so each port lingers in TIME-WAIT after its connection.
    const here = net.stack('10.0.0.1', undefined, new PortAllocator(() => 0, 50000, 50002));
    for (let i = 0; i < 5; i++) {
      const c = client(here, '10.0.0.2', 80, `c${i}`);
      net.advance(500);
      expect(c.received()).toBe(`srv\nc${i}`);
    }
    expect(here.counters.no_ephemeral_port).toBe(0);
    expect(here.counters.time_wait_reclaimed).toBe(2);
    expect(here.size).toBe(3);
  });

  it('counts a malformed segment and takes it, so it gets no RST', () => {
    const { stack } = lone();
    expect(stack.receive(B, new Uint8Array(10), 0, 10)).toBe(true);
    expect(stack.counters.bad_segments).toBe(1);
  });

  it('opens connections from ephemeral ports and gives each back when its connection is over', () => {
    const net = new TcpNet();
    const server = net.stack('10.0.0.2');
    echoServer(server, 80, 'srv');
    const here = net.stack('10.0.0.1');
    const c = client(here, '10.0.0.2', 80, 'x');
    net.advance(200);
    expect(c.socket.localPort).toBeGreaterThanOrEqual(49152);
    expect(c.received()).toBe('srv\nx');
    expect(here.size).toBe(1); // TIME-WAIT keeps the port
    expect(here.bufferMemory).toBe(0); // but not the buffers
    net.advance(60_000);
    expect(here.size).toBe(0);
    expect(server.size).toBe(0);
  });

  it('ends TIME-WAIT no sooner than its minute and at most TIME_WAIT_SCAN_MS after it', () => {
    const net = new TcpNet();
    echoServer(net.stack('10.0.0.2'), 80, 'srv');
    const here = net.stack('10.0.0.1');
    client(here, '10.0.0.2', 80, 'x');
    // Entered within the first 200 ms.
    net.advance(200);
    expect([...here['entries'].values()].map((e) => e.socket.connection.state)).toEqual(['time-wait']);
    net.advance(59_799 - net.now);
    expect(here.size).toBe(1);
    net.advance(200 + 60_000 + TIME_WAIT_SCAN_MS + 50 - net.now);
    expect(here.size).toBe(0);
  });

  it('ends a connection in TIME-WAIT at its deadline, and one due soon after at the next scan, TIME_WAIT_SCAN_MS on', () => {
    const net = new TcpNet();
    echoServer(net.stack('10.0.0.2'), 80, 'srv');
    const here = net.stack('10.0.0.1');
    const first = client(here, '10.0.0.2', 80, 'x');
    net.advance(200);
    const second = client(here, '10.0.0.2', 80, 'y');
    net.advance(300);
    expect([first, second].map((c) => c.socket.connection.state)).toEqual(['time-wait', 'time-wait']);
    const firstEnds = first.socket.connection.nextTimer()!;
    expect(second.socket.connection.nextTimer()! - firstEnds).toBeLessThan(TIME_WAIT_SCAN_MS);
    expect(here.soonest).toBe(firstEnds);
    here.tick(firstEnds);
    expect([first, second].map((c) => c.socket.connection.state)).toEqual(['closed', 'time-wait']);
    expect(here.soonest).toBe(firstEnds + TIME_WAIT_SCAN_MS);
    here.tick(firstEnds + TIME_WAIT_SCAN_MS);
    expect(second.socket.connection.state).toBe('closed');
    expect(here.soonest).toBe(Infinity);
  });

  it('says so when no ephemeral port is left, instead of throwing', () => {
    const stack = new TcpStack({ address: () => A, send: () => {}, now: () => 0, ports: new PortAllocator(() => 0, 50000, 50000), random: () => 0.5 });
    expect(stack.connect(B, 80, () => {})).not.toBeNull();
    expect(stack.connect(B, 80, () => {})).toBeNull();
    expect(stack.counters.no_ephemeral_port).toBe(1);
  });
});

describe('the TCP stack under hostile input', () => {
  it('never throws and never holds more than SYN_BACKLOG half-open connections, whatever arrives, in held batches or not', () => {
    const header = fc.record({
      sport: fc.integer({ min: 0, max: 65535 }),
      dport: fc.constantFrom(80, 81, 0, 65535),
      seq: fc.integer({ min: 0, max: 0xffffffff }),
      ack: fc.integer({ min: 0, max: 0xffffffff }),
      offset: fc.integer({ min: 0, max: 15 }),
      flags: fc.integer({ min: 0, max: 255 }),
      window: fc.integer({ min: 0, max: 65535 }),
      tail: fc.uint8Array({ maxLength: 80 }),
      from: fc.integer({ min: 1, max: 4 }),
      // Starts or ends a held batch before this segment, as the appliance does around each NIC batch.
      batch: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(header, { maxLength: 300 }), (segments) => {
        const sent: TcpRepr[] = [];
        const stack = new TcpStack({ address: () => A, send: (_r, s) => sent.push(s), now: () => 0, ports: new PortAllocator(() => 0), random: () => 0.5 });
        let accepted = 0;
        stack.listen(80, { accept: () => accepted++ });
        let holding = false;
        for (const h of segments) {
          if (h.batch) {
            if (holding) stack.release();
            else stack.hold();
            holding = !holding;
          }
          const b = new Uint8Array(20 + h.tail.length);
          b[0] = h.sport >> 8;
          b[1] = h.sport & 255;
          b[2] = h.dport >> 8;
          b[3] = h.dport & 255;
          new DataView(b.buffer).setUint32(4, h.seq);
          new DataView(b.buffer).setUint32(8, h.ack);
          b[12] = h.offset << 4;
          b[13] = h.flags;
          b[14] = h.window >> 8;
          b[15] = h.window & 255;
          b.set(h.tail, 20);
          stack.receive(B + h.from, b, 0, b.length);
        }
        stack.release();
        expect(stack.size).toBeLessThanOrEqual(SYN_BACKLOG + accepted);
        for (const s of sent) expect([s.srcPort, s.dstPort]).toSatisfy(([src, dst]: number[]) => src === 80 && dst > 0);
      }),
      { numRuns: 300 },
    );
  });
});

describe('initial sequence numbers (RFC 6528)', () => {
  const secret = Uint32Array.of(1, 2, 3, 4);

  it('differ between connections and between boot secrets', () => {
    const a = initialSequenceNumber(secret, A, 80, B, 40000, 0);
    expect(initialSequenceNumber(secret, A, 80, B, 40001, 0)).not.toBe(a);
    expect(initialSequenceNumber(secret, A, 80, B + 1, 40000, 0)).not.toBe(a);
    expect(initialSequenceNumber(Uint32Array.of(5, 6, 7, 8), A, 80, B, 40000, 0)).not.toBe(a);
  });

  it('advance with a 4 microsecond clock for the same connection', () => {
    const a = initialSequenceNumber(secret, A, 80, B, 40000, 1000);
    expect((initialSequenceNumber(secret, A, 80, B, 40000, 1001) - a) >>> 0).toBe(250);
  });
});
