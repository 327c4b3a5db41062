import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { shOutput as sh, Topology, waitFor, type Host } from './topology.ts';

/*
 * The load balancer between real Linux hosts: curl in one namespace, three
 * Python HTTP servers in another, the appliance terminating the clients' TCP
 * connections and opening its own to the servers.
 */

const PORTS = [8001, 8002, 8003];
// Both sides filtered, as a real edge would be: clients may open port 80 only, and nothing may
// open a connection to the appliance from the nodes' side; replies pass as established.
const CONFIG = `
Iface outside { index: 0, address: 10.78.1.1, netmask: 255.255.255.0, input: from_clients }
Iface inside { index: 1, address: 10.78.2.1, netmask: 255.255.255.0, input: from_nodes }
Filter::IP from_clients {
  if (ct.state == established) { accept }
  Filter::TCP { if (tcp.dport == 80) { accept } }
  drop
}
Filter::IP from_nodes {
  if (ct.state == established) { accept }
  drop
}
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 100, session_limit: 100 },
  servers: {
    iface: inside,
    algorithm: round_robin,
    pool: [${PORTS.map((p) => `{ address: 10.78.2.5, port: ${p} }`).join(', ')}]
  }
}
Timer t { interval: 1, data: [lb] }
`;

const SERVER = `
import functools, http.server, socketserver, sys
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[2])
Server(('10.78.2.5', int(sys.argv[1])), handler).serve_forever()
`;

/** Three HTTP/1.0 GETs from one client port, each read to the end; prints each body and its connect time. */
const REUSING_CLIENT = `
import socket, time
for i in range(3):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.settimeout(5)
    s.bind(("10.78.1.5", 41234))
    t = time.time()
    s.connect(("10.78.1.1", 80))
    connect = time.time() - t
    s.sendall(b"GET /name HTTP/1.0\\r\\n\\r\\n")
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    s.close()
    print(data.split(b"\\r\\n\\r\\n", 1)[-1].decode(), round(connect, 3))
    time.sleep(0.05)
`;

describeRealNetwork('the TCP load balancer between Linux hosts', () => {
  const topo = new Topology();
  const servers = new Map<number, ChildProcess>();
  const big = randomBytes(4 * 1024 * 1024);
  let client: Host;
  let backends: Host;

  beforeAll(async () => {
    const [tapA, tapB] = await topo.boot(CONFIG, 2);
    client = topo.attach(tapA!, { nic: 0, address: '10.78.1.5/24', gateway: '10.78.1.1' });
    backends = topo.attach(tapB!, { nic: 1, address: '10.78.2.5/24', gateway: '10.78.2.1' });
    writeFileSync(join(topo.dir, 'server.py'), SERVER);
    for (const port of PORTS) {
      const dir = join(topo.dir, `www${port}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'name'), `backend-${port}`);
      writeFileSync(join(dir, 'big'), big);
      const server = spawn('ip', ['netns', 'exec', backends.ns.name, '/usr/bin/python3', join(topo.dir, 'server.py'), String(port), dir], { stdio: 'ignore' });
      servers.set(port, server);
    }
    await waitFor(() => PORTS.every((p) => sh(backends, 'ss -ltn').includes(`:${p}`)));
    // The balancer checked the nodes at boot, before they listened: wait until a check found each up
    // (a node refused before its server started is checked again 8 s later).
    await topo.waitForCounter('lb.nodes_up', PORTS.length);
  }, 40_000);

  afterAll(async () => {
    for (const s of servers.values()) s.kill();
    await topo.teardown();
  });

  const get = (path: string) => sh(client, `curl -s -m 5 http://10.78.1.1/${path}`);

  it('serves clients from every node of the pool, in turn (round robin)', () => {
    const names = Array.from({ length: 6 }, () => get('name'));
    expect(new Set(names)).toEqual(new Set(PORTS.map((p) => `backend-${p}`)));
    // Strict rotation: each node again after the other two.
    expect(names.slice(3)).toEqual(names.slice(0, 3));
  });

  it('serves a client that connects again at once from the port it just used (its four-tuple in TIME-WAIT here)', () => {
    // The balancer closes first, so each connection lingers in TIME-WAIT in the appliance, while
    // the client, which read to the end and closed second, may bind the same port again at once.
    const out = sh(client, `python3 -c '${REUSING_CLIENT}'`);
    const lines = out.trim().split('\n');
    expect(lines, out).toHaveLength(3);
    for (const line of lines) {
      const [name, connect] = line.split(' ');
      expect(name).toMatch(/^backend-800\d$/);
      // Connected on the first SYN: no ACK, RST and SYN retry a second later.
      expect(Number(connect)).toBeLessThan(0.5);
    }
  });

  it('serves 60 clients that connect at once, spreading them over the nodes', () => {
    const out = sh(client, `seq 60 | xargs -P 60 -I{} curl -s -m 10 http://10.78.1.1/name`, 20_000);
    const names = out.match(/backend-800\d/g) ?? [];
    expect(names, out).toHaveLength(60);
    for (const port of PORTS) expect(names.filter((n) => n === `backend-${port}`)).toHaveLength(20);
  });

  it('carries a 4 MB response intact, through both TCP connections', () => {
    const digest = sh(client, 'curl -s -m 20 http://10.78.1.1/big | sha256sum', 30_000).split(' ')[0];
    expect(digest).toBe(createHash('sha256').update(big).digest('hex'));
  });

  it('keeps serving every client when a node dies, and marks it down', async () => {
    servers.get(8002)!.kill();
    await waitFor(() => !sh(backends, 'ss -ltn').includes(':8002'));
    const names = Array.from({ length: 6 }, () => get('name'));
    expect(names.every((n) => n === 'backend-8001' || n === 'backend-8003')).toBe(true);
    expect(new Set(names).size).toBe(2);
    const counters = await topo.counters();
    expect(counters['lb.backend_connect_failures']).toBeGreaterThanOrEqual(1);
    expect(topo.output.some((l) => l.includes('node 10.78.2.5:8002 is down'))).toBe(true);
  });

  it('lets only what its input filters allow reach it', () => {
    expect(sh(client, 'nc -z -w 2 10.78.1.1 80; echo rc=$?')).toContain('rc=0');
    expect(sh(client, 'nc -z -w 2 10.78.1.1 81; echo rc=$?')).toContain('rc=1');
    expect(sh(backends, 'nc -z -w 2 10.78.2.1 80; echo rc=$?')).toContain('rc=1');
  });

  it('reports its sessions and nodes in the lb Timer item', async () => {
    await waitFor(() => topo.output.some((l) => /\[ NaCl Timer LB \] Total \d+/.test(l)) && topo.output.some((l) => l.includes('[10.78.2.5:8002 OFF')));
    const total = topo.output.filter((l) => l.includes('[ NaCl Timer LB ] Total')).pop()!;
    expect(Number(/Total (\d+)/.exec(total)![1])).toBeGreaterThanOrEqual(13);
  });
});
