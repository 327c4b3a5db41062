import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../runtime/port-allocator.ts';
import { CHECK_INTERVAL, CHECK_RETRY, LoadBalancer, PORT_RETRY, WAIT_TIMEOUT } from '../../appliances/load-balancer.ts';
import type { IrLoadBalancer, LbAlgorithm } from '../../compiler/ir.ts';
import { parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import type { TcpSocket, TcpStack } from '../../runtime/tcp/stack.ts';
import { client, echoServer, TcpNet } from '../helpers/tcp-net.ts';

/*
 * The load balancer over TCP stacks joined by an ideal network with a manual
 * clock: clients at 10.0.1.100+, the balancer at 10.0.1.1 (clients' side)
 * and 10.0.2.1 (servers' side), nodes at 10.0.2.10+ port 8000. Each node
 * answers a connection with its name, then echoes what it receives.
 */

interface Options {
  nodes?: number;
  algorithm?: LbAlgorithm;
  sessionLimit?: number;
  waitQueueLimit?: number;
  /** Nodes that listen at start (default: all). */
  up?: number[];
  /** The servers' side ephemeral ports (default: all of 49152-65535). */
  serverPorts?: PortAllocator;
  /** ms (--lb-idle-timeout). */
  idleTimeout?: number;
  /** Runs before the balancer starts (its first node checks). */
  beforeStart?: (servers: TcpStack, net: TcpNet) => void;
}

function setup(options: Options = {}) {
  const count = options.nodes ?? 3;
  const net = new TcpNet();
  const logs: string[] = [];
  const ir: IrLoadBalancer = {
    name: 'lb',
    layer: 'tcp',
    clients: { iface: 'outside', port: 80, waitQueueLimit: options.waitQueueLimit ?? 1000, sessionLimit: options.sessionLimit ?? 1000 },
    servers: { iface: 'inside', algorithm: options.algorithm ?? 'round_robin', pool: Array.from({ length: count }, (_, i) => ({ address: `10.0.2.${10 + i}`, port: 8000 })) },
  };
  const servers = net.stack('10.0.2.1', undefined, options.serverPorts);
  const lb = new LoadBalancer(ir, {
    clients: net.stack('10.0.1.1'),
    servers,
    now: () => net.now,
    log: (l) => logs.push(l),
    ...(options.idleTimeout ? { idleTimeout: options.idleTimeout } : {}),
  });
  net.onTick((now) => lb.tick(now));
  const nodes = Array.from({ length: count }, (_, i) => net.stack(`10.0.2.${10 + i}`));
  const up = options.up ?? nodes.map((_, i) => i);
  const listen = (i: number) => echoServer(nodes[i]!, 8000, `node${i}`);
  for (const i of up) listen(i);
  options.beforeStart?.(servers, net);
  lb.start();
  net.settle();
  let next = 100;
  const connect = (send: string | Uint8Array = '', options: { from?: string; keepOpen?: boolean } = {}) => {
    const from = options.from ?? `10.0.1.${next++}`;
    const stack = net.stacks.get(parseIpv4Address(from)!) ?? net.stack(from);
    return client(stack, '10.0.1.1', 80, send, options.keepOpen);
  };
  /** The node that served a client (the first line of what it received). */
  const servedBy = (send = '', opts: { from?: string } = {}) => {
    const c = connect(send, opts);
    net.advance(100);
    return c.received().split('\n')[0]!;
  };
  return { net, lb, nodes, logs, connect, servedBy, listen, servers };
}

describe('the load balancer', () => {
  it('serves a client it queued when no port was free as soon as one is, with no session ending to wake it', () => {
    const { net, lb, servers, connect } = setup({ nodes: 1, serverPorts: new PortAllocator(() => 0, 50000, 50000) });
    // Something else holds the servers' side only port.
    const holder = servers.connect(parseIpv4Address('10.0.2.10')!, 8000, () => {});
    net.advance(100);
    const c = connect('x', { keepOpen: true });
    net.advance(500);
    expect(c.received()).toBe('');
    expect(lb.counters.waiting).toBe(1);
    // Nothing else would wake it: its host is asked to, PORT_RETRY after the last try.
    expect(lb.nextDeadline()).toBeGreaterThan(net.now);
    expect(lb.nextDeadline()).toBeLessThanOrEqual(net.now + PORT_RETRY);
    holder!.connection.abort();
    net.advance(500);
    expect(c.received()).toBe('node0\nx');
    expect(lb.counters.waiting).toBe(0);
  });

  it('checks again a node whose first check found no free port, once one is free', () => {
    let holder: TcpSocket | null = null;
    const { net, lb } = setup({
      nodes: 1,
      serverPorts: new PortAllocator(() => 0, 50000, 50000),
      // Something else holds the servers' side only port when the balancer starts.
      beforeStart: (servers, n) => {
        holder = servers.connect(parseIpv4Address('10.0.2.10')!, 8000, () => {});
        n.settle();
      },
    });
    expect(lb.counters.nodes_up).toBe(0);
    holder!.connection.abort();
    net.advance(500);
    expect(lb.counters.nodes_up).toBe(1);
  });

  it('times what it relays to a backend idle for a while from the clock: no RTT sample, nor RTO, from the backend\'s last segment', () => {
    const { net, servers, connect } = setup({ nodes: 1 });
    const c = connect('x', { keepOpen: true });
    net.advance(100);
    expect(c.received()).toBe('node0\nx');
    // Quiet for 20 s, then the client sends again: the balancer writes it to the backend from the client's event.
    net.advance(20_000);
    c.socket.connection.write(new TextEncoder().encode('y'));
    net.settle();
    expect(c.received()).toBe('node0\nxy');
    expect(servers.counters.retransmit_timeouts).toBe(0);
    // The next relayed byte, lost, gets an RTO of the short round trip measured, not of the 20 s the backend was quiet.
    net.unplug('10.0.2.10');
    c.socket.connection.write(new TextEncoder().encode('z'));
    net.settle();
    const backend = [...servers['entries'].values()].map((e: { socket: TcpSocket }) => e.socket.connection).find((c) => c.state === 'established');
    expect(backend!.nextTimer()! - net.now).toBeLessThanOrEqual(1000);
  });

  it('asks to be woken for nothing while its nodes are up and no client waits', () => {
    const { net, lb, servedBy } = setup();
    expect(servedBy()).toBe('node0');
    net.advance(1000);
    expect(lb.nextDeadline()).toBe(Infinity);
  });

  it('asks to be woken for the check of a node that is down, and for the timeout of a waiting client', () => {
    const { net, lb, connect } = setup({ up: [] });
    // Every node refused its check at start (time 0).
    expect(lb.nextDeadline()).toBe(CHECK_RETRY);
    net.advance(CHECK_RETRY);
    expect(lb.nextDeadline()).toBe(CHECK_RETRY + CHECK_INTERVAL);
    const since = net.now;
    connect('x', { keepOpen: true });
    net.settle();
    expect(lb.counters.waiting).toBe(1);
    expect(lb.nextDeadline()).toBe(Math.min(CHECK_RETRY + CHECK_INTERVAL, since + WAIT_TIMEOUT));
  });

  it('counts the nodes up and down as soon as a check or a connect finds them so', () => {
    const { lb, nodes, servedBy } = setup();
    expect([lb.counters.nodes_up, lb.counters.nodes_down]).toEqual([3, 0]);
    nodes[0]!.unlisten(8000);
    expect(servedBy()).toBe('node1');
    expect([lb.counters.nodes_up, lb.counters.nodes_down]).toEqual([2, 1]);
  });

  it('checks every node at start with a plain TCP connect', () => {
    const { lb } = setup({ up: [0, 2] });
    expect(lb.counters.health_checks).toBe(3);
    expect(lb.nodes.map((n) => n.state)).toEqual(['up', 'down', 'up']);
  });

  it('splices a client to a node: the node answers, and what the client sends comes back', () => {
    const { net, connect } = setup();
    const c = connect('hello, node');
    net.advance(200);
    expect(c.received()).toBe('node0\nhello, node');
    expect(c.events).toContain('end');
  });

  it('hands sequential clients to the nodes in turn (round_robin)', () => {
    const { servedBy } = setup();
    expect(Array.from({ length: 6 }, () => servedBy())).toEqual(['node0', 'node1', 'node2', 'node0', 'node1', 'node2']);
  });

  it('carries 1 MB each way intact while the client reads slowly (flow control, nothing lost)', () => {
    const { net, connect } = setup({ nodes: 1 });
    const data = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 7 + (i >> 9)) & 255);
    const c = connect(data);
    for (let round = 0; round < 200 && !c.events.includes('end'); round++) {
      c.pause();
      net.advance(100);
      c.resume();
      net.advance(50);
    }
    const got = c.bytes();
    const expected = new Uint8Array(6 + data.length);
    expected.set(new TextEncoder().encode('node0\n'));
    expected.set(data, 6);
    expect(got.length).toBe(expected.length);
    expect(Buffer.from(got).equals(Buffer.from(expected))).toBe(true);
  });

  it('tries the next node at once when a node refuses, marks it down, and logs it', () => {
    const { servedBy, nodes, lb, logs } = setup();
    nodes[1]!.unlisten(8000);
    expect(Array.from({ length: 4 }, () => servedBy())).toEqual(['node0', 'node2', 'node0', 'node2']);
    expect(lb.nodes[1]!.state).toBe('down');
    expect(lb.counters.backend_connect_failures).toBe(1);
    expect(logs).toContain('[ NaCl LB ] node 10.0.2.11:8000 is down');
  });

  it('brings a node back when a later check connects, and uses it again', () => {
    const { net, servedBy, nodes, lb, listen, logs } = setup();
    nodes[1]!.unlisten(8000);
    servedBy();
    servedBy();
    expect(lb.nodes[1]!.state).toBe('down');
    net.advance(50);
    expect([lb.counters.nodes_up, lb.counters.nodes_down]).toEqual([2, 1]);
    listen(1);
    net.advance(CHECK_RETRY);
    expect(lb.nodes[1]!.state).toBe('up');
    expect([lb.counters.nodes_up, lb.counters.nodes_down]).toEqual([3, 0]);
    expect(logs).toContain('[ NaCl LB ] node 10.0.2.11:8000 is up');
    expect(new Set(Array.from({ length: 3 }, () => servedBy()))).toEqual(new Set(['node0', 'node1', 'node2']));
  });

  it('checks a node that stays down every CHECK_INTERVAL after the first retry', () => {
    const { net, lb } = setup({ up: [0] });
    const checks = lb.counters.health_checks;
    net.advance(CHECK_RETRY);
    expect(lb.counters.health_checks).toBe(checks + 2);
    net.advance(CHECK_INTERVAL - 1000);
    expect(lb.counters.health_checks).toBe(checks + 2);
    net.advance(2000);
    expect(lb.counters.health_checks).toBe(checks + 4);
  });

  it('keeps clients waiting while every node is down, and serves them when one comes back', () => {
    const { net, connect, lb, listen } = setup({ up: [] });
    const c = connect('still here?');
    net.advance(1000);
    expect(c.received()).toBe('');
    expect(lb.counters.waiting).toBe(1);
    listen(2);
    net.advance(CHECK_RETRY);
    expect(c.received()).toBe('node2\nstill here?');
    expect(lb.counters.waiting).toBe(0);
  });

  it('keeps a client that every node refused waiting, and serves it when a node is back', () => {
    const { net, connect, nodes, lb, listen } = setup({ nodes: 2 });
    nodes[0]!.unlisten(8000);
    nodes[1]!.unlisten(8000);
    const c = connect('again', { keepOpen: true });
    net.advance(100);
    expect(lb.nodes.map((n) => n.state)).toEqual(['down', 'down']);
    expect(lb.counters.waiting).toBe(1);
    listen(1);
    net.advance(CHECK_RETRY);
    expect(c.received()).toBe('node1\nagain');
  });

  it('marks a node down when a connect to it times out, even if its client left before', () => {
    const { net, connect, lb, logs } = setup({ nodes: 2 });
    net.unplug('10.0.2.10'); // the SYN to the node now goes unanswered
    const c = connect('', { keepOpen: true });
    net.advance(100);
    expect(lb.nodes[0]!.connecting).toBe(1);
    // The client gives up long before the connect timeout, with RST.
    c.socket.connection.abort();
    net.advance(10_000);
    expect(lb.nodes[0]!.state).toBe('down');
    expect(lb.nodes[0]!.connecting).toBe(0);
    expect(lb.counters.backend_connect_failures).toBe(1);
    expect(logs).toContain('[ NaCl LB ] node 10.0.2.10:8000 is down');
    // So the next clients go to the node that answers at once, not to time out in turn.
    const next = connect('', { keepOpen: true });
    net.advance(100);
    expect(next.received()).toBe('node1\n');
  });

  it('does not hold a node responsible for a client that left while it was being connected', () => {
    const { net, connect, lb } = setup({ nodes: 1 });
    const node = net.stacks.get(parseIpv4Address('10.0.2.10')!)!;
    net.unplug('10.0.2.10'); // the first SYN to the node is lost
    const c = connect('', { keepOpen: true });
    net.advance(100);
    c.socket.connection.abort();
    net.advance(100);
    net.stacks.set(parseIpv4Address('10.0.2.10')!, node);
    // The retransmitted SYN gets through: the node is up, and the connection nobody wants is closed.
    net.advance(2_000);
    expect(lb.nodes[0]!.state).toBe('up');
    expect(lb.nodes[0]!.connecting).toBe(0);
    expect(lb.counters.backend_connect_failures).toBe(0);
    expect(lb.counters.sessions_total).toBe(0);
    expect([...node['entries'].values()].filter((x) => x.socket.connection.state === 'established')).toHaveLength(0);
  });

  it('makes clients beyond session_limit wait for a session to end', () => {
    const { net, connect, lb } = setup({ sessionLimit: 1 });
    const first = connect('a', { keepOpen: true });
    net.advance(100);
    const second = connect('b');
    net.advance(100);
    expect(first.received()).toBe('node0\na');
    expect(second.received()).toBe('');
    expect(lb.counters.waiting).toBe(1);
    first.socket.connection.close();
    net.advance(200);
    expect(second.received()).toBe('node1\nb');
  });

  it('refuses a client with RST when wait_queue_limit clients already wait', () => {
    const { net, connect, lb } = setup({ sessionLimit: 1, waitQueueLimit: 1 });
    connect('', { keepOpen: true });
    net.advance(100);
    const waiting = connect('');
    const refused = connect('');
    net.advance(100);
    expect(refused.events).toContain('reset:rst-received');
    expect(waiting.events).not.toContain('reset:rst-received');
    expect(lb.counters.clients_refused).toBe(1);
  });

  it('resets a client that has waited WAIT_TIMEOUT', () => {
    const { net, connect, lb } = setup({ up: [] });
    const c = connect('', { keepOpen: true });
    net.advance(WAIT_TIMEOUT + 100);
    expect(c.events).toContain('reset:rst-received');
    expect(lb.counters.clients_wait_timeout).toBe(1);
    expect(lb.counters.waiting).toBe(0);
  });

  it('resets both sides of a session that moved no byte for the idle timeout, and frees its place', () => {
    const { net, lb, connect } = setup({ nodes: 1, sessionLimit: 1, idleTimeout: 5_000 });
    const silent = connect('', { keepOpen: true });
    net.advance(1_000);
    expect(lb.counters.sessions_open).toBe(1);
    const next = connect('next', { keepOpen: true });
    net.advance(3_000);
    expect(next.received()).toBe('');
    net.advance(2_500);
    expect(silent.events).toContain('reset:rst-received');
    expect(lb.counters.sessions_idle_timeout).toBe(1);
    // The place it held went to the client waiting for it.
    net.advance(100);
    expect(next.received()).toBe('node0\nnext');
  });

  it('keeps a session that is still delivering its last bytes to a slow reader past the idle timeout', () => {
    const { net, lb, connect } = setup({ nodes: 1, idleTimeout: 5_000 });
    // 200 kB echoed back; the client reads 2 kB every 500 ms, so the balancer's send buffer drains for 50 s.
    const c = connect(new Uint8Array(200_000), { keepOpen: true });
    c.pause();
    let got = 0;
    for (let i = 0; i < 40; i++) {
      net.advance(500);
      got += c.socket.connection.read(2000).length;
    }
    expect(got).toBe(80_000);
    expect(c.events).not.toContain('reset:rst-received');
    expect(lb.counters.sessions_idle_timeout).toBe(0);
  });

  it('keeps a session whose bytes keep moving past the idle timeout, and never resets without one', () => {
    const { net, lb, connect } = setup({ nodes: 1, idleTimeout: 2_000 });
    const busy = connect('a', { keepOpen: true });
    for (let i = 0; i < 10; i++) {
      net.advance(1_000);
      busy.socket.connection.write(new TextEncoder().encode('b'));
    }
    net.advance(100);
    expect(busy.received()).toBe('node0\na' + 'b'.repeat(10));
    expect(lb.counters.sessions_idle_timeout).toBe(0);
    const quiet = setup({ nodes: 1 });
    const idle = quiet.connect('', { keepOpen: true });
    quiet.net.advance(600_000);
    expect(idle.events).not.toContain('reset:rst-received');
    expect(quiet.lb.counters.sessions_open).toBe(1);
  });

  it('sends a client address to the same node every time (source_hash)', () => {
    const { servedBy } = setup({ algorithm: 'source_hash', nodes: 4 });
    for (const from of ['10.0.1.7', '10.0.1.8', '10.0.1.9']) {
      const first = servedBy('', { from });
      expect([servedBy('', { from }), servedBy('', { from })]).toEqual([first, first]);
    }
  });

  it('moves only the clients of a node that went down (source_hash)', () => {
    const { servedBy, nodes } = setup({ algorithm: 'source_hash', nodes: 4 });
    const sources = Array.from({ length: 40 }, (_, i) => `10.0.1.${10 + i}`);
    const before = sources.map((from) => servedBy('', { from }));
    const victim = before[0]!;
    nodes[Number(victim.slice(4))]!.unlisten(8000);
    const after = sources.map((from) => servedBy('', { from }));
    sources.forEach((_, i) => {
      if (before[i] !== victim) expect(after[i]).toBe(before[i]);
      else expect(after[i]).not.toBe(victim);
    });
    expect(new Set(before).size).toBeGreaterThan(1);
  });

  it('hands a new client to the node with the fewest open sessions (least_connections)', () => {
    const { net, connect, servedBy } = setup({ algorithm: 'least_connections' });
    const held = [connect('', { keepOpen: true }), connect('', { keepOpen: true })];
    net.advance(100);
    expect(held.map((c) => c.received().split('\n')[0])).toEqual(['node0', 'node1']);
    const third = connect('', { keepOpen: true });
    net.advance(100);
    expect(third.received().split('\n')[0]).toBe('node2');
    held[0]!.socket.connection.close();
    net.advance(200);
    expect(servedBy()).toBe('node0');
  });

  it('resets the client when its node resets the session', () => {
    const { net, connect, nodes } = setup({ nodes: 1 });
    nodes[0]!.unlisten(8000);
    nodes[0]!.listen(8000, { accept: (s) => (s.onEvent = (e) => e.kind === 'readable' && s.connection.abort()) });
    const c = connect('boom', { keepOpen: true });
    net.advance(200);
    expect(c.events).toContain('reset:rst-received');
  });

  it('reports totals and each node in the lb Timer format', () => {
    const { servedBy, nodes, lb } = setup({ nodes: 2 });
    nodes[1]!.unlisten(8000);
    servedBy();
    servedBy();
    const lines = lb.report();
    expect(lines[0]).toMatch(/^Total 2 \(\+2\) Sess 0 Wait 0 TO 0 - Pool 0 C\.Att 0 Err 1 Refused 0$/);
    expect(lines[1]).toBe('[10.0.2.10:8000 ONL P=0 C=0 S=0] [10.0.2.11:8000 OFF P=0 C=0 S=0]');
    expect(lb.report()[0]).toMatch(/^Total 2 \(\+0\)/);
  });

  it('lets a finished session go while its client connection lingers in TIME-WAIT', async () => {
    const { net, nodes, lb } = setup({ nodes: 1, up: [] });
    // An HTTP/1.0-style node: answers and closes first, so the balancer closes the client's side first.
    nodes[0]!.listen(8000, {
      accept(s) {
        s.onEvent = (e) => {
          if (e.kind === 'end') s.connection.close();
          if (e.kind !== 'readable') return;
          s.connection.read();
          s.connection.write(new TextEncoder().encode('ok\n'));
          s.connection.close();
        };
      },
    });
    net.advance(CHECK_RETRY + 100);
    expect(lb.nodes[0]!.state).toBe('up');
    // A client that reads to the end and closes only then.
    const socket = net.stack('10.0.1.100').connect(parseIpv4Address('10.0.1.1')!, 80, (e) => {
      if (e.kind === 'connected') socket.connection.write(new TextEncoder().encode('hi\n'));
      if (e.kind === 'readable') socket.connection.read();
      if (e.kind === 'end') socket.connection.close();
    })!;
    // Weak references to the connections the balancer opens to its node from here on.
    const servers = net.stacks.get(parseIpv4Address('10.0.2.1')!)!;
    const opened: WeakRef<object>[] = [];
    const connect = servers.connect.bind(servers);
    servers.connect = (...args) => {
      const s = connect(...args);
      if (s) opened.push(new WeakRef(s.connection));
      return s;
    };
    net.advance(200);
    const front = net.stacks.get(parseIpv4Address('10.0.1.1')!)!;
    expect([...front['entries'].values()].map((x) => x.socket.connection.state)).toEqual(['time-wait']);
    expect(lb.counters.sessions_open).toBe(0);
    // Only the TIME-WAIT connection is left of the session: the backend's connection is garbage.
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    await new Promise((r) => setTimeout(r, 0));
    gc();
    expect(opened).toHaveLength(1);
    expect(opened[0]!.deref()).toBeUndefined();
  });
});
