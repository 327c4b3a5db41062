import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { shOutput as sh, Topology, waitFor, type Host } from './topology.ts';

/*
 * The load balancer when its nodes fail, between real Linux hosts: curl in
 * one namespace, three small Python HTTP servers in another (one process
 * per node, so one can be killed), nftables in the nodes' namespace to
 * blackhole one node. What runtime-semantics.md 7.4-7.5 and the README
 * promise: a node is marked down only when a connect to it fails (refused,
 * or no answer for 10 s), the client is then tried on the next node at once,
 * and a down node is checked 8 s later, then every 30 s; an established
 * session that breaks does not mark its node down, and the break reaches the
 * client (RST for RST, FIN for FIN). With every node down, clients are
 * accepted and wait (60 s at most) for a check to find a node up. The
 * appliance runs with --lb-idle-timeout, as it would in production: the
 * only way a session to a node that vanished without a word ends.
 */

const NODE = '10.79.2.5';
const PORTS = [8001, 8002, 8003];
const IDLE_TIMEOUT = 3;
const CONFIG = `
Iface outside { index: 0, address: 10.79.1.1, netmask: 255.255.255.0 }
Iface inside { index: 1, address: 10.79.2.1, netmask: 255.255.255.0 }
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 100, session_limit: 100 },
  servers: {
    iface: inside,
    algorithm: round_robin,
    pool: [${PORTS.map((p) => `{ address: ${NODE}, port: ${p} }`).join(', ')}]
  }
}
`;

/**
 * One node: HTTP/1.0 on the port it is given, answering each path with a
 * way of failing. Every response names the node in X-Node (and /name in
 * its body) so that a test knows which node a client got.
 */
const SERVER = `
import socket, socketserver, struct, sys, time
port = int(sys.argv[1])
name = b"backend-%d" % port

def head(length):
    return b"HTTP/1.0 200 OK\\r\\nX-Node: %s\\r\\nContent-Length: %d\\r\\n\\r\\n" % (name, length)

def reset(sock):
    # SO_LINGER with a zero timeout: close() sends RST and discards what is unsent.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        request = b""
        while b"\\r\\n\\r\\n" not in request:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            request += chunk
        path = request.split(b" ")[1]
        if path == b"/name":
            self.request.sendall(head(len(name)) + name)
        elif path == b"/slow":
            # 8 MiB at about 3 MB/s: long enough to kill the node in the middle.
            self.request.sendall(head(8 << 20))
            for _ in range(128):
                self.request.sendall(bytes(64 << 10))
                time.sleep(0.02)
        elif path == b"/reset":
            reset(self.request)
        elif path == b"/reset-midway":
            # A quarter of the promised body, time for it to reach the client, then RST.
            self.request.sendall(head(1 << 20) + bytes(256 << 10))
            time.sleep(0.3)
            reset(self.request)
        # /close: closed without a byte of response.

class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True

Server(("${NODE}", port), Handler).serve_forever()
`;

/** A client that sends a request, waits 2 s for an answer, and gives up with RST (SO_LINGER 0), as some load testers and proxies do. */
const RESETTING_CLIENT = `
import socket, struct
s = socket.create_connection(("10.79.1.1", 80), timeout=5)
s.sendall(b"GET /name HTTP/1.0\\r\\n\\r\\n")
s.settimeout(2)
try:
    print(s.recv(4096))
except socket.timeout:
    print("gave up")
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
`;

describeRealNetwork('the TCP load balancer when its nodes fail, between Linux hosts', () => {
  const topo = new Topology();
  const servers = new Map<number, ChildProcess>();
  const clients = new Set<ChildProcess>();
  let client: Host;
  let backends: Host;
  let hasNft = false;

  const startNode = (port: number) => {
    const server = spawn('ip', ['netns', 'exec', backends.ns.name, '/usr/bin/python3', join(topo.dir, 'server.py'), String(port)], { stdio: 'ignore' });
    servers.set(port, server);
  };
  const listening = (port: number) => sh(backends, 'ss -ltn').includes(`${NODE}:${port}`);
  /** Kills a node's server process outright (SIGKILL), as a crash would, and waits until its port is closed. */
  const killNode = async (port: number) => {
    servers.get(port)!.kill('SIGKILL');
    await waitFor(() => !listening(port));
  };

  /** A client command run in the background, so the test can act while it waits; resolves to what it printed. */
  const background = (script: string): Promise<string> =>
    new Promise((resolve) => {
      const child = spawn('ip', ['netns', 'exec', client.ns.name, 'sh', '-c', `${script} 2>&1`], { stdio: ['ignore', 'pipe', 'pipe'] });
      clients.add(child);
      let out = '';
      child.stdout!.on('data', (d) => (out += String(d)));
      child.stderr!.on('data', (d) => (out += String(d)));
      child.on('close', () => {
        clients.delete(child);
        resolve(out.trim());
      });
    });
  /** GET /name: "<node> t=<seconds> rc=<curl's exit code>". */
  const name = (timeout = 30) => sh(client, `curl -s -m ${timeout} -w ' t=%{time_total}' http://10.79.1.1/name; echo " rc=$?"`, (timeout + 5) * 1000).trim();
  const nodeOf = (out: string) => /backend-\d+/.exec(out)?.[0];
  const downLogs = (port: number) => topo.output.filter((l) => l.includes(`node ${NODE}:${port} is down`)).length;
  const upLogs = (port: number) => topo.output.filter((l) => l.includes(`node ${NODE}:${port} is up`)).length;
  /** Sends clients until one is served by the node before `port` in the pool: round robin gives the next one to `port`. */
  const steerTo = (port: number) => {
    const before = `backend-${PORTS[(PORTS.indexOf(port) + PORTS.length - 1) % PORTS.length]}`;
    for (let i = 0; i < PORTS.length + 1; i++) if (nodeOf(name()) === before) return;
    throw new Error(`no client was served by ${before}:\n${topo.output.join('\n')}`);
  };
  /** Drops every packet to and from these nodes' ports in the nodes' namespace: hosts that are gone, not ones that refuse. */
  const blackhole = (...ports: number[]) =>
    backends.ns.sh(
      [
        'nft add table inet blackhole',
        "nft 'add chain inet blackhole in { type filter hook input priority 0; }'",
        "nft 'add chain inet blackhole out { type filter hook output priority 0; }'",
        `nft add rule inet blackhole in tcp dport '{ ${ports.join(', ')} }' drop`,
        `nft add rule inet blackhole out tcp sport '{ ${ports.join(', ')} }' drop`,
      ].join(' && '),
    );
  const restore = () => backends.ns.sh('nft delete table inet blackhole 2>/dev/null || true');
  const waitForLog = (count: () => number, expected: number, ms: number) =>
    waitFor(() => count() >= expected, ms, () => `for the log line (${count()} of ${expected}):\n${topo.output.join('\n')}`);

  beforeAll(async () => {
    hasNft = requireTool('nft');
    const [tapA, tapB] = await topo.boot(CONFIG, 2, {}, ['--lb-idle-timeout', String(IDLE_TIMEOUT)]);
    client = topo.attach(tapA!, { nic: 0, address: '10.79.1.5/24', gateway: '10.79.1.1' });
    backends = topo.attach(tapB!, { nic: 1, address: `${NODE}/24`, gateway: '10.79.2.1' });
    writeFileSync(join(topo.dir, 'server.py'), SERVER);
    for (const port of PORTS) startNode(port);
    await waitFor(() => PORTS.every(listening));
    // The checks at boot ran before the servers listened: wait until a check finds each up.
    await topo.waitForCounter('lb.nodes_up', PORTS.length);
  }, 40_000);

  afterAll(async () => {
    for (const c of clients) c.kill('SIGKILL');
    for (const s of servers.values()) s.kill('SIGKILL');
    await topo.teardown();
  });

  it('cuts a client short promptly when its node dies in the middle of a response, and serves the next clients from the others', async () => {
    const headers = join(topo.dir, 'slow-headers');
    const body = join(topo.dir, 'slow-body');
    const transfer = background(`curl -s -m 20 -D ${headers} -o ${body} -w 'size=%{size_download}' http://10.79.1.1/slow; echo " rc=$?"`);
    await waitFor(() => existsSync(body) && statSync(body).size > 0, 5000, () => 'for the transfer to start');
    const victim = Number(/X-Node: backend-(\d+)/.exec(readFileSync(headers, 'utf8'))![1]);
    const killedAt = Date.now();
    await killNode(victim);
    const out = await transfer;
    // The node's kernel sent what the process had written, then FIN: the balancer passed the FIN on,
    // and curl knows from Content-Length that the body is short (exit 18, partial file).
    expect(out).toMatch(/ rc=18/);
    expect(Number(/size=(\d+)/.exec(out)![1])).toBeLessThan(8 << 20);
    expect(Date.now() - killedAt).toBeLessThan(5000);
    await topo.waitForCounter('lb.sessions_open', 0);
    // A broken session is no connect failure: the node is not down until a connect to it is refused.
    expect(downLogs(victim)).toBe(0);
    const served = Array.from({ length: 4 }, () => name());
    for (const out of served) expect(out, served.join('\n')).toMatch(/^backend-\d+ t=[\d.]+ rc=0$/);
    expect(served.map(nodeOf)).not.toContain(`backend-${victim}`);
    // The first of them was refused by the dead node, which is down from then on.
    await waitForLog(() => downLogs(victim), 1, 5000);
    startNode(victim);
    await waitForLog(() => upLogs(victim), 1, 20_000);
  });

  it('passes a node reset or close on to the client, and keeps the node in rotation', async () => {
    const downs = PORTS.map(downLogs);
    const failures = (await topo.counters())['lb.backend_connect_failures'];
    // RST before any response, RST in the middle of one, a close with no response (curl 52: empty reply).
    const reset = sh(client, `curl -s -m 10 -o /dev/null http://10.79.1.1/reset; echo rc=$?`);
    const midway = sh(client, `curl -s -m 10 -o /dev/null -w 'size=%{size_download}' http://10.79.1.1/reset-midway; echo " rc=$?"`);
    const closed = sh(client, `curl -s -m 10 -o /dev/null http://10.79.1.1/close; echo rc=$?`);
    expect(reset).toContain('rc=56');
    expect(midway).toMatch(/ rc=56/);
    expect(Number(/size=(\d+)/.exec(midway)![1])).toBeLessThan(1 << 20);
    expect(closed).toContain('rc=52');
    await topo.waitForCounter('lb.sessions_open', 0);
    // Each of the three went to a node in turn, and none of them is down for it: all three serve again.
    expect(PORTS.map(downLogs)).toEqual(downs);
    expect((await topo.counters())['lb.backend_connect_failures']).toBe(failures);
    expect(new Set(Array.from({ length: 3 }, () => nodeOf(name())))).toEqual(new Set(PORTS.map((p) => `backend-${p}`)));
  });

  it('resets a client whose node vanished in the middle of a response once the session is idle (--lb-idle-timeout)', async () => {
    if (!hasNft) return;
    const headers = join(topo.dir, 'vanish-headers');
    const body = join(topo.dir, 'vanish-body');
    const before = (await topo.counters())['lb.sessions_idle_timeout']!;
    const transfer = background(`curl -s -m 30 -D ${headers} -o ${body} -w 'size=%{size_download}' http://10.79.1.1/slow; echo " rc=$?"`);
    await waitFor(() => existsSync(body) && statSync(body).size > 0, 5000, () => 'for the transfer to start');
    const victim = Number(/X-Node: backend-(\d+)/.exec(readFileSync(headers, 'utf8'))![1]);
    // No FIN and no RST will come: without the idle timeout the client would wait for good.
    blackhole(victim);
    const vanishedAt = Date.now();
    try {
      const out = await transfer;
      expect(out).toMatch(/ rc=56/);
      expect(Number(/size=(\d+)/.exec(out)![1])).toBeLessThan(8 << 20);
      const waited = Date.now() - vanishedAt;
      expect(waited).toBeGreaterThan((IDLE_TIMEOUT - 1) * 1000);
      expect(waited).toBeLessThan((IDLE_TIMEOUT + 7) * 1000);
      expect((await topo.counters())['lb.sessions_idle_timeout']).toBe(before + 1);
      await topo.waitForCounter('lb.sessions_open', 0);
    } finally {
      restore();
    }
  });

  it('serves a client after the connect timeout from another node when its node is blackholed, and uses the node again once it is back', async () => {
    if (!hasNft) return;
    const victim = 8003;
    const [downs, ups] = [downLogs(victim), upLogs(victim)];
    steerTo(victim);
    blackhole(victim);
    try {
      const out = name();
      // 10 s unanswered SYNs, then the next node at once.
      expect(out).toMatch(/^backend-8001 t=[\d.]+ rc=0$/);
      const seconds = Number(/t=([\d.]+)/.exec(out)![1]);
      expect(seconds).toBeGreaterThan(9);
      expect(seconds).toBeLessThan(20);
      await waitForLog(() => downLogs(victim), downs + 1, 5000);
    } finally {
      restore();
    }
    // Checked 8 s after the failure.
    await waitForLog(() => upLogs(victim), ups + 1, 20_000);
    steerTo(victim);
    expect(nodeOf(name())).toBe(`backend-${victim}`);
  }, 60_000);

  it('marks a blackholed node down even when its client gave up first, by closing or by resetting', async () => {
    if (!hasNft) return;
    const downs = PORTS.map(downLogs);
    steerTo(8002);
    blackhole(8002, 8003);
    try {
      // One client to each blackholed node, in turn; each gives up after 2 s, long before the
      // balancer's 10 s connect timeout: curl closes (FIN), the other client resets (RST).
      const resetting = sh(client, `python3 -c '${RESETTING_CLIENT}'`);
      expect(resetting).toContain('gave up');
      expect(sh(client, 'curl -s -m 2 http://10.79.1.1/name; echo rc=$?')).toContain('rc=28');
      // The connects they left go on, and their timeouts mark both nodes down: later clients are
      // not sent to them to time out in turn.
      await waitForLog(() => downLogs(8002), downs[1]! + 1, 15_000);
      await waitForLog(() => downLogs(8003), downs[2]! + 1, 15_000);
      const served = Array.from({ length: 3 }, () => name());
      for (const out of served) {
        expect(out).toMatch(/^backend-8001 t=[\d.]+ rc=0$/);
        expect(Number(/t=([\d.]+)/.exec(out)![1])).toBeLessThan(3);
      }
    } finally {
      restore();
    }
  }, 40_000);

  it('keeps a client waiting while every node is down, and serves it once one is back', async () => {
    for (const port of PORTS) if (listening(port)) await killNode(port);
    const waiting = background(`curl -s -m 55 -w ' t=%{time_total}' http://10.79.1.1/name; echo " rc=$?"`);
    // Accepted, not refused: every node refuses or is down, so the client waits in the queue.
    await topo.waitForCounter('lb.waiting', 1);
    await topo.waitForCounter('lb.nodes_down', 3);
    expect((await topo.counters())['lb.clients_refused']).toBe(0);
    const restartedAt = Date.now();
    for (const port of PORTS) startNode(port);
    const out = await waiting;
    expect(out).toMatch(/^backend-\d+ t=[\d.]+ rc=0$/);
    // The next check (8 s after a node was marked down, 30 s after a failed check) brings one up.
    expect(Date.now() - restartedAt).toBeLessThan(45_000);
    await topo.waitForCounter('lb.waiting', 0);
  }, 70_000);
});
