import type { IrLoadBalancer, LbAlgorithm } from '../compiler/ir.ts';
import type { TcpConnection, TcpEvent } from '../runtime/tcp/connection.ts';
import type { TcpSocket, TcpStack } from '../runtime/tcp/stack.ts';
import { parseIpv4Address } from '../runtime/wire/ipv4.ts';

/*
 * The TCP load balancer (microLB, runtime-semantics.md 7): clients connect to
 * a port on the clients' Iface; each client is spliced, byte stream to byte
 * stream, to a new connection from the servers' Iface to one node of the
 * pool. Decisions for this project (7.1, 7.5, 14):
 *
 * - `session_limit` spliced sessions at most; more clients wait in a FIFO
 *   queue; beyond `wait_queue_limit` waiting clients a new client is refused
 *   with RST. A client that has waited WAIT_TIMEOUT is dropped (RST).
 * - `algorithm`: round_robin, least_connections (fewest open sessions) or
 *   source_hash (rendezvous hashing of the client address: removing a node
 *   remaps only the clients that were on it).
 * - A node is down after a failed connect (refused or timed out); the client
 *   is then tried on the next node at once. A connect whose client left goes
 *   on, and its outcome counts the same. Down nodes are checked with a
 *   plain TCP connect, first CHECK_RETRY after the failure, then every
 *   CHECK_INTERVAL; a successful check brings the node back. Nodes start
 *   unchecked and are checked at start; until a check or a session succeeds
 *   they are used as if up, so the first clients need not wait.
 * - Backend connections are opened per client; there is no pool of idle
 *   connections (upstream kept the health check's connection for the next
 *   client; closing it keeps the node's connection count honest).
 * - Flow control is each connection's own: bytes move only while the other
 *   side's send buffer has room, so a slow reader closes the fast sender's
 *   TCP window instead of filling the appliance's memory.
 * - With an idle timeout (a boot flag; the language has no key, upstream's
 *   newest balancer has none), a session whose connections made no progress
 *   for that long (no byte in from either peer, none of ours acknowledged)
 *   is reset on both sides: otherwise clients that connect and stay silent
 *   can hold every session of session_limit for good.
 */

export const CHECK_RETRY = 8_000;
export const CHECK_INTERVAL = 30_000;
export const WAIT_TIMEOUT = 60_000;
/** How often open sessions are checked for the idle timeout: it is meant in seconds, and a scan visits them all. */
export const IDLE_SCAN_INTERVAL = 1_000;
/** How soon a connect that found no free ephemeral port (a queued client's, or a check's) is tried again (ms). */
export const PORT_RETRY = 50;

export interface LoadBalancerHost {
  readonly clients: TcpStack;
  readonly servers: TcpStack;
  now(): number;
  log(line: string): void;
  /** ms without progress on either connection (no byte in, none acknowledged) after which a session is reset; none when absent or 0. */
  readonly idleTimeout?: number;
}

interface Node {
  readonly label: string;
  readonly address: number;
  readonly port: number;
  state: 'unchecked' | 'up' | 'down';
  /** Open sessions (least_connections). */
  sessions: number;
  /** Backend connects in progress. */
  connecting: number;
  nextCheck: number;
  checking: boolean;
}

interface Waiting {
  readonly client: TcpSocket;
  readonly since: number;
  /** Nodes that refused this client already. */
  readonly tried: Set<Node>;
  /** The client closed its side (sent everything) before it got a node. */
  ended: boolean;
}

interface Session {
  readonly client: TcpSocket;
  readonly backend: TcpSocket;
  readonly node: Node;
  clientEnded: boolean;
  backendEnded: boolean;
  ended: boolean;
  /** A pump is moving bytes from this side: an event emitted while it reads or writes must not start a second pump that closes the other side before the first one's write. */
  pumping: { client: boolean; backend: boolean };
}

export interface LoadBalancerCounters {
  sessions_total: number;
  sessions_open: number;
  waiting: number;
  clients_refused: number;
  clients_wait_timeout: number;
  /** Sessions reset after the idle timeout (--lb-idle-timeout). */
  sessions_idle_timeout: number;
  backend_connect_failures: number;
  health_checks: number;
  /** Nodes a check or a session has found up, and nodes marked down. */
  nodes_up: number;
  nodes_down: number;
}

export class LoadBalancer {
  readonly counters: LoadBalancerCounters = {
    sessions_total: 0,
    sessions_open: 0,
    waiting: 0,
    clients_refused: 0,
    clients_wait_timeout: 0,
    sessions_idle_timeout: 0,
    backend_connect_failures: 0,
    health_checks: 0,
    nodes_up: 0,
    nodes_down: 0,
  };
  readonly nodes: readonly Node[];
  private readonly queue: Waiting[] = [];
  private readonly algorithm: LbAlgorithm;
  private cursor = 0;
  /** sessions_total at the last report, for its "+delta". */
  private reported = 0;
  /** Sessions not yet ended, for the idle timeout. */
  private readonly open = new Set<Session>();
  private nextIdleScan = 0;
  /** When clients queued for want of an ephemeral port are tried again (Infinity: none is). */
  private portRetryAt = Infinity;

  constructor(
    private readonly ir: IrLoadBalancer,
    private readonly host: LoadBalancerHost,
  ) {
    this.algorithm = ir.servers.algorithm;
    this.nodes = ir.servers.pool.map((n) => ({
      label: `${n.address}:${n.port}`,
      address: parseIpv4Address(n.address)!,
      port: n.port,
      state: 'unchecked' as const,
      sessions: 0,
      connecting: 0,
      nextCheck: 0,
      checking: false,
    }));
  }

  start(): void {
    this.host.clients.listen(this.ir.clients.port, { accept: (client) => this.accept(client) });
    for (const node of this.nodes) this.check(node);
  }

  /**
   * When tick() next has something to do (ms; Infinity for nothing): the host
   * calls it then, rather than on a period, so an idle balancer sleeps
   * between its node checks. Cheap enough for the host to ask after every
   * batch of frames: a loop over the pool, which is small.
   */
  nextDeadline(): number {
    let next = Infinity;
    for (const node of this.nodes) if (this.awaitsCheck(node) && node.nextCheck < next) next = node.nextCheck;
    if (this.queue.length > 0) next = Math.min(next, this.queue[0]!.since + WAIT_TIMEOUT, this.portRetryAt);
    const idle = this.host.idleTimeout;
    if (idle !== undefined && idle > 0 && this.open.size > 0 && this.nextIdleScan < next) next = this.nextIdleScan;
    return next;
  }

  /** Health checks, wait timeouts, port retries and idle scans that are due (nextDeadline). */
  tick(now: number): void {
    for (const node of this.nodes) if (this.awaitsCheck(node) && now >= node.nextCheck) this.check(node);
    while (this.queue.length > 0 && now - this.queue[0]!.since >= WAIT_TIMEOUT) {
      const waiting = this.queue.shift()!;
      this.counters.clients_wait_timeout++;
      waiting.client.connection.abort();
    }
    // Clients queued when no connection could be made (every port taken) are
    // retried here: nothing else would wake them once no session is left to end.
    if (now >= this.portRetryAt) this.portRetryAt = Infinity;
    if (this.queue.length > 0) this.drain();
    const idle = this.host.idleTimeout;
    if (idle !== undefined && idle > 0 && now >= this.nextIdleScan) {
      this.nextIdleScan = now + IDLE_SCAN_INTERVAL;
      for (const session of this.open) if (now - lastProgress(session) >= idle) this.resetIdle(session);
    }
    this.counters.waiting = this.queue.length;
  }

  /** Sets a node's state, and the counts of nodes up and down: read at any time, not only after a tick. */
  private setState(node: Node, state: Node['state']): void {
    node.state = state;
    this.counters.nodes_up = this.nodes.filter((n) => n.state === 'up').length;
    this.counters.nodes_down = this.nodes.filter((n) => n.state === 'down').length;
  }

  /** The `lb` Timer item (runtime-semantics.md 7.8), with our counters in it. */
  report(): string[] {
    const c = this.counters;
    const delta = c.sessions_total - this.reported;
    this.reported = c.sessions_total;
    const lines = [
      `Total ${c.sessions_total} (+${delta}) Sess ${c.sessions_open} Wait ${this.queue.length} TO ${c.clients_wait_timeout} - Pool 0 C.Att ${this.connecting()} Err ${c.backend_connect_failures} Refused ${c.clients_refused}`,
    ];
    for (let i = 0; i < this.nodes.length; i += 2) {
      lines.push(
        this.nodes
          .slice(i, i + 2)
          .map((n) => `[${n.label} ${n.state === 'down' ? 'OFF' : 'ONL'} P=0 C=${n.connecting} S=${n.sessions}]`)
          .join(' '),
      );
    }
    return lines;
  }

  private accept(client: TcpSocket): void {
    const waiting: Waiting = { client, since: this.host.now(), tried: new Set(), ended: false };
    if (this.queue.length === 0 && this.counters.sessions_open + this.connecting() < this.ir.clients.sessionLimit && this.assign(waiting)) return;
    if (this.queue.length >= this.ir.clients.waitQueueLimit) {
      this.counters.clients_refused++;
      client.connection.abort();
      return;
    }
    // Bytes the client sends while it waits stay in its receive buffer: its window closes, nothing is lost.
    this.wait(waiting);
    this.queue.push(waiting);
    this.counters.waiting = this.queue.length;
  }

  /** The client's handler while it has no node. */
  private wait(waiting: Waiting): void {
    waiting.client.onEvent = (e) => {
      if (e.kind === 'end') waiting.ended = true;
      if (e.kind === 'reset' || e.kind === 'closed') this.forget(waiting);
    };
  }

  private connecting(): number {
    let n = 0;
    for (const node of this.nodes) n += node.connecting;
    return n;
  }

  private forget(waiting: Waiting): void {
    const i = this.queue.indexOf(waiting);
    if (i >= 0) this.queue.splice(i, 1);
    this.counters.waiting = this.queue.length;
  }

  /** Serves waiting clients while sessions are free and nodes are left to try. */
  private drain(): void {
    while (this.queue.length > 0 && this.counters.sessions_open + this.connecting() < this.ir.clients.sessionLimit) {
      const waiting = this.queue[0]!;
      if (!this.assign(waiting)) return;
      this.queue.shift();
    }
    this.counters.waiting = this.queue.length;
  }

  /** Starts connecting the client to a node; false when no node is available to it. */
  private assign(waiting: Waiting): boolean {
    const node = this.pick(waiting);
    if (!node) return false;
    const client = waiting.client;
    node.connecting++;
    let session: Session | null = null;
    let abandoned = false;
    const backend = this.host.servers.connect(node.address, node.port, (e) => {
      if (session) return this.sessionEvent(session, 'backend', e);
      if (abandoned) return this.abandonedConnect(node, backend!, e);
      if (e.kind === 'connected') {
        this.connectEnded(node, true);
        session = this.splice(waiting, backend!, node);
        // Whatever the client sent while it waited.
        this.pump(session, client.connection, backend!.connection, 'client');
        return;
      }
      if (e.kind === 'reset' || e.kind === 'closed') {
        this.connectEnded(node, false);
        waiting.tried.add(node);
        // Try the next node at once; with none left the client waits for a check to succeed.
        if (client.connection.state === 'closed') return;
        if (!this.assign(waiting)) {
          // Nodes that refused now may be back by the time a check succeeds.
          waiting.tried.clear();
          this.wait(waiting);
          this.queue.unshift(waiting);
          this.counters.waiting = this.queue.length;
        }
      }
    });
    if (!backend) {
      node.connecting--;
      this.counters.backend_connect_failures++;
      this.portRetryAt = Math.min(this.portRetryAt, this.host.now() + PORT_RETRY);
      return false;
    }
    client.onEvent = (e) => {
      if (session) return this.sessionEvent(session, 'client', e);
      if (e.kind === 'end') waiting.ended = true;
      // The client left before its backend answered: the connect goes on without it (abandonedConnect).
      if (e.kind === 'reset' || e.kind === 'closed') abandoned = true;
    };
    return true;
  }

  /**
   * The end of a connect whose client left (reset) before it finished. It is
   * not aborted: its outcome still says whether the node is up, as any
   * connect's does. Aborting it kept a blackholed node in rotation for good
   * when clients gave up sooner than the 10 s connect timeout, each client
   * sent there timing out in turn. A connection it makes is closed unused.
   */
  private abandonedConnect(node: Node, backend: TcpSocket, e: TcpEvent): void {
    if (e.kind === 'connected') {
      this.connectEnded(node, true);
      backend.onEvent = ignore;
      backend.connection.close();
    } else if (e.kind === 'reset' || e.kind === 'closed') {
      this.connectEnded(node, false);
    } else {
      return;
    }
    // Its place under session_limit is free.
    this.drain();
  }

  /** A connect to the node finished: it answered, so it is up, or it did not, so it is down. */
  private connectEnded(node: Node, answered: boolean): void {
    node.connecting--;
    if (answered) {
      this.setState(node, 'up');
    } else {
      this.counters.backend_connect_failures++;
      this.markDown(node);
    }
  }

  private pick(waiting: Waiting): Node | null {
    const candidates = this.nodes.filter((n) => n.state !== 'down' && !waiting.tried.has(n));
    if (candidates.length === 0) return null;
    switch (this.algorithm) {
      case 'round_robin': {
        for (let i = 0; i < this.nodes.length; i++) {
          const node = this.nodes[(this.cursor + i) % this.nodes.length]!;
          if (candidates.includes(node)) {
            this.cursor = (this.nodes.indexOf(node) + 1) % this.nodes.length;
            return node;
          }
        }
        return null;
      }
      case 'least_connections': {
        let best: Node | null = null;
        for (let i = 0; i < this.nodes.length; i++) {
          const node = this.nodes[(this.cursor + i) % this.nodes.length]!;
          if (candidates.includes(node) && (!best || node.sessions + node.connecting < best.sessions + best.connecting)) best = node;
        }
        this.cursor = (this.nodes.indexOf(best!) + 1) % this.nodes.length;
        return best;
      }
      case 'source_hash': {
        const source = waiting.client.remoteAddress;
        let best: Node | null = null;
        let bestScore = -1;
        for (const node of candidates) {
          const score = rendezvousScore(source, node.address, node.port);
          if (score > bestScore) {
            best = node;
            bestScore = score;
          }
        }
        return best;
      }
    }
  }

  private splice(waiting: Waiting, backend: TcpSocket, node: Node): Session {
    node.sessions++;
    this.counters.sessions_open++;
    this.counters.sessions_total++;
    const session: Session = {
      client: waiting.client,
      backend,
      node,
      clientEnded: waiting.ended,
      backendEnded: false,
      ended: false,
      pumping: { client: false, backend: false },
    };
    this.open.add(session);
    return session;
  }

  /** Both connections get an RST: the client must not take the silence for the end of the stream. */
  private resetIdle(session: Session): void {
    this.counters.sessions_idle_timeout++;
    session.client.onEvent = session.backend.onEvent = ignore;
    session.client.connection.abort();
    session.backend.connection.abort();
    this.end(session);
  }

  private sessionEvent(session: Session, side: 'client' | 'backend', e: TcpEvent): void {
    const self = side === 'client' ? session.client : session.backend;
    const other = side === 'client' ? session.backend : session.client;
    switch (e.kind) {
      case 'readable':
        return this.pump(session, self.connection, other.connection, side);
      case 'writable':
        // Room again on this side: move what the other side has waiting.
        return this.pump(session, other.connection, self.connection, side === 'client' ? 'backend' : 'client');
      case 'end':
        if (side === 'client') session.clientEnded = true;
        else session.backendEnded = true;
        this.pump(session, self.connection, other.connection, side);
        // Both directions are finished: what is left (sending the last bytes, FINs, TIME-WAIT) is TCP's
        // own work, and the session no longer counts against session_limit.
        if (session.clientEnded && session.backendEnded) this.end(session);
        return;
      case 'closed':
      case 'reset':
        // A reset on one side resets the other: the peer must not take a cut stream for a whole one.
        if (e.kind === 'reset' && other.connection.state !== 'closed') other.connection.abort();
        this.end(session);
        return;
      default:
        return;
    }
  }

  /** Moves bytes from one side to the other while the receiving side has room; passes the end on after the last byte. */
  private pump(session: Session, from: TcpConnection, to: TcpConnection, fromSide: 'client' | 'backend'): void {
    if (session.pumping[fromSide]) return;
    session.pumping[fromSide] = true;
    // Straight from one connection's receive buffer into the other's send buffer: no copy in between.
    from.readInto((bytes) => to.write(bytes));
    session.pumping[fromSide] = false;
    const ended = fromSide === 'client' ? session.clientEnded : session.backendEnded;
    if (ended && from.readable === 0) to.close();
    // Both streams whole and handed over: TCP finishes alone, and a connection that lingers in
    // TIME-WAIT for a minute should not keep the session and the other connection with it.
    if (session.clientEnded && session.backendEnded && session.client.connection.readable === 0 && session.backend.connection.readable === 0) {
      session.client.onEvent = session.backend.onEvent = ignore;
    }
  }

  private end(session: Session): void {
    if (session.ended) return;
    session.ended = true;
    this.open.delete(session);
    session.node.sessions--;
    this.counters.sessions_open--;
    this.drain();
  }

  private markDown(node: Node): void {
    if (node.state !== 'down') this.host.log(`[ NaCl LB ] node ${node.label} is down`);
    this.setState(node, 'down');
    node.nextCheck = this.host.now() + CHECK_RETRY;
  }

  /**
   * A node that is down, or still unchecked because its first check found
   * no free port, and has no check under way: tick() checks it once due.
   */
  private awaitsCheck(node: Node): boolean {
    return node.state !== 'up' && !node.checking;
  }

  /** A plain TCP connect; success brings the node up, failure keeps it down. */
  private check(node: Node): void {
    node.checking = true;
    this.counters.health_checks++;
    const socket = this.host.servers.connect(node.address, node.port, (e) => {
      if (e.kind === 'connected') {
        node.checking = false;
        if (node.state === 'down') this.host.log(`[ NaCl LB ] node ${node.label} is up`);
        this.setState(node, 'up');
        socket?.connection.close();
        this.drain();
      } else if ((e.kind === 'reset' || e.kind === 'closed') && node.checking) {
        node.checking = false;
        const wasDown = node.state === 'down';
        this.markDown(node);
        if (wasDown) node.nextCheck = this.host.now() + CHECK_INTERVAL;
      }
    });
    if (!socket) {
      node.checking = false;
      node.nextCheck = this.host.now() + PORT_RETRY;
    }
  }
}

/** Highest-random-weight hashing: each (client, node) pair gets a score; the client goes to the best node that is up. */
function rendezvousScore(source: number, address: number, port: number): number {
  let h = Math.imul(source ^ 0x9e3779b9, 0x85ebca6b) ^ address;
  h = Math.imul(h ^ (h >>> 15), 0xc2b2ae35) ^ port;
  h = Math.imul(h ^ (h >>> 13), 0x27d4eb2f);
  return (h ^ (h >>> 16)) >>> 0;
}

function ignore(): void {}

/**
 * When either connection of a session last made progress: bytes in from a
 * peer, or bytes out acknowledged - a slow client still taking the last of
 * a response is not idle.
 */
function lastProgress(session: Session): number {
  return Math.max(session.client.connection.lastProgress, session.backend.connection.lastProgress);
}
