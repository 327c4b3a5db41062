import { TcpFlag, TcpRepr } from '../wire/tcp.ts';
import type { PortAllocator } from '../port-allocator.ts';
import { seqAdd, seqGt, TcpConnection, type TcpEvent, type TcpLossCounters } from './connection.ts';
import { initialSequenceNumber } from './isn.ts';

/*
 * The TCP endpoints of one local address (an Iface): listeners, the
 * connections by remote address and ports, ephemeral ports for outgoing
 * connections. Each connection is a TcpConnection (an I/O-less machine);
 * the stack feeds it segments and timer ticks and hands what it sends to the
 * host, which wraps it in IP. Applications (the load balancer) see sockets.
 */

/** What a stack needs from the appliance. */
export interface TcpStackHost {
  /** This stack's address now (0 while the Iface has none). */
  address(): number;
  /** Transmits a segment from this stack's address to `remote`; its payload is good only during the call. */
  send(remote: number, segment: TcpRepr): void;
  now(): number;
  /** Ephemeral ports of this address, shared with masquerade. */
  ports: PortAllocator;
  /** [0, 1), for the ISN secret. */
  random(): number;
  /** Connections kept in TIME-WAIT at most; MAX_TIME_WAIT by default. */
  maxTimeWait?: number;
}

export interface TcpSocket {
  readonly connection: TcpConnection;
  readonly localPort: number;
  readonly remoteAddress: number;
  readonly remotePort: number;
  /** The application's handler; for an accepted socket it is set in `accept`, before any data event. */
  onEvent: (e: TcpEvent) => void;
}

export interface TcpListener {
  /** A client completed the handshake. */
  accept(socket: TcpSocket): void;
}

/**
 * Half-open connections a listener keeps before it evicts the oldest
 * (runtime-semantics.md 9). Upstream kept 64, so a burst of 100 clients
 * connecting at once had 36 of them reset; Linux keeps at least 128, and
 * 1024 on hosts with memory to spare. A half-open connection holds no
 * buffers yet, so 1024 costs about a megabyte under a SYN flood.
 */
export const SYN_BACKLOG = 1024;

/**
 * Connections the stack keeps in TIME-WAIT at most (Linux's
 * tcp_max_tw_buckets): one costs a few KiB while it lingers, and a busy
 * balancer closes thousands a second, so without a bound a burst of
 * clients could take all memory. Past it, a connection ends as soon as it
 * has acknowledged the peer's FIN, counted in `time_wait_overflow`.
 */
export const MAX_TIME_WAIT = 16384;

/**
 * How often the connections in TIME-WAIT are looked at, at most (ms): the most one may run over
 * its minute. A busy balancer ends thousands a second, each due at its own millisecond; one scan
 * visits them all, so they end in batches rather than with a wake-up each.
 */
export const TIME_WAIT_SCAN_MS = 1000;

/**
 * Bytes a connection buffers each way (its buffers grow to this as needed):
 * what one spliced load-balancer session can hold is four times this, so a
 * thousand sessions stay within 512 MiB even when every reader stalls.
 * 128 KiB windows keep a bulk stream through the balancer from waiting on
 * ACKs: 64 KiB carried about 15% less on a TAP link.
 */
export const CONNECTION_BUFFER = 128 * 1024;

interface TcpStackCountersBase {
  segments_rx: number;
  bad_segments: number;
  connections_accepted: number;
  connections_opened: number;
  syn_backlog_evictions: number;
  /** SYNs that reopened a four-tuple still in TIME-WAIT (RFC 1122 4.2.2.13). */
  time_wait_reopened: number;
  /** Connections that ended without TIME-WAIT because MAX_TIME_WAIT were in it. */
  time_wait_overflow: number;
  no_ephemeral_port: number;
  /** Connections of ours ended early in TIME-WAIT to free a port for a new one. */
  time_wait_reclaimed: number;
}

export type TcpStackCounters = TcpStackCountersBase & TcpLossCounters;

interface Entry {
  socket: TcpSocket;
  /** The listener of a passive connection still in its handshake. */
  listener: Listening | null;
  /** An ephemeral port to give back when the connection ends. */
  ephemeral: boolean;
  /** The connection is in TIME-WAIT, one of `timeWaiting`. */
  timeWait: boolean;
}

interface Listening {
  readonly listener: TcpListener;
  readonly halfOpen: Entry[];
}

export class TcpStack {
  readonly counters: TcpStackCounters = {
    segments_rx: 0,
    bad_segments: 0,
    connections_accepted: 0,
    connections_opened: 0,
    syn_backlog_evictions: 0,
    time_wait_reopened: 0,
    time_wait_overflow: 0,
    no_ephemeral_port: 0,
    time_wait_reclaimed: 0,
    segments_retransmitted: 0,
    retransmit_timeouts: 0,
    fast_recoveries: 0,
    segments_out_of_order: 0,
    tail_loss_probes: 0,
  };
  private readonly listeners = new Map<number, Listening>();
  private readonly entries = new Map<string, Entry>();
  private holding = false;
  private timeWaiting = 0;
  /**
   * Connections of ours that entered TIME-WAIT holding an ephemeral port,
   * oldest first (some may have ended since): what `connect` reclaims when
   * every port is taken. `timeWaitHead` is the first not yet looked at.
   */
  private timeWaitOrder: Entry[] = [];
  private timeWaitHead = 0;
  /** The entries not in TIME-WAIT, whose timers run at every tick. */
  private readonly active = new Set<Entry>();
  /** When the connections in TIME-WAIT are next looked at (Infinity while none is), and were last. */
  private timeWaitScanAt = Infinity;
  private timeWaitScannedAt = -Infinity;
  private readonly acksHeld: TcpConnection[] = [];
  private readonly secret: Uint32Array;

  constructor(private readonly host: TcpStackHost) {
    this.secret = Uint32Array.from({ length: 4 }, () => Math.floor(host.random() * 0x100000000));
  }

  /** Connections open now, in any state (TIME-WAIT included). */
  get size(): number {
    return this.entries.size;
  }

  /** Buffer memory the connections hold now. */
  get bufferMemory(): number {
    let n = 0;
    for (const entry of this.entries.values()) n += entry.socket.connection.bufferMemory;
    return n;
  }

  listen(port: number, listener: TcpListener): void {
    this.listeners.set(port, { listener, halfOpen: [] });
  }

  /** Stops accepting on the port (connections already made stay); a SYN to it is then refused. */
  unlisten(port: number): void {
    this.listeners.delete(port);
  }

  /** Opens a connection; null when no ephemeral port is free (counted). */
  connect(remoteAddress: number, remotePort: number, onEvent: (e: TcpEvent) => void): TcpSocket | null {
    let localPort = this.host.ports.allocate();
    // Every port taken, mostly by connections of ours lingering in TIME-WAIT
    // (a balancer closes its backend connections first): end the oldest
    // early, as Linux does past tcp_max_tw_buckets, rather than refuse.
    if (localPort < 0 && this.reclaimTimeWait()) localPort = this.host.ports.allocate();
    if (localPort < 0) {
      this.counters.no_ephemeral_port++;
      return null;
    }
    this.counters.connections_opened++;
    const entry = this.open(localPort, remoteAddress, remotePort, null, true, (options) => TcpConnection.connect(options));
    entry.socket.onEvent = onEvent;
    return entry.socket;
  }

  /** Ends the oldest connection of ours still in TIME-WAIT, freeing its port; false if there is none. */
  private reclaimTimeWait(): boolean {
    while (this.timeWaitHead < this.timeWaitOrder.length) {
      const entry = this.timeWaitOrder[this.timeWaitHead++]!;
      if (!entry.timeWait) continue;
      // In TIME-WAIT an abort sends nothing: the connection just ends, and its port is released.
      entry.socket.connection.abort();
      this.counters.time_wait_reclaimed++;
      this.compactTimeWaitOrder();
      return true;
    }
    this.compactTimeWaitOrder();
    return false;
  }

  private compactTimeWaitOrder(): void {
    if (this.timeWaitHead < 1024 || this.timeWaitHead * 2 < this.timeWaitOrder.length) return;
    this.timeWaitOrder = this.timeWaitOrder.slice(this.timeWaitHead).filter((e) => e.timeWait);
    this.timeWaitHead = 0;
  }

  /**
   * Whether a segment with these ports and flags from `remote` is for one of
   * the connections or a SYN to a listener: what `receive` will take.
   */
  takes(remote: number, remotePort: number, localPort: number, flags: number): boolean {
    return this.entries.has(key(remote, remotePort, localPort)) || (this.listeners.has(localPort) && opensConnection(flags));
  }

  /**
   * A TCP segment for this address (its checksum already checked). Returns
   * false when no connection or listener takes it: the caller answers with
   * RST, as for a closed port.
   */
  receive(src: number, bytes: Uint8Array, l4: number, end: number): boolean {
    // Borrowed, not copied: a connection copies the payload into its buffer (or drops it) before it returns.
    const repr = TcpRepr.parse(bytes, l4, end, src, this.host.address(), false, true);
    if (typeof repr === 'string') {
      this.counters.bad_segments++;
      return true;
    }
    return this.receiveSegment(src, repr);
  }

  receiveSegment(src: number, segment: TcpRepr): boolean {
    const entry = this.entries.get(key(src, segment.srcPort, segment.dstPort));
    const listening = this.listeners.get(segment.dstPort);
    let isnAfter: number | undefined;
    if (entry) {
      isnAfter = listening && opensConnection(segment.flags) ? entry.socket.connection.reopenFloor(segment) : undefined;
      if (isnAfter === undefined) {
        this.counters.segments_rx++;
        entry.socket.connection.receive(segment, this.host.now());
        return true;
      }
      // The old incarnation goes quietly (it sends nothing from TIME-WAIT); the SYN opens a new one below.
      this.counters.time_wait_reopened++;
      entry.socket.connection.abort();
    }
    if (!listening || !opensConnection(segment.flags)) return false;
    this.counters.segments_rx++;
    if (listening.halfOpen.length >= SYN_BACKLOG) {
      // Upstream evicts the oldest half-open connection: a SYN flood cannot lock real clients out for long.
      this.counters.syn_backlog_evictions++;
      listening.halfOpen[0]!.socket.connection.abort();
    }
    const accepted = this.open(segment.dstPort, src, segment.srcPort, listening, false, (options) => TcpConnection.accept(options, segment), isnAfter);
    listening.halfOpen.push(accepted);
    return true;
  }

  /**
   * Holds back the ACKs of data received until `release()`: the host wraps
   * each batch of received frames in the two, so that a connection sends
   * one ACK per batch instead of one per segment.
   */
  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    // A connection may be listed once per segment it took; after its first ACK the rest find nothing pending.
    for (let c = this.acksHeld.pop(); c !== undefined; c = this.acksHeld.pop()) c.sendPendingAck();
  }

  /**
   * No connection has a deadline before this (ms; Infinity when none has one), except ends of
   * TIME-WAIT, which wait for the next scan of them: when the host should call tick(). Lowered as
   * connections arm timers (timerArmed), so it costs nothing per segment; a timer stopped or moved
   * later leaves it early, and the tick that then finds nothing due sets it anew from the
   * connections' own deadlines.
   */
  soonest = Infinity;

  /** Runs the connections' timers that are due. */
  tick(now: number): void {
    if (now < this.soonest) return;
    // Set from scratch, but in the field: a connection whose timer a handler arms during the loop
    // (the balancer writing to the other side of a session) lowers it, even one already visited.
    // Sets and Maps iterate safely while entries that end are deleted from them.
    this.soonest = Infinity;
    for (const entry of this.active) {
      runTimers(entry, now);
      const next = entry.socket.connection.nextTimer();
      if (next !== undefined && next < this.soonest) this.soonest = next;
    }
    if (now >= this.timeWaitScanAt) {
      this.timeWaitScannedAt = now;
      this.timeWaitScanAt = Infinity;
      let next = Infinity;
      for (const entry of this.entries.values()) {
        if (!entry.timeWait) continue;
        runTimers(entry, now);
        const due = entry.timeWait ? entry.socket.connection.nextTimer() : undefined;
        if (due !== undefined && due < next) next = due;
      }
      if (next !== Infinity) this.timeWaitScanAt = Math.min(this.timeWaitScanAt, Math.max(next, now + TIME_WAIT_SCAN_MS));
    }
    if (this.timeWaitScanAt < this.soonest) this.soonest = this.timeWaitScanAt;
  }

  /** A connection armed a timer for `at`; one in TIME-WAIT waits for the next scan of them all. */
  private timerArmed(entry: Entry, at: number): void {
    if (entry.timeWait) {
      at = Math.max(at, this.timeWaitScannedAt + TIME_WAIT_SCAN_MS);
      if (at < this.timeWaitScanAt) this.timeWaitScanAt = at;
    }
    if (at < this.soonest) this.soonest = at;
  }

  private open(
    localPort: number,
    remoteAddress: number,
    remotePort: number,
    listening: Listening | null,
    ephemeral: boolean,
    make: (options: Parameters<typeof TcpConnection.connect>[0]) => TcpConnection,
    isnAfter?: number,
  ): Entry {
    const k = key(remoteAddress, remotePort, localPort);
    const now = this.host.now();
    let isn = initialSequenceNumber(this.secret, this.host.address(), localPort, remoteAddress, remotePort, now);
    // A reopened four-tuple: past every sequence number of the old incarnation, so none of its strays fits the new one (Linux adds a window too).
    if (isnAfter !== undefined && !seqGt(isn, seqAdd(isnAfter, 65535))) isn = seqAdd(isnAfter, 65537);
    // The connection is made last: its callbacks need the entry, and making it may already send.
    const socket = { connection: null as unknown as TcpConnection, localPort, remoteAddress, remotePort, onEvent: (_e: TcpEvent) => {} };
    const entry: Entry = { socket, listener: listening, ephemeral, timeWait: false };
    this.entries.set(k, entry);
    this.active.add(entry);
    socket.connection = make({
      localPort,
      remotePort,
      now,
      clock: () => this.host.now(),
      sendBufferLimit: CONNECTION_BUFFER,
      receiveBufferLimit: CONNECTION_BUFFER,
      lossCounters: this.counters,
      timerArmed: (at) => this.timerArmed(entry, at),
      isn,
      send: (segment) => this.host.send(remoteAddress, segment),
      event: (e) => this.event(k, entry, e),
      deferAck: () => {
        if (!this.holding) return false;
        this.acksHeld.push(socket.connection);
        return true;
      },
      enterTimeWait: () => {
        if (this.timeWaiting >= (this.host.maxTimeWait ?? MAX_TIME_WAIT)) {
          this.counters.time_wait_overflow++;
          return false;
        }
        this.timeWaiting++;
        entry.timeWait = true;
        this.active.delete(entry);
        if (entry.ephemeral) this.timeWaitOrder.push(entry);
        return true;
      },
    });
    return entry;
  }

  private event(k: string, entry: Entry, e: TcpEvent): void {
    if (e.kind === 'connected' && entry.listener) {
      const listening = entry.listener;
      entry.listener = null;
      remove(listening.halfOpen, entry);
      this.counters.connections_accepted++;
      listening.listener.accept(entry.socket);
      return;
    }
    if (e.kind === 'closed' || e.kind === 'reset') {
      if (this.entries.get(k) === entry) this.entries.delete(k);
      this.active.delete(entry);
      if (entry.timeWait) {
        entry.timeWait = false;
        this.timeWaiting--;
      }
      if (entry.ephemeral) this.host.ports.release(entry.socket.localPort);
      if (entry.listener) {
        remove(entry.listener.halfOpen, entry);
        entry.listener = null;
        return;
      }
    }
    entry.socket.onEvent(e);
  }
}

/** A SYN alone (no ACK, no RST): what may open a connection on a listener. */
function opensConnection(flags: number): boolean {
  return (flags & (TcpFlag.Syn | TcpFlag.Ack | TcpFlag.Rst)) === TcpFlag.Syn;
}

function key(remoteAddress: number, remotePort: number, localPort: number): string {
  return `${remoteAddress}:${remotePort}:${localPort}`;
}

function runTimers(entry: Entry, now: number): void {
  const due = entry.socket.connection.nextTimer();
  if (due !== undefined && due <= now) entry.socket.connection.tick(now);
}

function remove<T>(list: T[], item: T): void {
  const i = list.indexOf(item);
  if (i >= 0) list.splice(i, 1);
}
