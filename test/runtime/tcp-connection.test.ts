import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { prng } from '../../appliances/random-packets.ts';
import { TcpConnection, type TcpConnectionOptions, type TcpEvent, type TcpLossCounters, type TcpState } from '../../runtime/tcp/connection.ts';
import { encodeTcpOptions, parseTcpOptions } from '../../runtime/wire/tcp-options.ts';
import { TcpFlag, TcpRepr, type TcpRepr as Segment } from '../../runtime/wire/tcp.ts';

const { Fin, Syn, Rst, Psh, Ack } = TcpFlag;
const CLIENT_PORT = 40000;
const SERVER_PORT = 80;
const A_IP = 0x0a000001;
const B_IP = 0x0a000002;
const EMPTY = new Uint8Array(0);

const u32 = (x: number) => x >>> 0;

/** Deterministic bytes, patterned so a misplaced or repeated byte shows. */
function pattern(length: number, salt = 0): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + (i >>> 8) * 7 + salt) & 0xff;
  return out;
}

function concat(chunks: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** toEqual on big byte arrays is slow and its diff unreadable: the length, then the first differing offset. */
function expectBytes(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.length).toBe(expected.length);
  let i = 0;
  while (i < actual.length && actual[i] === expected[i]) i++;
  expect(i, 'first differing byte').toBe(actual.length);
}


/** Round-trips a segment through the wire format, as a link would; fails on anything unencodable. */
function wire(s: Segment, src = A_IP, dst = B_IP): Segment {
  const bytes = new Uint8Array(TcpRepr.bufferLen(s));
  const error = TcpRepr.emit(s, bytes, 0, src, dst);
  if (error) throw new Error(`unencodable segment: ${error}`);
  const parsed = TcpRepr.parse(bytes, 0, bytes.length, src, dst);
  if (typeof parsed === 'string') throw new Error(`unparseable segment: ${parsed}`);
  return parsed;
}

function seqLen(s: Segment): number {
  return s.payload.length + (s.flags & Syn ? 1 : 0) + (s.flags & Fin ? 1 : 0);
}

// --- one connection and a hand-driven peer ----------------------------------------

const ISN = 1000;
const PEER_ISN = 5000;

/** A segment from the peer: ACK set, full window, no data, unless told otherwise. */
function seg(fields: Partial<Segment>): Segment {
  return { srcPort: CLIENT_PORT, dstPort: SERVER_PORT, seq: 0, ack: 0, flags: Ack, window: 65535, payload: EMPTY, ...fields };
}

/** `mss` null: a SYN without the option. */
function syn(seq: number, mss: number | null = 1460, window = 65535): Segment {
  const options = mss === null ? undefined : (encodeTcpOptions({ mss }) as Uint8Array);
  return seg({ seq, flags: Syn, window, ...(options ? { options } : {}) });
}

interface Recorder {
  sent: Segment[];
  events: TcpEvent[];
}

function options(rec: Recorder, extra: Partial<TcpConnectionOptions> = {}): TcpConnectionOptions {
  return {
    localPort: SERVER_PORT,
    remotePort: CLIENT_PORT,
    isn: ISN,
    now: 0,
    send: (s) => rec.sent.push(wire(s)),
    event: (e) => rec.events.push(e),
    ...extra,
  };
}

/** A connection accepted from the peer's SYN, with the handshake completed unless `complete` is false. */
function passive(extra: Partial<TcpConnectionOptions> = {}, { complete = true, window = 65535, isn = ISN, peerIsn = PEER_ISN } = {}) {
  const rec: Recorder = { sent: [], events: [] };
  const conn = TcpConnection.accept(options(rec, { isn, ...extra }), syn(peerIsn, 1460, window));
  if (complete) conn.receive(seg({ seq: u32(peerIsn + 1), ack: u32(isn + 1), window }), 0);
  return { conn, rec, rcv: u32(peerIsn + 1), snd: u32(isn + 1) };
}

/** `passive`, with a peer whose SYN permits SACK. */
function passiveWithSack(extra: Partial<TcpConnectionOptions> = {}) {
  const rec: Recorder = { sent: [], events: [] };
  const options_ = encodeTcpOptions({ mss: 1460, sackPermitted: true }) as Uint8Array;
  const conn = TcpConnection.accept(options(rec, extra), seg({ seq: PEER_ISN, flags: Syn, options: options_ }));
  conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1) }), 0);
  return { conn, rec, rcv: u32(PEER_ISN + 1), snd: u32(ISN + 1) };
}

function dataSent(rec: Recorder): Segment[] {
  return rec.sent.filter((s) => s.payload.length > 0);
}

/** Ticks at each deadline until `stop` holds or `limit` ms pass; returns the time reached. */
function runTimers(conn: TcpConnection, from: number, limit: number, stop: () => boolean = () => false): number {
  let now = from;
  for (let next = conn.nextTimer(); next !== undefined && next <= limit && !stop(); next = conn.nextTimer()) {
    now = Math.max(now, next);
    conn.tick(now);
  }
  return now;
}

// --- two connections over a simulated link ----------------------------------------

type Side = 'a' | 'b';

interface AppPlan {
  /** The bytes this side writes. */
  data: Uint8Array;
  /** Bytes per write() call. */
  writeChunk: number;
  /** Bytes per read() call. */
  readChunk: number;
  /** 0: read on every 'readable'; else a read every this many ms (a slow reader). */
  readEvery: number;
  /** When to close: once everything is written, once that and the peer's EOF, or only when the test says. */
  close: 'after-write' | 'after-end' | 'manual';
}

interface SimOptions {
  seed?: number;
  loss?: number;
  dup?: number;
  /** ms each segment takes, plus up to `jitter` more (which reorders). */
  delay?: number;
  jitter?: number;
  /** Whether the random link may drop SYNs; a lost handshake has tests of its own. */
  loseSyns?: boolean;
  /** Drops a segment before the random link sees it when it returns true. */
  drop?: (from: Side, s: Segment) => boolean;
  a?: Partial<TcpConnectionOptions>;
  b?: Partial<TcpConnectionOptions>;
  appA?: Partial<AppPlan>;
  appB?: Partial<AppPlan>;
}

class Endpoint {
  conn: TcpConnection | undefined;
  readonly events: { at: number; e: TcpEvent }[] = [];
  readonly sent: { at: number; s: Segment }[] = [];
  readonly states: { at: number; state: TcpState }[] = [];
  readonly chunks: Uint8Array[] = [];
  written = 0;
  connected = false;
  gotEnd = false;
  closeCalled = false;
  nextReadAt: number | undefined;

  constructor(readonly plan: AppPlan) {}

  get received(): Uint8Array {
    return concat(this.chunks);
  }

  kinds(): string[] {
    return this.events.map(({ e }) => (e.kind === 'reset' ? `reset:${e.reason}` : e.kind));
  }

  start(now: number): void {
    if (this.plan.readEvery > 0) this.nextReadAt = now + this.plan.readEvery;
    this.pump();
  }

  pump(): void {
    const conn = this.conn!;
    while (this.written < this.plan.data.length) {
      const chunk = this.plan.data.subarray(this.written, this.written + this.plan.writeChunk);
      const n = conn.write(chunk);
      this.written += n;
      if (n < chunk.length) break;
    }
    this.maybeClose();
  }

  read(): void {
    const conn = this.conn!;
    for (;;) {
      const bytes = conn.read(this.plan.readChunk);
      if (bytes.length === 0) return;
      this.chunks.push(bytes);
      if (this.plan.readEvery > 0) return;
    }
  }

  maybeClose(): void {
    if (this.closeCalled || !this.connected || this.written < this.plan.data.length) return;
    if (this.plan.close === 'after-write' || (this.plan.close === 'after-end' && this.gotEnd)) {
      this.closeCalled = true;
      this.conn!.close();
    }
  }

  onEvent(e: TcpEvent): void {
    switch (e.kind) {
      case 'connected':
        this.connected = true;
        this.pump();
        break;
      case 'writable':
        this.pump();
        break;
      case 'readable':
        if (this.plan.readEvery === 0) this.read();
        break;
      case 'end':
        this.gotEnd = true;
        this.maybeClose();
        break;
      default:
        break;
    }
  }
}

function plan(p: Partial<AppPlan> = {}): AppPlan {
  return { data: EMPTY, writeChunk: 65536, readChunk: 65536, readEvery: 0, close: 'manual', ...p };
}

class Sim {
  now = 0;
  readonly a: Endpoint;
  readonly b: Endpoint;
  readonly #rng: () => number;
  #queue: { at: number; order: number; to: Side; s: Segment }[] = [];
  #order = 0;

  constructor(readonly o: SimOptions = {}) {
    this.#rng = prng(o.seed ?? 1);
    this.a = new Endpoint(plan(o.appA));
    this.b = new Endpoint(plan(o.appB));
    this.a.conn = TcpConnection.connect(this.#options('a', { isn: ISN, ...o.a }));
    this.#observe();
    this.a.start(this.now);
  }

  endpoint(side: Side): Endpoint {
    return side === 'a' ? this.a : this.b;
  }

  done(): boolean {
    return [this.a, this.b].every((ep) => ep.conn === undefined || (ep.conn.state === 'closed' && ep.conn.readable === 0));
  }

  /** Runs events in time order until `stop` holds, everything is closed, or time passes `until`. */
  run(until: number, stop: () => boolean = () => false): void {
    for (let steps = 0; !this.done() && !stop(); steps++) {
      if (steps > 2_000_000) throw new Error('simulation does not converge');
      const next = this.#nextTime();
      if (next === undefined || next > until) return;
      this.now = Math.max(this.now, next);
      for (let item = this.#due(); item !== undefined; item = this.#due()) {
        this.#deliver(item.to, item.s);
        this.#observe();
      }
      for (const ep of [this.a, this.b]) {
        const t = ep.conn?.nextTimer();
        if (t !== undefined && t <= this.now) ep.conn!.tick(this.now);
        // A slow reader's timer waits while there is nothing to read, to keep the event count down.
        if (ep.nextReadAt !== undefined && ep.nextReadAt <= this.now && ep.conn!.readable > 0) {
          ep.read();
          ep.nextReadAt = this.now + ep.plan.readEvery;
        }
      }
      this.#observe();
    }
  }

  /** Runs until both connections are established. */
  connect(): void {
    this.run(60_000, () => this.a.conn!.state === 'established' && this.b.conn?.state === 'established');
  }

  #options(side: Side, extra: Partial<TcpConnectionOptions>): TcpConnectionOptions {
    return {
      localPort: side === 'a' ? CLIENT_PORT : SERVER_PORT,
      remotePort: side === 'a' ? SERVER_PORT : CLIENT_PORT,
      isn: PEER_ISN,
      now: this.now,
      send: (s) => this.#transmit(side, s),
      event: (e) => {
        const ep = this.endpoint(side);
        ep.events.push({ at: this.now, e });
        this.#observe();
        ep.onEvent(e);
      },
      ...extra,
    };
  }

  #transmit(from: Side, s: Segment): void {
    const ep = this.endpoint(from);
    this.#observe();
    const onWire = from === 'a' ? wire(s, A_IP, B_IP) : wire(s, B_IP, A_IP);
    ep.sent.push({ at: this.now, s: onWire });
    if (this.o.drop?.(from, onWire)) return;
    const exempt = (s.flags & Syn) !== 0 && !this.o.loseSyns;
    if (!exempt && this.#rng() < (this.o.loss ?? 0)) return;
    const copies = this.#rng() < (this.o.dup ?? 0) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const at = this.now + (this.o.delay ?? 1) + Math.floor(this.#rng() * ((this.o.jitter ?? 0) + 1));
      this.#queue.push({ at, order: this.#order++, to: from === 'a' ? 'b' : 'a', s: onWire });
    }
  }

  #deliver(to: Side, s: Segment): void {
    const ep = this.endpoint(to);
    if (ep.conn !== undefined) {
      ep.conn.receive(s, this.now);
      return;
    }
    // The listener: a connection for the first SYN, nothing for anything else.
    if ((s.flags & (Syn | Ack | Rst)) !== Syn) return;
    ep.conn = TcpConnection.accept(this.#options('b', { isn: PEER_ISN, now: this.now, ...this.o.b }), s);
    this.#observe();
    ep.start(this.now);
  }

  #due(): { to: Side; s: Segment } | undefined {
    let best = -1;
    for (let i = 0; i < this.#queue.length; i++) {
      const q = this.#queue[i]!;
      if (q.at > this.now) continue;
      if (best < 0 || q.at < this.#queue[best]!.at || (q.at === this.#queue[best]!.at && q.order < this.#queue[best]!.order)) best = i;
    }
    return best < 0 ? undefined : this.#queue.splice(best, 1)[0];
  }

  #nextTime(): number | undefined {
    const times: number[] = this.#queue.map((q) => q.at);
    for (const ep of [this.a, this.b]) {
      const t = ep.conn?.nextTimer();
      if (t !== undefined) times.push(t);
      if (ep.nextReadAt !== undefined && ep.conn!.readable > 0) times.push(ep.nextReadAt);
    }
    return times.length === 0 ? undefined : Math.min(...times);
  }

  /** Records state changes, to check the paths the connections took. */
  #observe(): void {
    for (const ep of [this.a, this.b]) {
      const state = ep.conn?.state;
      if (state !== undefined && ep.states.at(-1)?.state !== state) ep.states.push({ at: this.now, state });
    }
  }
}

function path(ep: Endpoint): TcpState[] {
  return ep.states.map((s) => s.state);
}

// --- tests --------------------------------------------------------------------------

describe('TCP connection: handshake', () => {
  it('connects both sides, each SYN carrying our MSS and offering window scaling and SACK', () => {
    const sim = new Sim({ b: { mss: 1200 } });
    sim.connect();
    expect(sim.a.conn!.state).toBe('established');
    expect(sim.b.conn!.state).toBe('established');
    expect(sim.a.kinds()).toEqual(['connected']);
    expect(sim.b.kinds()).toEqual(['connected']);
    const [synFromA] = sim.a.sent.map((x) => x.s);
    const [synAck] = sim.b.sent.map((x) => x.s);
    expect(synFromA!.flags).toBe(Syn);
    expect(synAck!.flags).toBe(Syn | Ack);
    expect(synAck!.ack).toBe(u32(ISN + 1));
    // A 64 KiB buffer needs no shift; offering 0 still lets the peer scale its own windows.
    expect(parseTcpOptions(synFromA!.options!, 0, synFromA!.options!.length)).toEqual({ mss: 1460, sackPermitted: true, windowScale: 0 });
    expect(parseTcpOptions(synAck!.options!, 0, synAck!.options!.length)).toEqual({ mss: 1200, sackPermitted: true, windowScale: 0 });
  });

  it('sends no segment larger than the smaller of the two MSSes', () => {
    const sim = new Sim({ b: { mss: 536 }, appA: { data: pattern(20_000), close: 'after-write' }, appB: { data: pattern(20_000, 1), close: 'after-end' } });
    sim.run(600_000);
    const sizes = [...sim.a.sent, ...sim.b.sent].map((x) => x.s.payload.length);
    expect(Math.max(...sizes)).toBe(536);
    expectBytes(sim.b.received, pattern(20_000));
    expectBytes(sim.a.received, pattern(20_000, 1));
  });

  it('assumes an MSS of 536 when the SYN carries none', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.accept(options(rec), syn(PEER_ISN, null));
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1 }), 0);
    conn.write(pattern(3000));
    // The initial congestion window is 4 of those.
    expect(dataSent(rec).map((s) => s.payload.length)).toEqual([536, 536, 536, 536]);
  });

  it('answers a SYN asking for window scaling, SACK and timestamps with MSS, SACK and window scaling only', () => {
    const rec: Recorder = { sent: [], events: [] };
    const options_ = encodeTcpOptions({ mss: 1460, windowScale: 7, sackPermitted: true, timestamp: { value: 1, echo: 0 } }) as Uint8Array;
    TcpConnection.accept(options(rec), seg({ seq: PEER_ISN, flags: Syn, options: options_ }));
    const synAck = rec.sent[0]!;
    expect(parseTcpOptions(synAck.options!, 0, synAck.options!.length)).toEqual({ mss: 1460, sackPermitted: true, windowScale: 0 });
  });

  it('offers no SACK when told not to, in a SYN or a SYN-ACK', () => {
    const rec: Recorder = { sent: [], events: [] };
    const options_ = encodeTcpOptions({ mss: 1460, sackPermitted: true }) as Uint8Array;
    TcpConnection.accept(options(rec, { sack: false }), seg({ seq: PEER_ISN, flags: Syn, options: options_ }));
    TcpConnection.connect(options(rec, { sack: false }));
    for (const s of rec.sent) expect(parseTcpOptions(s.options!, 0, s.options!.length)).not.toHaveProperty('sackPermitted');
  });

  it('does not offer window scaling in a SYN-ACK when the SYN did not, and keeps its windows within 16 bits', () => {
    const { conn, rec, rcv, snd } = passive({ receiveBufferLimit: 256 * 1024 });
    const synAck = rec.sent[0]!;
    expect(parseTcpOptions(synAck.options!, 0, synAck.options!.length)).toEqual({ mss: 1460 });
    conn.receive(seg({ seq: rcv, ack: snd, payload: pattern(1000) }), 1);
    // The right edge stays where the SYN-ACK put it until it can move by an MSS.
    expect(rec.sent.at(-1)!.window).toBe(64535);
  });

  it('scales its windows both ways when both SYNs offer it (RFC 7323)', () => {
    const rec: Recorder = { sent: [], events: [] };
    const offer = encodeTcpOptions({ mss: 1460, windowScale: 3 }) as Uint8Array;
    const conn = TcpConnection.accept(options(rec, { receiveBufferLimit: 256 * 1024 }), seg({ seq: PEER_ISN, flags: Syn, window: 1000, options: offer }));
    const synAck = rec.sent[0]!;
    // 256 KiB needs a shift of 3 (65535 << 2 is just short); the SYN-ACK's own window is never scaled.
    expect(parseTcpOptions(synAck.options!, 0, synAck.options!.length)).toEqual({ mss: 1460, windowScale: 3 });
    expect(synAck.window).toBe(65535);
    // The peer's window field 10000 means 80000 bytes: more than 16 bits could say.
    conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1), window: 10_000 }), 1);
    conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1), window: 10_000, payload: pattern(100) }), 2);
    expect(rec.sent.at(-1)!.window).toBe((256 * 1024 - 100) >>> 3);
    let acked = u32(ISN + 1);
    // Acknowledge everything sent, round after round: slow start opens the congestion window until
    // the peer's scaled window (80000 bytes) is what limits the bytes in flight.
    let inFlight = 0;
    let seen = 0;
    for (let t = 3; t < 30; t++) {
      conn.write(pattern(conn.writableSpace));
      const round = dataSent(rec).slice(seen);
      seen += round.length;
      const end = u32(round.at(-1)!.seq + round.at(-1)!.payload.length);
      inFlight = Math.max(inFlight, u32(end - acked));
      // One ACK per segment, as a receiver without delayed ACKs sends them.
      for (const d of round) conn.receive(seg({ seq: u32(PEER_ISN + 101), ack: u32(d.seq + d.payload.length), window: 10_000 }), t);
      acked = end;
    }
    expect(inFlight).toBeGreaterThan(65535);
    expect(inFlight).toBeLessThanOrEqual(80_000);
  });

  it('answers a retransmitted SYN in SYN-RECEIVED with the SYN-ACK at once', () => {
    const { conn, rec } = passive({}, { complete: false });
    conn.receive(syn(PEER_ISN), 300);
    expect(rec.sent.map((s) => s.flags)).toEqual([Syn | Ack, Syn | Ack]);
    expect(conn.state).toBe('syn-received');
  });

  it('takes data that arrives with the ACK completing the handshake', () => {
    const { conn, rec } = passive({}, { complete: false });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(100) }), 0);
    expect(rec.events).toEqual([{ kind: 'connected' }, { kind: 'readable' }]);
    expect(conn.read()).toEqual(pattern(100));
    expect(rec.sent.at(-1)).toMatchObject({ flags: Ack, ack: PEER_ISN + 101 });
  });

  it('sends data written before the handshake completed once it does', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.connect(options(rec, { localPort: CLIENT_PORT, remotePort: SERVER_PORT }));
    expect(conn.write(pattern(100))).toBe(100);
    expect(rec.sent).toHaveLength(1);
    conn.receive(seg({ seq: PEER_ISN, ack: ISN + 1, flags: Syn | Ack, options: encodeTcpOptions({ mss: 1460 }) as Uint8Array }), 10);
    expect(conn.state).toBe('established');
    expect(dataSent(rec)).toEqual([expect.objectContaining({ seq: ISN + 1, ack: PEER_ISN + 1, payload: pattern(100) })]);
  });

  it('reports refused when an RST acknowledging our SYN answers it', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.connect(options(rec));
    conn.receive(seg({ seq: 0, ack: ISN + 1, flags: Rst | Ack }), 5);
    expect(rec.events).toEqual([{ kind: 'reset', reason: 'refused' }]);
    expect(conn.state).toBe('closed');
    expect(conn.nextTimer()).toBeUndefined();
  });

  it('ignores an RST in SYN-SENT that does not acknowledge our SYN', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.connect(options(rec));
    conn.receive(seg({ seq: 0, ack: ISN + 7, flags: Rst | Ack }), 5);
    conn.receive(seg({ seq: 0, flags: Rst }), 5);
    expect(rec.events).toEqual([]);
    expect(conn.state).toBe('syn-sent');
  });

  it('resets a half-open passive connection on an RST at RCV.NXT', () => {
    const { conn, rec } = passive({}, { complete: false });
    conn.receive(seg({ seq: PEER_ISN + 1, flags: Rst }), 5);
    expect(rec.events).toEqual([{ kind: 'reset', reason: 'rst-received' }]);
    expect(rec.sent).toHaveLength(1);
  });

  it('retransmits its SYN after 1, 2, 4 and 8 s and times out the active open at connectTimeout', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.connect(options(rec));
    const times: number[] = [];
    for (let now = conn.nextTimer(); now !== undefined; now = conn.nextTimer()) {
      times.push(now);
      conn.tick(now);
    }
    expect(times).toEqual([1000, 3000, 7000, 10_000]);
    expect(rec.sent.map((s) => s.flags)).toEqual([Syn, Syn, Syn, Syn]);
    expect(rec.events).toEqual([{ kind: 'reset', reason: 'connect-timeout' }]);
  });

  it('gives up the active open after 4 SYN retransmissions, without an RST', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.connect(options(rec, { connectTimeout: 1_000_000 }));
    const now = runTimers(conn, 0, 1_000_000);
    expect(rec.sent.map((s) => s.flags)).toEqual([Syn, Syn, Syn, Syn, Syn]);
    expect(rec.events).toEqual([{ kind: 'reset', reason: 'retransmit-timeout' }]);
    expect(now).toBe(31_000);
  });

  it('gives up a passive open after 4 SYN-ACK retransmissions', () => {
    const { conn, rec } = passive({}, { complete: false });
    const now = runTimers(conn, 0, 1_000_000);
    expect(rec.sent.map((s) => s.flags)).toEqual(Array(5).fill(Syn | Ack));
    expect(rec.events).toEqual([{ kind: 'reset', reason: 'retransmit-timeout' }]);
    expect(now).toBe(31_000);
  });

  it('gives a closed connection that sends nothing when accept() is handed something other than a SYN', () => {
    const rec: Recorder = { sent: [], events: [] };
    for (const flags of [Ack, Syn | Ack, Syn | Rst, 0]) {
      expect(TcpConnection.accept(options(rec), seg({ seq: PEER_ISN, flags })).state).toBe('closed');
    }
    expect(rec).toEqual({ sent: [], events: [] });
  });
});

describe('TCP connection: transfer', () => {
  it('moves 1 MB each way intact', () => {
    const up = pattern(1 << 20, 3);
    const down = pattern(1 << 20, 5);
    const sim = new Sim({ appA: { data: up, writeChunk: 10_000, close: 'after-write' }, appB: { data: down, writeChunk: 70_000, close: 'after-end' } });
    sim.run(3_600_000);
    expectBytes(sim.b.received, up);
    expectBytes(sim.a.received, down);
    expect(sim.a.kinds().at(-1)).toBe('closed');
    expect(sim.b.kinds().at(-1)).toBe('closed');
  });

  it('moves 1 MB each way to readers that stall, probing their closed windows', () => {
    const up = pattern(1 << 20, 7);
    const down = pattern(1 << 20, 9);
    const sim = new Sim({
      a: { receiveBufferLimit: 16_384 },
      b: { receiveBufferLimit: 8_192 },
      appA: { data: up, close: 'after-write', readChunk: 60_000, readEvery: 2_500 },
      appB: { data: down, close: 'after-end', readChunk: 50_000, readEvery: 3_000 },
    });
    sim.run(3_600_000);
    expectBytes(sim.b.received, up);
    expectBytes(sim.a.received, down);
    const closedWindows = sim.b.sent.filter((x) => x.s.window === 0 && !(x.s.flags & Rst));
    expect(closedWindows.length).toBeGreaterThan(0);
    // A probe: one byte sent into a window known to be closed.
    expect(sim.a.sent.filter((x) => x.s.payload.length === 1).length).toBeGreaterThan(0);
    expect(sim.a.kinds().at(-1)).toBe('closed');
    expect(sim.b.kinds().at(-1)).toBe('closed');
  });

  it('keeps probing a closed window for as long as the peer answers, backing off to a minute', () => {
    const sim = new Sim({ b: { receiveBufferLimit: 4096 }, appA: { data: pattern(100_000) }, appB: { readEvery: 0 } });
    sim.connect();
    // The reader stops reading for an hour.
    sim.b.plan.readEvery = 3_600_000;
    sim.b.nextReadAt = sim.now + 3_600_000;
    sim.run(sim.now + 3_600_000 - 1);
    expect(sim.a.conn!.state).toBe('established');
    const probes = sim.a.sent.filter((x) => x.s.payload.length === 1).map((x) => x.at);
    const gaps = probes.slice(1).map((t, i) => t - probes[i]!);
    expect(Math.max(...gaps)).toBe(60_000);
    expect(probes.length).toBeGreaterThan(50);
    sim.b.plan.readEvery = 0;
    sim.b.read();
    sim.a.conn!.close();
    sim.b.plan.close = 'after-end';
    sim.run(sim.now + 3_600_000);
    expectBytes(sim.b.received, pattern(100_000));
  });

  it('acknowledges every data segment at once, with the window left in the buffer', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 10_000 });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(1000) }), 1);
    conn.receive(seg({ seq: PEER_ISN + 1001, ack: ISN + 1, payload: pattern(1000) }), 2);
    expect(rec.sent.slice(1).map((s) => [s.ack, s.window])).toEqual([
      [PEER_ISN + 1001, 9000],
      [PEER_ISN + 2001, 8000],
    ]);
  });

  it('reopens a window left below an MSS only once it can grow by an MSS (no silly window)', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 10_000 });
    for (let i = 0; i < 6; i++) conn.receive(seg({ seq: PEER_ISN + 1 + i * 1460, ack: ISN + 1, payload: pattern(1460) }), 1);
    expect(rec.sent.at(-1)!.window).toBe(1240);
    const before = rec.sent.length;
    conn.read(1000);
    expect(rec.sent.length).toBe(before);
    conn.read(500);
    expect(rec.sent.slice(before)).toEqual([expect.objectContaining({ flags: Ack, ack: PEER_ISN + 1 + 8760, window: 2740 })]);
  });

  it('sends no window update while the peer still has half the new window to fill', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 10_000 });
    for (let i = 0; i < 3; i++) conn.receive(seg({ seq: PEER_ISN + 1 + i * 1460, ack: ISN + 1, payload: pattern(1460) }), 1);
    expect(rec.sent.at(-1)!.window).toBe(5620);
    const before = rec.sent.length;
    conn.read(1460);
    conn.read();
    expect(rec.sent.length).toBe(before);
    // The ACK of the peer's next segment carries the room the reads made.
    conn.receive(seg({ seq: PEER_ISN + 1 + 4380, ack: ISN + 1, payload: pattern(1460) }), 2);
    expect(rec.sent.slice(before)).toEqual([expect.objectContaining({ ack: PEER_ISN + 1 + 5840, window: 8540 })]);
  });

  it('sends a window update when a read at least doubles the window', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 10_000 });
    for (let i = 0; i < 5; i++) conn.receive(seg({ seq: PEER_ISN + 1 + i * 1460, ack: ISN + 1, payload: pattern(1460) }), 1);
    expect(rec.sent.at(-1)!.window).toBe(2700);
    const before = rec.sent.length;
    conn.read(2000);
    expect(rec.sent.length).toBe(before);
    conn.read(1000);
    expect(rec.sent.slice(before)).toEqual([expect.objectContaining({ flags: Ack, ack: PEER_ISN + 1 + 7300, window: 5700 })]);
  });

  it('offers buffered bytes to readInto in place, piece by piece across the buffer wrap, and counts only what the sink takes', () => {
    const { conn } = passive({ receiveBufferLimit: 4096 });
    const data = pattern(5000);
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: data.subarray(0, 3000) }), 1);
    expect(conn.read(2000)).toEqual(data.subarray(0, 2000));
    conn.receive(seg({ seq: PEER_ISN + 3001, ack: ISN + 1, payload: data.subarray(3000, 5000) }), 2);
    expect(conn.readInto((piece) => Math.min(100, piece.length))).toBe(100);
    const pieces: Uint8Array[] = [];
    expect(conn.readInto((piece) => (pieces.push(piece.slice()), piece.length))).toBe(2900);
    // The 4 KiB ring wrapped: two pieces, which together are the bytes in order.
    expect(pieces.map((p) => p.length)).toEqual([1996, 904]);
    expect(Buffer.concat(pieces)).toEqual(Buffer.from(data.subarray(2100)));
    expect(conn.readable).toBe(0);
  });

  it('trims data beyond the window and advertises a closed window', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 1000 });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(1460) }), 1);
    expect(conn.readable).toBe(1000);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 1001, window: 0 });
    expect(conn.read()).toEqual(pattern(1460).subarray(0, 1000));
  });

  it('takes a bare FIN while its window is closed, but no data', () => {
    const { conn, rec } = passive({ receiveBufferLimit: 100 });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(100) }), 1);
    conn.receive(seg({ seq: PEER_ISN + 101, ack: ISN + 1, payload: pattern(1), flags: Ack | Fin }), 2);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 101, window: 0 });
    expect(conn.state).toBe('established');
    conn.receive(seg({ seq: PEER_ISN + 101, ack: ISN + 1, flags: Ack | Fin }), 3);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 102, window: 0 });
    expect(conn.state).toBe('close-wait');
    expect(conn.read()).toEqual(pattern(100));
  });

  it('keeps an out-of-order segment until the gap before it fills, answering it with a duplicate ACK', () => {
    const { conn, rec } = passive();
    const bytes = pattern(300);
    conn.receive(seg({ seq: PEER_ISN + 101, ack: ISN + 1, payload: bytes.subarray(100, 200) }), 1);
    expect(rec.sent.at(-1)).toMatchObject({ flags: Ack, ack: PEER_ISN + 1 });
    expect(conn.readable).toBe(0);
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: bytes.subarray(0, 100) }), 2);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 201 });
    expect(rec.sent.at(-1)!.options ?? EMPTY).toEqual(EMPTY);
    expect(conn.read()).toEqual(bytes.subarray(0, 200));
  });

  it('reports the bytes it holds past a gap in SACK blocks, the latest first (RFC 2018)', () => {
    const { conn, rec } = passiveWithSack();
    const bytes = pattern(1000);
    const sackOf = (s: Segment) => (parseTcpOptions(s.options!, 0, s.options!.length) as { sackBlocks?: unknown }).sackBlocks;
    conn.receive(seg({ seq: PEER_ISN + 201, ack: ISN + 1, payload: bytes.subarray(200, 300) }), 1);
    expect(sackOf(rec.sent.at(-1)!)).toEqual([{ left: PEER_ISN + 201, right: PEER_ISN + 301 }]);
    conn.receive(seg({ seq: PEER_ISN + 501, ack: ISN + 1, payload: bytes.subarray(500, 600) }), 2);
    conn.receive(seg({ seq: PEER_ISN + 301, ack: ISN + 1, payload: bytes.subarray(300, 400) }), 3);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 1 });
    expect(sackOf(rec.sent.at(-1)!)).toEqual([
      { left: PEER_ISN + 201, right: PEER_ISN + 401 },
      { left: PEER_ISN + 501, right: PEER_ISN + 601 },
    ]);
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: bytes.subarray(0, 200) }), 4);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 401 });
    expect(sackOf(rec.sent.at(-1)!)).toEqual([{ left: PEER_ISN + 501, right: PEER_ISN + 601 }]);
    conn.receive(seg({ seq: PEER_ISN + 401, ack: ISN + 1, payload: bytes.subarray(400, 500) }), 5);
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 601 });
    expect(rec.sent.at(-1)!.options ?? EMPTY).toEqual(EMPTY);
    expect(conn.read()).toEqual(bytes.subarray(0, 600));
  });

  it('shortens the data segments that carry SACK blocks by the blocks, so the datagram stays within the MTU', () => {
    const { conn, rec, rcv } = passiveWithSack();
    conn.receive(seg({ seq: rcv + 1000, ack: ISN + 1, payload: pattern(100) }), 1);
    conn.receive(seg({ seq: rcv + 3000, ack: ISN + 1, payload: pattern(100) }), 2);
    conn.write(pattern(2920));
    const data = dataSent(rec);
    // Two blocks: 4 + 16 option bytes.
    expect(data.map((s) => s.options!.length)).toEqual([20, 20, 20]);
    expect(data.map((s) => s.payload.length)).toEqual([1440, 1440, 40]);
  });

  it('takes an MSS below 88 as 88, so SACK blocks always leave room for data', () => {
    const rec: Recorder = { sent: [], events: [] };
    const sackSyn = seg({ seq: PEER_ISN, flags: Syn, options: encodeTcpOptions({ mss: 1460, sackPermitted: true }) as Uint8Array });
    const conn = TcpConnection.accept(options(rec, { mss: 30 }), sackSyn);
    expect(parseTcpOptions(rec.sent[0]!.options!, 0, rec.sent[0]!.options!.length)).toMatchObject({ mss: 88 });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1 }), 0);
    for (let i = 0; i < 4; i++) conn.receive(seg({ seq: PEER_ISN + 11 + 20 * i, ack: ISN + 1, payload: pattern(5) }), 0);
    conn.write(pattern(100));
    // Four blocks take 36 of the 88 bytes.
    expect(dataSent(rec).map((s) => s.payload.length)).toEqual([52, 48]);
  });

  it('sends no SACK blocks to a peer that did not permit them', () => {
    const { conn, rec } = passive();
    conn.receive(seg({ seq: PEER_ISN + 101, ack: ISN + 1, payload: pattern(100) }), 1);
    expect(rec.sent.at(-1)!.options ?? EMPTY).toEqual(EMPTY);
  });

  it('keeps no more than 32 separate ranges ahead of a gap', () => {
    const { conn, rec } = passiveWithSack({ receiveBufferLimit: 4096 });
    const bytes = pattern(100);
    const send = (offset: number, at: number) => conn.receive(seg({ seq: PEER_ISN + 1 + offset, ack: ISN + 1, payload: bytes.subarray(offset, offset + 1) }), at);
    // One-byte islands at offsets 2, 4, ... 80: the first 32 (up to 64) are kept, the rest are not.
    for (let i = 1; i <= 40; i++) send(2 * i, i);
    // Filling the gaps in order joins the kept islands up to offset 65; offset 66 was not kept.
    for (let offset = 0; offset <= 65; offset += offset === 0 ? 1 : 2) send(offset, 50 + offset);
    expect(rec.sent.at(-1)!.ack).toBe(PEER_ISN + 1 + 66);
    expect(conn.read()).toEqual(bytes.subarray(0, 66));
  });

  it('takes only the new part of a segment that overlaps bytes already received', () => {
    const { conn } = passive();
    const bytes = pattern(300);
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: bytes.subarray(0, 100) }), 1);
    conn.receive(seg({ seq: PEER_ISN + 51, ack: ISN + 1, payload: bytes.subarray(50, 250) }), 2);
    expect(conn.read()).toEqual(bytes.subarray(0, 250));
  });

  it('acknowledges a duplicate segment again without taking its bytes', () => {
    const { conn, rec } = passive();
    const chunk = seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(100) });
    conn.receive(chunk, 1);
    conn.receive(chunk, 2);
    expect(rec.sent.slice(1).map((s) => s.ack)).toEqual([PEER_ISN + 101, PEER_ISN + 101]);
    expect(conn.readable).toBe(100);
  });

  it('stops taking writes at the send buffer limit and says when there is room again', () => {
    const { conn, rec } = passive({ sendBufferLimit: 5000 });
    expect(conn.write(pattern(8000))).toBe(5000);
    expect(conn.writableSpace).toBe(0);
    const first = dataSent(rec)[0]!;
    conn.receive(seg({ seq: PEER_ISN + 1, ack: first.seq + first.payload.length }), 10);
    expect(rec.events.at(-1)).toEqual({ kind: 'writable' });
    expect(conn.writableSpace).toBe(first.payload.length);
  });

  it('says there is room again after a write that filled the send buffer exactly (a writer that asked writableSpace first)', () => {
    const { conn, rec } = passive({ sendBufferLimit: 5000 });
    expect(conn.write(pattern(conn.writableSpace))).toBe(5000);
    const first = dataSent(rec)[0]!;
    conn.receive(seg({ seq: PEER_ISN + 1, ack: first.seq + first.payload.length }), 10);
    expect(rec.events.at(-1)).toEqual({ kind: 'writable' });
  });

  it('sends no more than the initial congestion window before the first ACK', () => {
    const { conn, rec } = passive();
    conn.write(pattern(100_000));
    expect(dataSent(rec).reduce((n, s) => n + s.payload.length, 0)).toBe(4380);
  });

  it('sends no more than the peer window allows', () => {
    const { conn, rec } = passive({}, { window: 1000 });
    conn.write(pattern(100_000));
    expect(dataSent(rec).map((s) => s.payload.length)).toEqual([1000]);
  });

  it('holds back a runt segment while a full one is in flight (sender silly window avoidance)', () => {
    const { conn, rec, rcv, snd } = passive({}, { window: 2000 });
    conn.write(pattern(100_000));
    expect(dataSent(rec).map((s) => s.payload.length)).toEqual([1460]);
    conn.receive(seg({ seq: rcv, ack: snd + 1460, window: 2000 }), 10);
    expect(dataSent(rec).map((s) => s.payload.length)).toEqual([1460, 1460]);
  });

  it('sends a new segment on each of the first two duplicate ACKs (limited transmit), and the first unacknowledged one again on the third', () => {
    const { conn, rec, snd, rcv } = passive();
    const bytes = pattern(20_000);
    conn.write(bytes);
    const sent = rec.sent.length;
    const next = snd + 3 * 1460;
    conn.receive(seg({ seq: rcv, ack: snd }), 10);
    conn.receive(seg({ seq: rcv, ack: snd }), 11);
    expect(rec.sent.slice(sent).map((s) => s.seq)).toEqual([next, next + 1460]);
    conn.receive(seg({ seq: rcv, ack: snd }), 12);
    expect(rec.sent.slice(sent + 2)[0]).toMatchObject({ seq: snd, payload: bytes.subarray(0, 1460) });
  });

  it('sets the retransmission timeout to SRTT + 4 RTTVAR from the first RTT sample', () => {
    const rec: Recorder = { sent: [], events: [] };
    const conn = TcpConnection.accept(options(rec), syn(PEER_ISN));
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1 }), 100);
    conn.write(pattern(10));
    // SRTT 100, RTTVAR 50.
    expect(conn.nextTimer()).toBe(100 + 300);
  });

  it('keeps a backed-off timeout when the ACK may be for a retransmission (Karn)', () => {
    const { conn, rcv } = passive();
    conn.write(pattern(10));
    conn.tick(200);
    conn.receive(seg({ seq: rcv, ack: ISN + 11 }), 201);
    conn.write(pattern(10));
    expect(conn.nextTimer()).toBe(201 + 400);
  });

  it('backs off the retransmission timeout from its RTT estimate, then resets the peer after 10 retransmissions', () => {
    const { conn, rec } = passive();
    conn.write(pattern(100));
    const times: number[] = [];
    let now = 0;
    const send = rec.sent.push.bind(rec.sent);
    rec.sent.push = (...s) => (times.push(now), send(...s));
    while (conn.state !== 'closed') {
      now = conn.nextTimer()!;
      conn.tick(now);
    }
    const gaps = times.map((t, i) => t - (times[i - 1] ?? 0));
    // A 0 ms handshake RTT gives the 200 ms floor; each timeout doubles it up to the 60 s cap.
    expect(gaps).toEqual([200, 400, 800, 1600, 3200, 6400, 12_800, 25_600, 51_200, 60_000, 60_000]);
    expect(rec.sent.slice(-11, -1).every((s) => s.seq === ISN + 1 && s.payload.length === 100)).toBe(true);
    expect(rec.sent.at(-1)).toMatchObject({ flags: Rst | Ack, seq: ISN + 101 });
    expect(rec.events.at(-1)).toEqual({ kind: 'reset', reason: 'retransmit-timeout' });
  });

  it('keeps every byte in order under random loss, duplication and reordering', () => {
    // At 20% loss a run of 10 failed exchanges (data or ACK lost each time, p = 0.36^10) does happen
    // over thousands of segments, and then giving up is right: such runs must end in a reset with
    // what arrived a prefix of what was sent, and must stay rare.
    const RUNS = 200;
    let gaveUp = 0;
    const side = fc.record({
      bytes: fc.integer({ min: 0, max: 40_000 }),
      writeChunk: fc.integer({ min: 1, max: 30_000 }),
      readChunk: fc.integer({ min: 1, max: 30_000 }),
      readEvery: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 300 })),
      mss: fc.integer({ min: 100, max: 1460 }),
      sendBufferLimit: fc.integer({ min: 1, max: 100_000 }),
      receiveBufferLimit: fc.integer({ min: 1, max: 70_000 }),
      isn: fc.integer({ min: 0, max: 0xffffffff }),
      sack: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.record({
          seed: fc.integer(),
          loss: fc.double({ min: 0, max: 0.2, noNaN: true }),
          dup: fc.double({ min: 0, max: 0.1, noNaN: true }),
          jitter: fc.integer({ min: 0, max: 30 }),
          closer: fc.constantFrom('a', 'b', 'both'),
          a: side,
          b: side,
        }),
        (p) => {
          const connection = (s: typeof p.a) => ({ isn: s.isn, mss: s.mss, sendBufferLimit: s.sendBufferLimit, receiveBufferLimit: s.receiveBufferLimit, sack: s.sack });
          // Tiny buffers move a few bytes per round trip: cap the transfer so a run stays cheap.
          const bytes = (from: typeof p.a, to: typeof p.a) => Math.min(from.bytes, 200 * Math.min(from.sendBufferLimit, to.receiveBufferLimit));
          const aBytes = bytes(p.a, p.b);
          const bBytes = bytes(p.b, p.a);
          const app = (s: typeof p.a, n: number, salt: number, first: boolean): Partial<AppPlan> => ({
            data: pattern(n, salt),
            writeChunk: s.writeChunk,
            readChunk: s.readChunk,
            readEvery: s.readEvery,
            close: first ? 'after-write' : 'after-end',
          });
          const sim = new Sim({
            seed: p.seed,
            loss: p.loss,
            dup: p.dup,
            jitter: p.jitter,
            a: connection(p.a),
            b: connection(p.b),
            appA: app(p.a, aBytes, 1, p.closer !== 'b'),
            appB: app(p.b, bBytes, 2, p.closer !== 'a'),
          });
          sim.run(4 * 3_600_000);
          const resets = [sim.a, sim.b].flatMap((ep) => ep.kinds().filter((k) => k.startsWith('reset')));
          if (resets.length > 0) {
            gaveUp++;
            expect(resets).toContain('reset:retransmit-timeout');
            expect(resets.every((r) => r === 'reset:retransmit-timeout' || r === 'reset:rst-received')).toBe(true);
            expectBytes(sim.b.received, pattern(aBytes, 1).subarray(0, sim.b.received.length));
            expectBytes(sim.a.received, pattern(bBytes, 2).subarray(0, sim.a.received.length));
            return;
          }
          expectBytes(sim.b.received, pattern(aBytes, 1));
          expectBytes(sim.a.received, pattern(bBytes, 2));
          for (const ep of [sim.a, sim.b]) {
            expect(ep.conn!.state).toBe('closed');
            expect(ep.kinds().filter((k) => k !== 'readable' && k !== 'writable')).toEqual(['connected', 'end', 'closed']);
          }
        },
      ),
      { numRuns: RUNS },
    );
    expect(gaveUp).toBeLessThanOrEqual(RUNS * 0.05);
  });

  it('works across sequence number wrap-around', () => {
    const up = pattern(300_000, 11);
    const down = pattern(300_000, 13);
    const sim = new Sim({
      seed: 7,
      loss: 0.05,
      jitter: 5,
      a: { isn: 0xffffff00 },
      b: { isn: 0xfffffff0 },
      appA: { data: up, close: 'after-write' },
      appB: { data: down, close: 'after-end' },
    });
    sim.run(3_600_000);
    expectBytes(sim.b.received, up);
    expectBytes(sim.a.received, down);
    expect(sim.a.sent.some((x) => x.s.seq < 0x1000)).toBe(true);
    expect(sim.a.kinds().at(-1)).toBe('closed');
    expect(sim.b.kinds().at(-1)).toBe('closed');
  });
});

describe('TCP connection: loss recovery', () => {
  const counters = (): TcpLossCounters => ({ segments_retransmitted: 0, retransmit_timeouts: 0, fast_recoveries: 0, segments_out_of_order: 0, tail_loss_probes: 0 });

  /** A 200 kB transfer from a to b whose link loses the first copies of the data segments at `lost` (byte offsets). */
  function lossySim(lost: number[], sack = true) {
    const dropped = new Set<number>();
    const lossA = counters();
    const lossB = counters();
    const sim = new Sim({
      a: { sack, lossCounters: lossA },
      b: { sack, lossCounters: lossB, receiveBufferLimit: 256 * 1024 },
      appA: { data: pattern(200_000), close: 'after-write' },
      appB: { close: 'after-end' },
      drop: (from, s) => {
        const offset = u32(s.seq - ISN - 1);
        if (from !== 'a' || s.payload.length === 0 || !lost.includes(offset) || dropped.has(offset)) return false;
        dropped.add(offset);
        return true;
      },
    });
    /** The data segments a sent again, in order. */
    const resent = () => {
      const data = sim.a.sent.filter((x) => x.s.payload.length > 0);
      return data.filter((x, i) => data.findIndex((y) => y.s.seq === x.s.seq) < i);
    };
    return { sim, lossA, lossB, resent };
  }

  it('resends each segment lost from one window once, within a round trip, and nothing the peer SACKed', () => {
    const lost = [100, 102, 105, 106].map((n) => n * 1460);
    const { sim, lossA, lossB, resent } = lossySim(lost);
    sim.run(600_000);
    expectBytes(sim.b.received, pattern(200_000));
    expect(resent().map((x) => u32(x.s.seq - ISN - 1))).toEqual(lost);
    expect(lossA).toMatchObject({ segments_retransmitted: 4, retransmit_timeouts: 0, fast_recoveries: 1 });
    expect(lossB.segments_out_of_order).toBeGreaterThan(0);
    // All four went out within one round trip (the link takes 1 ms each way); NewReno needs one each.
    const times = resent().map((x) => x.at);
    expect(Math.max(...times) - Math.min(...times)).toBeLessThan(2);
  });

  it('without SACK, recovers the same losses by NewReno, one per round trip', () => {
    const lost = [100, 102, 105, 106].map((n) => n * 1460);
    const { sim, lossA, resent } = lossySim(lost, false);
    sim.run(600_000);
    expectBytes(sim.b.received, pattern(200_000));
    expect(lossA.fast_recoveries).toBe(1);
    expect(lossA.retransmit_timeouts).toBe(0);
    const times = resent().map((x) => x.at);
    expect(Math.max(...times) - Math.min(...times)).toBeGreaterThanOrEqual(2 * 3);
  });

  it('resends a segment lost near the end of a transfer on fewer than three duplicate ACKs (early retransmit)', () => {
    // 200,000 bytes end in a segment of 1440 bytes at offset 136 * 1460: lose the one before it.
    const { sim, lossA, resent } = lossySim([135 * 1460]);
    sim.run(600_000);
    expectBytes(sim.b.received, pattern(200_000));
    expect(lossA).toMatchObject({ segments_retransmitted: 1, retransmit_timeouts: 0 });
    const lostAt = sim.a.sent.find((x) => x.s.seq === ISN + 1 + 135 * 1460)!.at;
    expect(resent()[0]!.at - lostAt).toBeLessThan(200);
  });

  it('probes a tail whose ACKs stopped, well before the retransmission timeout (RFC 8985 tail loss probe)', () => {
    // 20 segments; the last two are lost, so no duplicate ACK ever comes.
    const lossA = counters();
    const total = 20 * 1460;
    const lost = new Set([18 * 1460, 19 * 1460]);
    const sim = new Sim({
      a: { lossCounters: lossA },
      appA: { data: pattern(total) },
      drop: (from, s) => from === 'a' && s.payload.length > 0 && lost.delete(u32(s.seq - ISN - 1)),
    });
    sim.run(5_000, () => sim.b.received.length === total);
    expectBytes(sim.b.received, pattern(total));
    expect(lossA).toMatchObject({ tail_loss_probes: 1, retransmit_timeouts: 0 });
    // The probe resent the last segment; its SACK showed the one before it lost.
    expect(sim.now).toBeLessThan(100);
  });

  it('sends no tail loss probe to a peer without SACK: the timeout resends', () => {
    const lossA = counters();
    const total = 20 * 1460;
    const lost = new Set([18 * 1460, 19 * 1460]);
    const sim = new Sim({
      a: { lossCounters: lossA, sack: false },
      appA: { data: pattern(total) },
      drop: (from, s) => from === 'a' && s.payload.length > 0 && lost.delete(u32(s.seq - ISN - 1)),
    });
    sim.run(5_000, () => sim.b.received.length === total);
    expectBytes(sim.b.received, pattern(total));
    expect(lossA).toMatchObject({ tail_loss_probes: 0, retransmit_timeouts: 1 });
  });

  it('sends a lost resend again once bytes sent after it are SACKed, without waiting for the timeout', () => {
    const at = 30 * 1460;
    let copies = 0;
    const lossA = counters();
    const sim = new Sim({
      a: { lossCounters: lossA },
      b: { receiveBufferLimit: 256 * 1024 },
      appA: { data: pattern(1_000_000), close: 'after-write' },
      appB: { close: 'after-end' },
      drop: (from, s) => from === 'a' && s.seq === ISN + 1 + at && s.payload.length > 0 && copies++ < 2,
    });
    sim.run(600_000);
    expectBytes(sim.b.received, pattern(1_000_000));
    expect(copies).toBe(3);
    expect(lossA).toMatchObject({ retransmit_timeouts: 0, fast_recoveries: 1 });
  });

  it('falls back to the retransmission timeout when a resend is lost and nothing sent after it can show that', () => {
    const lost = 100 * 1460;
    let copies = 0;
    const lossA = counters();
    const sim = new Sim({
      a: { lossCounters: lossA },
      appA: { data: pattern(200_000), close: 'after-write' },
      appB: { close: 'after-end' },
      drop: (from, s) => from === 'a' && s.seq === ISN + 1 + lost && s.payload.length > 0 && copies++ < 2,
    });
    sim.run(600_000);
    expectBytes(sim.b.received, pattern(200_000));
    expect(lossA.retransmit_timeouts).toBe(1);
    expect(lossA.fast_recoveries).toBe(1);
  });
});

describe('TCP connection: RACK loss detection and window growth', () => {
  const MSS = 1460;
  const counters = (): TcpLossCounters => ({ segments_retransmitted: 0, retransmit_timeouts: 0, fast_recoveries: 0, segments_out_of_order: 0, tail_loss_probes: 0 });

  /**
   * A connection accepted from a SACK-permitting peer whose handshake took
   * `rtt` ms (its first RTT sample), with `total` bytes written at once: the
   * initial window sends segments 0 to 2.
   */
  function sender(rtt: number, total = 40 * MSS) {
    const rec: Recorder = { sent: [], events: [] };
    const loss = counters();
    const synOptions = encodeTcpOptions({ mss: MSS, sackPermitted: true }) as Uint8Array;
    const conn = TcpConnection.accept(options(rec, { lossCounters: loss }), seg({ seq: PEER_ISN, flags: Syn, options: synOptions }));
    conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1) }), rtt);
    conn.write(pattern(total));
    /** The peer's ACK at `now` of the first `acked` segments, SACKing the segment ranges [from, to). */
    const ack = (now: number, acked: number, ...blocks: [number, number][]) => {
      const sackBlocks = blocks.map(([from, to]) => ({ left: u32(ISN + 1 + from * MSS), right: u32(ISN + 1 + to * MSS) }));
      const opts = sackBlocks.length > 0 ? { options: encodeTcpOptions({ sackBlocks }) as Uint8Array } : {};
      conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1 + acked * MSS), window: 65535, ...opts }), now);
    };
    /** Indexes of the data segments sent from the `from`th on. */
    const sentSince = (from: number) => dataSent(rec).slice(from).map((s) => u32(s.seq - ISN - 1) / MSS);
    return { conn, rec, loss, ack, sentSince };
  }

  it('resends a segment once one sent after it is SACKed and a quarter of the least RTT has passed, without waiting for three (RFC 8985)', () => {
    const { conn, rec, loss, ack, sentSince } = sender(8);
    expect(sentSince(0)).toEqual([0, 1, 2]);
    const before = dataSent(rec).length;
    // Segment 1 arrived and 0 did not: within the reordering window (8 / 4 ms) 0 may still come.
    ack(16, 0, [1, 2]);
    expect(sentSince(before)).toEqual([3]); // limited transmit, nothing resent
    conn.tick(17);
    expect(sentSince(before)).toEqual([3]);
    conn.tick(18);
    expect(sentSince(before)).toEqual([3, 0]);
    expect(loss).toMatchObject({ fast_recoveries: 1, retransmit_timeouts: 0, tail_loss_probes: 0 });
  });

  it('asks to be ticked when the reordering window ends, a periodic tick being too coarse for it', () => {
    const armed: number[] = [];
    const rec: Recorder = { sent: [], events: [] };
    const synOptions = encodeTcpOptions({ mss: MSS, sackPermitted: true }) as Uint8Array;
    const conn = TcpConnection.accept(options(rec, { timerArmed: (at) => armed.push(at) }), seg({ seq: PEER_ISN, flags: Syn, options: synOptions }));
    conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1) }), 8);
    conn.write(pattern(40 * MSS));
    const sackBlocks = [{ left: u32(ISN + 1 + MSS), right: u32(ISN + 1 + 2 * MSS) }];
    conn.receive(seg({ seq: u32(PEER_ISN + 1), ack: u32(ISN + 1), options: encodeTcpOptions({ sackBlocks }) as Uint8Array }), 16);
    expect(armed).toContain(18);
    expect(conn.shortTimeout).toBe(18);
  });

  it('resends nothing when the segment a SACK skipped arrives within the reordering window', () => {
    const { conn, loss, ack, rec } = sender(8);
    ack(16, 0, [1, 2]);
    ack(17, 2);
    runTimers(conn, 17, 150);
    const data = dataSent(rec);
    expect(new Set(data.map((s) => s.seq)).size).toBe(data.length);
    expect(loss).toMatchObject({ segments_retransmitted: 0, fast_recoveries: 0 });
  });

  it('in recovery, resends at once a segment that one sent after it overtook, however few are SACKed above it', () => {
    const { conn, ack, sentSince } = sender(8);
    ack(16, 0, [1, 2]);
    conn.tick(18); // recovery: 0 resent
    const mark = sentSince(0).length;
    // 3 arrived, 2 did not: only one SACKed segment lies above 2, which counting (RFC 6675) does not take for a loss.
    ack(19, 0, [1, 2], [3, 4]);
    expect(sentSince(mark)).toEqual([2]);
  });

  it('starts recovery on an ACK that acknowledges new bytes when its SACK blocks show a segment lost', () => {
    // Round trips under a millisecond: no reordering window to wait.
    const { ack, sentSince, loss } = sender(0);
    ack(1, 1); // 3 and 4 go out
    const mark = sentSince(0).length;
    ack(2, 2, [3, 5]);
    expect(sentSince(mark)).toContain(2);
    expect(loss.fast_recoveries).toBe(1);
  });

  it('once the peer has reordered, waits the reordering window in recovery too', () => {
    const { conn, ack, sentSince } = sender(8);
    ack(16, 0, [1, 2]);
    ack(17, 1); // 0 came late: the link reorders
    ack(17, 2);
    const mark = sentSince(0).length;
    expect(sentSince(0)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    // Three SACKed above 2 make it lost by count; 5, with only 6 above it, waits the window (8 / 4 ms).
    ack(24, 2, [3, 5], [6, 7]);
    expect(sentSince(mark)).toEqual([2]);
    conn.tick(26);
    expect(sentSince(mark)).toEqual([2, 5]);
  });

  it('grows the window in congestion avoidance by an MSS per window of bytes acknowledged, however many ACKs carry them (RFC 5681 3.1)', () => {
    const { conn, ack, sentSince, loss } = sender(0);
    // Nothing is acknowledged: the timeout leaves ssthresh at 2 segments and resends segment 0.
    runTimers(conn, 0, 1000, () => loss.retransmit_timeouts === 1);
    ack(300, 1); // slow start: cwnd 2 segments, so 1 and 2 go again
    const mark = sentSince(0).length;
    ack(301, 3); // both in one ACK: a whole window acknowledged in avoidance
    expect(sentSince(mark)).toHaveLength(3);
  });

  it('does not resend a segment whose retransmission is still on its way when the ACK that ends one recovery starts the next', () => {
    const { ack, sentSince, loss } = sender(0);
    ack(1, 1);
    ack(2, 2);
    ack(3, 3);
    expect(sentSince(0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    ack(4, 3, [4, 5]); // 3 lost: recovery up to segment 8, 3 resent
    ack(5, 3, [4, 6]);
    ack(6, 3, [4, 7]);
    ack(7, 3, [4, 8]);
    ack(8, 3, [4, 9]);
    expect(sentSince(0)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 3, 9, 10]);
    // 9, sent in recovery, is lost too (10 arrived): resent, with 3 again (10 went after its resend).
    ack(9, 3, [4, 9], [10, 11]);
    const mark = sentSince(0).length;
    expect(sentSince(0).slice(12)).toContain(9);
    // The resent 3 arrives, ending the recovery; 9's resend is still on its way, and nothing says it is lost.
    ack(10, 9, [10, 11]);
    expect(sentSince(mark)).not.toContain(9);
    expect(loss.segments_retransmitted).toBe(3);
  });

  it('sends its tail loss probe two round trips after the last ACK even when they take under 10 ms (RFC 8985 7.2)', () => {
    const { conn, loss } = sender(1);
    expect(conn.shortTimeout).toBe(3);
    runTimers(conn, 1, 5);
    expect(loss.tail_loss_probes).toBe(1);
  });
});

describe('TCP connection: close', () => {
  it('closes orderly when the active opener closes first', () => {
    const sim = new Sim({ a: { timeWait: 5000 }, appA: { data: pattern(10_000), close: 'after-write' }, appB: { data: pattern(5000), close: 'after-end' } });
    sim.run(600_000);
    expect(path(sim.a)).toEqual(['syn-sent', 'established', 'fin-wait-1', 'fin-wait-2', 'time-wait', 'closed']);
    expect(path(sim.b)).toEqual(['syn-received', 'established', 'close-wait', 'last-ack', 'closed']);
    expectBytes(sim.b.received, pattern(10_000));
    expectBytes(sim.a.received, pattern(5000));
    expect(sim.a.kinds().at(-1)).toBe('closed');
    expect(sim.b.kinds().at(-1)).toBe('closed');
  });

  it('closes orderly when the passive opener closes first', () => {
    const sim = new Sim({ b: { timeWait: 5000 }, appA: { close: 'after-end' }, appB: { data: pattern(3000), close: 'after-write' } });
    sim.run(600_000);
    expect(path(sim.b)).toEqual(['syn-received', 'established', 'fin-wait-1', 'fin-wait-2', 'time-wait', 'closed']);
    expect(path(sim.a)).toEqual(['syn-sent', 'established', 'close-wait', 'last-ack', 'closed']);
    expectBytes(sim.a.received, pattern(3000));
  });

  it('passes through CLOSING when both sides close at once', () => {
    const sim = new Sim({ a: { timeWait: 5000 }, b: { timeWait: 5000 } });
    sim.connect();
    sim.a.conn!.close();
    sim.b.conn!.close();
    sim.run(600_000);
    for (const ep of [sim.a, sim.b]) {
      expect(path(ep).slice(-5)).toEqual(['established', 'fin-wait-1', 'closing', 'time-wait', 'closed']);
      expect(ep.kinds()).toEqual(['connected', 'end', 'closed']);
    }
  });

  it('stays in TIME-WAIT for timeWait ms', () => {
    const sim = new Sim({ a: { timeWait: 12_345 }, appA: { close: 'after-write' }, appB: { close: 'after-end' } });
    sim.run(600_000);
    const entered = sim.a.states.find((s) => s.state === 'time-wait')!.at;
    const closed = sim.a.events.find((x) => x.e.kind === 'closed')!.at;
    expect(closed - entered).toBe(12_345);
  });

  it('skips TIME-WAIT when its host holds too many: acknowledges the FIN, reports the end, then closes', () => {
    const down = pattern(5000);
    const sim = new Sim({ a: { enterTimeWait: () => false }, appA: { data: pattern(10_000), close: 'after-write' }, appB: { data: down, close: 'after-end' } });
    sim.run(600_000);
    expect(path(sim.a)).toEqual(['syn-sent', 'established', 'fin-wait-1', 'fin-wait-2', 'closed']);
    expect(path(sim.b)).toEqual(['syn-received', 'established', 'close-wait', 'last-ack', 'closed']);
    expectBytes(sim.a.received, down);
    expect(sim.a.kinds().slice(-2)).toEqual(['end', 'closed']);
    // B's FIN was acknowledged: B closed on that ACK, not after retransmitting its FIN.
    expect(sim.b.sent.filter((x) => x.s.flags & Fin)).toHaveLength(1);
  });

  it('gives its buffers back on entering TIME-WAIT', () => {
    const sim = new Sim({ appA: { data: pattern(10_000), close: 'after-write' }, appB: { data: pattern(5000), close: 'after-end' } });
    let held = 0;
    sim.run(30_000, () => {
      held = Math.max(held, sim.a.conn?.bufferMemory ?? 0);
      return sim.a.conn?.state === 'time-wait';
    });
    expect(sim.a.conn!.state).toBe('time-wait');
    expect(held).toBeGreaterThan(0);
    expect(sim.a.conn!.bufferMemory).toBe(0);
  });

  it('gives its receive buffer back in TIME-WAIT once the application has read what was left in it', () => {
    // A closes first and reads slowly: the peer's last bytes and FIN are still unread when TIME-WAIT begins.
    const down = pattern(50_000);
    const sim = new Sim({ appA: { data: pattern(1000), close: 'after-write', readChunk: 5000, readEvery: 2_500 }, appB: { data: down, close: 'after-end' } });
    let unreadAtEntry = -1;
    sim.run(40_000, () => {
      if (unreadAtEntry < 0 && sim.a.conn?.state === 'time-wait') unreadAtEntry = sim.a.conn.bufferMemory;
      return unreadAtEntry >= 0 && sim.a.received.length === down.length;
    });
    expect(unreadAtEntry).toBeGreaterThan(0);
    expect(sim.a.conn!.state).toBe('time-wait');
    expectBytes(sim.a.received, down);
    expect(sim.a.conn!.bufferMemory).toBe(0);
  });

  it('defaults TIME-WAIT to 60 s', () => {
    const sim = new Sim({ appA: { close: 'after-write' }, appB: { close: 'after-end' } });
    sim.run(600_000);
    const entered = sim.a.states.find((s) => s.state === 'time-wait')!.at;
    expect(sim.a.events.find((x) => x.e.kind === 'closed')!.at - entered).toBe(60_000);
  });

  it('retransmits a lost FIN', () => {
    let dropped = 0;
    const sim = new Sim({
      drop: (from, s) => from === 'a' && (s.flags & Fin) !== 0 && dropped++ < 2,
      appA: { data: pattern(500), close: 'after-write' },
      appB: { close: 'after-end' },
    });
    sim.run(600_000);
    expect(sim.a.sent.filter((x) => x.s.flags & Fin)).toHaveLength(3);
    expectBytes(sim.b.received, pattern(500));
    expect(sim.a.kinds().at(-1)).toBe('closed');
    expect(sim.b.kinds().at(-1)).toBe('closed');
  });

  it('sends the FIN with the last data when both are queued', () => {
    const { conn, rec } = passive({}, { complete: false });
    conn.write(pattern(100));
    conn.close();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1 }), 1);
    expect(conn.state).toBe('fin-wait-1');
    expect(rec.sent.filter((s) => s.payload.length > 0 || s.flags & Fin)).toEqual([
      expect.objectContaining({ seq: ISN + 1, flags: Ack | Psh | Fin, payload: pattern(100) }),
    ]);
  });

  it('takes a FIN carried with data, reporting end after the data is readable', () => {
    const { conn, rec } = passive();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, flags: Ack | Fin, payload: pattern(100) }), 1);
    expect(conn.state).toBe('close-wait');
    expect(rec.sent.at(-1)).toMatchObject({ flags: Ack, ack: PEER_ISN + 102 });
    expect(rec.events.map((e) => e.kind)).toEqual(['connected', 'readable', 'end']);
    expect(conn.read()).toEqual(pattern(100));
  });

  it('keeps bytes readable after TIME-WAIT ends', () => {
    const { conn, rec } = passive({ timeWait: 1000 });
    conn.close();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 2, flags: Ack | Fin, payload: pattern(100) }), 1);
    conn.tick(1001);
    expect(rec.events.map((e) => e.kind)).toEqual(['connected', 'readable', 'end', 'closed']);
    expect(conn.read()).toEqual(pattern(100));
  });

  it('keeps a FIN that arrives ahead of missing data, and takes it once the data comes', () => {
    const { conn, rec } = passive();
    conn.receive(seg({ seq: PEER_ISN + 101, ack: ISN + 1, flags: Ack | Fin }), 1);
    expect(conn.state).toBe('established');
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 1 });
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(100) }), 2);
    expect(conn.state).toBe('close-wait');
    expect(rec.sent.at(-1)).toMatchObject({ ack: PEER_ISN + 102 });
    expect(rec.events.map((e) => e.kind)).toEqual(['connected', 'readable', 'end']);
  });

  it('acknowledges a FIN retransmitted during TIME-WAIT again and restarts the wait', () => {
    const { conn, rec } = passive({ timeWait: 10_000 });
    conn.close();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 2 }), 1);
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 2, flags: Ack | Fin }), 2);
    expect(conn.state).toBe('time-wait');
    expect(conn.nextTimer()).toBe(10_002);
    const before = rec.sent.length;
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 2, flags: Ack | Fin }), 5000);
    expect(rec.sent.slice(before)).toEqual([expect.objectContaining({ flags: Ack, seq: ISN + 2, ack: PEER_ISN + 2 })]);
    expect(conn.nextTimer()).toBe(15_000);
    conn.tick(15_000);
    expect(rec.events.at(-1)).toEqual({ kind: 'closed' });
  });

  it('ignores an RST in TIME-WAIT (RFC 1337)', () => {
    const { conn, rec } = passive();
    conn.close();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 2, flags: Ack | Fin }), 1);
    expect(conn.state).toBe('time-wait');
    conn.receive(seg({ seq: PEER_ISN + 2, flags: Rst }), 2);
    expect(conn.state).toBe('time-wait');
    expect(rec.events.map((e) => e.kind)).toEqual(['connected', 'end']);
  });

  it('takes no writes after close() nor once closed', () => {
    const { conn } = passive();
    conn.close();
    expect(conn.write(pattern(10))).toBe(0);
    expect(conn.writableSpace).toBe(0);
    conn.abort();
    expect(conn.write(pattern(10))).toBe(0);
  });

  it('aborts with an RST and only a closed event', () => {
    const { conn, rec } = passive();
    conn.write(pattern(100));
    conn.abort();
    expect(rec.sent.at(-1)).toMatchObject({ flags: Rst | Ack, seq: ISN + 101 });
    expect(rec.events).toEqual([{ kind: 'connected' }, { kind: 'closed' }]);
    expect(conn.state).toBe('closed');
    expect(conn.nextTimer()).toBeUndefined();
  });

  it('aborts from an event handler without any later event', () => {
    const rec: Recorder = { sent: [], events: [] };
    let conn: TcpConnection | undefined;
    const c = TcpConnection.accept(
      options(rec, {
        event: (e) => {
          rec.events.push(e);
          if (e.kind === 'readable') conn!.abort();
        },
      }),
      syn(PEER_ISN),
    );
    conn = c;
    c.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, flags: Ack | Fin, payload: pattern(10) }), 1);
    expect(rec.events.map((e) => e.kind)).toEqual(['connected', 'readable', 'closed']);
  });
});

describe('TCP connection: RST and SYN (RFC 5961)', () => {
  it('resets on an RST at exactly RCV.NXT', () => {
    const { conn, rec } = passive();
    const before = rec.sent.length;
    conn.receive(seg({ seq: PEER_ISN + 1, flags: Rst }), 1);
    expect(rec.events.at(-1)).toEqual({ kind: 'reset', reason: 'rst-received' });
    expect(conn.state).toBe('closed');
    expect(rec.sent.length).toBe(before);
  });

  it('answers an RST elsewhere in the window with a challenge ACK and stays', () => {
    const { conn, rec } = passive();
    conn.receive(seg({ seq: PEER_ISN + 1000, flags: Rst }), 1);
    expect(rec.sent.at(-1)).toMatchObject({ flags: Ack, seq: ISN + 1, ack: PEER_ISN + 1 });
    expect(conn.state).toBe('established');
    expect(rec.events).toEqual([{ kind: 'connected' }]);
  });

  it('ignores an RST outside the window', () => {
    const { conn, rec } = passive();
    const before = rec.sent.length;
    conn.receive(seg({ seq: PEER_ISN + 1 + 70_000, flags: Rst }), 1);
    conn.receive(seg({ seq: PEER_ISN, flags: Rst }), 1);
    expect(rec.sent.length).toBe(before);
    expect(conn.state).toBe('established');
  });

  it('answers a SYN on an established connection with a challenge ACK only', () => {
    const { conn, rec } = passive();
    const before = rec.sent.length;
    conn.receive(seg({ seq: 12345, flags: Syn, options: encodeTcpOptions({ mss: 100 }) as Uint8Array }), 1);
    expect(rec.sent.slice(before)).toEqual([expect.objectContaining({ flags: Ack, ack: PEER_ISN + 1 })]);
    expect(conn.state).toBe('established');
    expect(rec.events).toEqual([{ kind: 'connected' }]);
  });

  it('answers an ACK of bytes never sent with an ACK and drops the segment', () => {
    const { conn, rec } = passive();
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 5000, payload: pattern(10) }), 1);
    expect(rec.sent.at(-1)).toMatchObject({ flags: Ack, ack: PEER_ISN + 1 });
    expect(conn.readable).toBe(0);
  });

  it('ignores everything once reset', () => {
    const { conn, rec } = passive();
    conn.write(pattern(100));
    conn.receive(seg({ seq: PEER_ISN + 1, flags: Rst }), 1);
    const seen = { sent: rec.sent.length, events: rec.events.length };
    conn.receive(seg({ seq: PEER_ISN + 1, ack: ISN + 1, payload: pattern(10) }), 2);
    conn.tick(1_000_000);
    conn.close();
    conn.abort();
    expect({ sent: rec.sent.length, events: rec.events.length }).toEqual(seen);
    expect(conn.nextTimer()).toBeUndefined();
  });
});

describe('TCP connection: hostile input', () => {
  const STATES = ['syn-sent', 'syn-received', 'established', 'fin-wait-1', 'fin-wait-2', 'close-wait', 'closing', 'last-ack', 'time-wait'] as const;

  const action = fc.oneof(
    {
      weight: 8,
      arbitrary: fc.record({
        kind: fc.constant('segment' as const),
        seqNear: fc.boolean(),
        seqOffset: fc.integer({ min: -70_000, max: 70_000 }),
        seqRandom: fc.integer({ min: 0, max: 0xffffffff }),
        ackNear: fc.boolean(),
        ackOffset: fc.integer({ min: -70_000, max: 70_000 }),
        ackRandom: fc.integer({ min: 0, max: 0xffffffff }),
        flags: fc.integer({ min: 0, max: 255 }),
        window: fc.nat(),
        payload: fc.uint8Array({ maxLength: 200 }),
        options: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
        // SACK blocks around what the connection sent: a peer that lies, or is confused, about what it holds.
        sack: fc.option(fc.array(fc.record({ left: fc.integer({ min: -100, max: 6000 }), len: fc.integer({ min: -10, max: 3000 }) }), { minLength: 1, maxLength: 4 }), { nil: undefined }),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), dt: fc.integer({ min: 0, max: 70_000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('write' as const), n: fc.integer({ min: 0, max: 5000 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('read' as const), n: fc.integer({ min: 0, max: 5000 }) }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'close' as const }) },
    { weight: 1, arbitrary: fc.constant({ kind: 'abort' as const }) },
    // A sink that takes part of what it is offered, as a proxy's full send buffer does.
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('readInto' as const), n: fc.integer({ min: -1, max: 5000 }) }) },
    // A host that held ACKs back for a batch (deferAck) sends them.
    { weight: 1, arbitrary: fc.constant({ kind: 'pendingAck' as const }) },
  );

  it('never throws, never sends past the peer window, and stays silent once over', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STATES),
        fc.integer({ min: 0, max: 0xffffffff }),
        fc.constantFrom(0, 1, 100, 1000, 65535),
        fc.array(action, { maxLength: 60 }),
        fc.boolean(),
        fc.boolean(),
        fc.boolean(),
        (state, isn, maxWindow, actions, deferAcks, skipTimeWait, sackPeer) => {
          const sent: Segment[] = [];
          const events: TcpEvent[] = [];
          let sentAfterEnd = 0;
          let eventsAfterEnd = 0;
          let over = false;
          let now = 0;
          const opts: TcpConnectionOptions = {
            localPort: SERVER_PORT,
            remotePort: CLIENT_PORT,
            isn,
            now: 0,
            timeWait: 100_000,
            send: (s) => {
              if (over) sentAfterEnd++;
              sent.push(wire(s));
            },
            event: (e) => {
              if (over) eventsAfterEnd++;
              events.push(e);
              if (e.kind === 'closed' || e.kind === 'reset') over = true;
            },
            deferAck: () => deferAcks,
            enterTimeWait: () => !skipTimeWait,
          };
          // Where the connection's sequence space is, relative to its ISN, to bound what it may send.
          const off = (x: number) => u32(x - isn);
          let highestSent = 0;
          let rightEdge = 0;
          const deliver = (conn: TcpConnection, s: Segment) => {
            for (const out of sent) {
              if (seqLen(out) > 0 && !(out.flags & Rst)) highestSent = Math.max(highestSent, off(out.seq) + seqLen(out));
            }
            if (s.flags & Ack && off(s.ack) <= highestSent) rightEdge = Math.max(rightEdge, off(s.ack) + Math.min(s.window, 0xffff));
            conn.receive(s, now);
          };

          // Script a peer into the state under test.
          let peerSeq = PEER_ISN + 1;
          const w = maxWindow;
          let conn: TcpConnection;
          if (state === 'syn-sent') {
            conn = TcpConnection.connect(opts);
            peerSeq = PEER_ISN;
          } else {
            const synOptions = encodeTcpOptions({ mss: 1460, ...(sackPeer && { sackPermitted: true }) }) as Uint8Array;
            conn = TcpConnection.accept(opts, seg({ seq: PEER_ISN, flags: Syn, window: w, options: synOptions }));
            if (state !== 'syn-received') deliver(conn, seg({ seq: peerSeq, ack: u32(isn + 1), window: w }));
            if (state !== 'syn-received' && state !== 'fin-wait-2' && state !== 'time-wait') conn.write(pattern(3000));
            if (state === 'fin-wait-1' || state === 'closing') conn.close();
            if (state === 'fin-wait-2' || state === 'time-wait') {
              conn.close();
              deliver(conn, seg({ seq: peerSeq, ack: u32(isn + 2), window: w }));
            }
            if (state === 'close-wait' || state === 'last-ack' || state === 'closing' || state === 'time-wait') {
              deliver(conn, seg({ seq: peerSeq, ack: state === 'time-wait' ? u32(isn + 2) : u32(isn + 1), flags: Ack | Fin, window: w }));
              peerSeq++;
            }
            if (state === 'last-ack') conn.close();
          }
          // A host that will not keep it in TIME-WAIT closes it instead.
          expect(conn.state).toBe(state === 'time-wait' && skipTimeWait ? 'closed' : state);

          for (const a of actions) {
            switch (a.kind) {
              case 'segment': {
                const blocks = a.sack?.map((b) => ({ left: u32(isn + 1 + b.left), right: u32(isn + 1 + b.left + b.len) }));
                const options = blocks ? (encodeTcpOptions({ sackBlocks: blocks }) as Uint8Array) : a.options;
                deliver(
                  conn,
                  seg({
                    seq: a.seqNear ? u32(peerSeq + a.seqOffset) : a.seqRandom,
                    ack: a.ackNear ? u32(isn + 1 + a.ackOffset) : a.ackRandom,
                    flags: a.flags,
                    window: maxWindow === 0 ? 0 : a.window % (maxWindow + 1),
                    payload: a.payload,
                    ...(options ? { options } : {}),
                  }),
                );
                break;
              }
              case 'tick':
                now += a.dt;
                conn.tick(now);
                break;
              case 'write':
                conn.write(pattern(a.n));
                break;
              case 'read':
                conn.read(a.n);
                break;
              case 'close':
                conn.close();
                break;
              case 'abort':
                conn.abort();
                break;
              case 'readInto':
                conn.readInto((bytes) => Math.min(bytes.length, a.n));
                break;
              case 'pendingAck':
                conn.sendPendingAck();
                break;
            }
          }

          for (const out of sent.filter((s) => s.payload.length > 0)) {
            // A zero-window probe is the one byte allowed past the window.
            const allowance = out.payload.length === 1 ? 1 : 0;
            expect(off(out.seq) + out.payload.length).toBeLessThanOrEqual(rightEdge + allowance);
          }
          expect(sentAfterEnd).toBe(0);
          expect(eventsAfterEnd).toBe(0);
          expect(events.filter((e) => e.kind === 'closed' || e.kind === 'reset').length).toBe(over ? 1 : 0);
          expect(conn.state === 'closed').toBe(over);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('survives segments whose fields are not numbers or byte arrays', () => {
    const { conn } = passive();
    const junk = [
      { ...seg({}), seq: NaN, ack: -1, window: 1e12, flags: 0x1ff },
      { ...seg({}), seq: 'x', ack: null, payload: 'abc', options: [1, 2, 3] },
      { ...seg({ seq: PEER_ISN + 1, ack: ISN + 1 }), payload: new Uint16Array(4) },
      null,
      undefined,
    ] as unknown as Segment[];
    for (const s of junk) expect(() => conn.receive(s, 1)).not.toThrow();
    expect(() => conn.tick(NaN)).not.toThrow();
    expect(() => conn.read(-5)).not.toThrow();
    expect(conn.state).toBe('established');
  });
});
