/*
 * `npm run bench:lb` (root): the TCP load balancer against haproxy, between
 * Linux network namespaces this script creates and deletes:
 *   (a) haproxy (mode tcp, round robin) in a router namespace over veth pairs - the baseline;
 *   (b) the same haproxy with its links through bare TAP wires (this process copying frames
 *       between TAP devices), which shows what TAP links alone cost;
 *   (c) the appliance's load balancer on TAP devices.
 * Two measures: one bulk TCP stream through the balancer (iperf3, one node),
 * and short connections per second (each: connect, send a line, read the
 * node's answer, close; 8 at a time, three nodes).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchNamespaces, configure, installed, moveInto, nsAsync, sh } from './namespaces.ts';
import { tapWire } from './tap-wire.ts';

const root = join(import.meta.dirname, '..');
const seconds = Number(process.env['BENCH_SECONDS'] ?? 3);
const spaces = new BenchNamespaces();
const suffix = spaces.suffix;
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'nacl-bench-lb-'));
const NODE_PORTS = [7001, 7002, 7003];

const newNs = (label: string) => spaces.create(label);
function background(name: string, ...args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', name, ...args], { stdio: 'ignore' });
  children.push(child);
  return child;
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A node: answers each connection with one line, after reading one. */
const NODE = `
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(100)
        self.request.sendall(b'ok\\n')
class S(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 128
S((sys.argv[1], int(sys.argv[2])), H).serve_forever()
`;

/** Short connections, 8 at a time, for `seconds`: prints how many completed. */
const CLIENT = `
const net = require('node:net');
const [host, port, seconds] = process.argv.slice(2);
let done = 0, failed = 0;
const end = Date.now() + Number(seconds) * 1000;
function one() {
  if (Date.now() >= end) return;
  const s = net.connect(Number(port), host, () => s.write('hi\\n'));
  let got = '';
  s.on('data', (d) => (got += d));
  s.on('close', () => { if (got === 'ok\\n') done++; else failed++; one(); });
  s.on('error', () => {});
}
for (let i = 0; i < 8; i++) one();
setTimeout(() => { console.log(JSON.stringify({ done, failed })); process.exit(0); }, Number(seconds) * 1000 + 500);
`;

interface Result {
  tcpMbps: number;
  connectionsPerSecond: number;
  failed: number;
}

/** One bulk TCP stream through the balancer at `address` to iperf3 on the node. */
async function bulk(client: string, nodes: string, nodeAddress: string, address: string, settle: number): Promise<number> {
  const server = background(nodes, 'iperf3', '-s', '-B', nodeAddress, '-p', '5201');
  await sleep(settle);
  try {
    let out: string;
    try {
      out = await nsAsync(client, ['iperf3', '-c', address, '-p', '5201', '-t', String(seconds), '--json'], (seconds + 20) * 1000);
    } catch (err) {
      out = String((err as { stdout?: string }).stdout ?? '{}');
    }
    const iperf = JSON.parse(out);
    if (iperf.error || !iperf.end?.sum_received) {
      console.warn(`iperf3 through ${address}: ${iperf.error ?? 'no result'}`);
      return 0;
    }
    return iperf.end.sum_received.bits_per_second / 1e6;
  } finally {
    server.kill();
  }
}

/** Short connections through the balancer at `address` to the three line-answering nodes. */
async function short(client: string, nodes: string, nodeAddress: string, address: string, settle: number): Promise<{ perSecond: number; failed: number }> {
  writeFileSync(join(dir, 'node.py'), NODE);
  writeFileSync(join(dir, 'client.cjs'), CLIENT);
  const servers = NODE_PORTS.map((port) => background(nodes, 'python3', join(dir, 'node.py'), nodeAddress, String(port)));
  await sleep(settle);
  try {
    const counts = JSON.parse(await nsAsync(client, [process.execPath, join(dir, 'client.cjs'), address, '80', String(seconds)], (seconds + 20) * 1000)) as { done: number; failed: number };
    return { perSecond: counts.done / seconds, failed: counts.failed };
  } finally {
    for (const s of servers) s.kill();
  }
}

/**
 * haproxy in a router namespace between a client and a nodes namespace.
 * Links: veth pairs, or bare TAP wires (two TAP devices whose frames this
 * process copies), which carry frames one by one as the appliance's TAP
 * devices do, where veth passes 64 KiB GSO segments.
 */
async function haproxy(links: 'veth' | 'tap'): Promise<Result> {
  const tag = links === 'veth' ? 'h' : 't';
  const c = newNs(`${tag}c`);
  const n = newNs(`${tag}n`);
  const r = newNs(`${tag}r`);
  const ends: [string, string, string][] = [
    [c, `${tag}vc${suffix}`, '10.95.1.5/24'],
    [n, `${tag}vn${suffix}`, '10.95.2.5/24'],
    [r, `${tag}rc${suffix}`, '10.95.1.1/24'],
    [r, `${tag}rn${suffix}`, '10.95.2.1/24'],
  ];
  const wires: { close(): void }[] = [];
  if (links === 'veth') {
    sh('ip', ['link', 'add', ends[0]![1], 'netns', c, 'type', 'veth', 'peer', 'name', ends[2]![1], 'netns', r]);
    sh('ip', ['link', 'add', ends[1]![1], 'netns', n, 'type', 'veth', 'peer', 'name', ends[3]![1], 'netns', r]);
    for (const [name, dev, addr] of ends) configure(name, dev, addr);
  } else {
    wires.push(tapWire(ends[0]![1], ends[2]![1]), tapWire(ends[1]![1], ends[3]![1]));
    for (const [name, dev, addr] of ends) moveInto(name, dev, addr);
  }
  const config = join(dir, `haproxy-${links}.cfg`);
  writeFileSync(
    config,
    `global
  maxconn 4096
defaults
  mode tcp
  timeout connect 10s
  timeout client 60s
  timeout server 60s
frontend short
  bind 10.95.1.1:80
  default_backend nodes
backend nodes
  balance roundrobin
${NODE_PORTS.map((p, i) => `  server n${i} 10.95.2.5:${p}`).join('\n')}
frontend bulk
  bind 10.95.1.1:5201
  default_backend iperf
backend iperf
  server i0 10.95.2.5:5201
`,
  );
  const proxy = background(r, 'haproxy', '-f', config, '-db');
  await sleep(500);
  try {
    const tcpMbps = await bulk(c, n, '10.95.2.5', '10.95.1.1', 800);
    const { perSecond, failed } = await short(c, n, '10.95.2.5', '10.95.1.1', 800);
    return { tcpMbps, connectionsPerSecond: perSecond, failed };
  } finally {
    proxy.kill();
    for (const w of wires) w.close();
  }
}

/** Boots an image whose one Load_balancer listens on `port` with `pool`, between two fresh namespaces. */
async function bootBalancer(tag: string, port: number, pool: number[]): Promise<{ client: string; nodes: string; child: ChildProcess }> {
  const config = `Iface outside { index: 0, address: 10.94.1.1, netmask: 255.255.255.0 }
Iface inside { index: 1, address: 10.94.2.1, netmask: 255.255.255.0 }
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: ${port}, wait_queue_limit: 1000, session_limit: 1000 },
  servers: { iface: inside, algorithm: round_robin, pool: [${pool.map((p) => `{ address: 10.94.2.5, port: ${p} }`).join(', ')}] }
}
`;
  writeFileSync(join(dir, `${tag}.nacl`), config);
  sh(process.execPath, [join(root, 'dist', 'nacl.js'), 'build', join(dir, `${tag}.nacl`), '-o', join(dir, `${tag}.nimg`)]);
  const ta = `nbl${suffix}${tag}a`;
  const tb = `nbl${suffix}${tag}b`;
  const child = spawn(process.execPath, [join(root, 'dist', 'nacl.js'), 'boot', join(dir, `${tag}.nimg`), ...(process.env['LB_PCAP'] ? ['--pcap-out', join(process.env['LB_PCAP'], tag)] : []), '--nic', `0=tap:${ta}`, '--nic', `1=tap:${tb}`], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await new Promise<void>((resolve) => child.stdout!.on('data', (d) => String(d).includes('ready') && resolve()));
  const client = newNs(`${tag}c`);
  const nodes = newNs(`${tag}n`);
  moveInto(client, ta, '10.94.1.5/24');
  moveInto(nodes, tb, '10.94.2.5/24');
  return { client, nodes, child };
}

async function appliance(): Promise<Result> {
  // One Load_balancer per config: the bulk stream and the short connections each get an image of their own.
  const b = await bootBalancer('b', 5201, [5201]);
  // The balancer checks its nodes at boot, before they listen; the check's SYN is retried until they
  // do (1 s, then 2 s): wait for that, so that no check's connection meets iperf3's one-test server.
  const tcpMbps = await bulk(b.client, b.nodes, '10.94.2.5', '10.94.1.1', 3500);
  b.child.kill('SIGTERM');
  const s = await bootBalancer('s', 80, NODE_PORTS);
  const { perSecond, failed } = await short(s.client, s.nodes, '10.94.2.5', '10.94.1.1', 3500);
  s.child.kill('SIGTERM');
  return { tcpMbps, connectionsPerSecond: perSecond, failed };
}

if (!installed('haproxy') || !installed('iperf3')) {
  console.error('bench:lb needs haproxy and iperf3 (apt-get install haproxy iperf3) and root.');
  process.exit(2);
}
try {
  const rows: [string, Result][] = [];
  rows.push(['(a) haproxy 2 (mode tcp, round robin), veth', await haproxy('veth')]);
  rows.push(['(b) haproxy 2, links through bare TAP wires', await haproxy('tap')]);
  rows.push(['(c) appliance load balancer, TAP', await appliance()]);
  const base = rows[0]![1];
  const w = Math.max(...rows.map(([name]) => name.length));
  console.log(`${'path'.padEnd(w)}  ${'TCP Mbit/s'.padStart(10)}  ${'ratio'.padStart(5)}  ${'conn/s'.padStart(7)}  ${'ratio'.padStart(5)}  ${'failed'.padStart(6)}`);
  for (const [name, r] of rows) {
    console.log(
      `${name.padEnd(w)}  ${r.tcpMbps.toFixed(0).padStart(10)}  ${(r.tcpMbps / base.tcpMbps).toFixed(2).padStart(5)}  ${r.connectionsPerSecond.toFixed(0).padStart(7)}  ${(r.connectionsPerSecond / base.connectionsPerSecond).toFixed(2).padStart(5)}  ${String(r.failed).padStart(6)}`,
    );
  }
  console.log(`\nratios are to (a). ${seconds}s per measure; clients, nodes and balancer share the machine's cores, so numbers vary with load.`);
} finally {
  for (const child of children) child.kill('SIGTERM');
  await sleep(300);
  spaces.deleteAll();
}
