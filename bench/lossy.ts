/*
 * `npm run bench:lossy` (root): bulk TCP through a load balancer when the
 * client's link loses and damages frames - how well each TCP recovers, not
 * only how fast it runs on a clean wire. Between network namespaces this
 * script creates and deletes:
 *   (a) haproxy (mode tcp) in a router namespace - the reference;
 *   (b) the appliance's Load_balancer.
 * The client's link is the relay process test/helpers/lossy-link.ts: the
 * client's TAP device on one side, a UDP socket speaking the appliance's UDP
 * NIC framing on the other, losing a DROP share of the frames each way and
 * flipping a bit in a CORRUPT share (seeded). The appliance's NIC 0 is that
 * socket's peer. haproxy needs a network device instead, so a second relay
 * with no faults turns the UDP side back into a TAP device in the router
 * namespace - both subjects then meet the same lossy relay, with the same
 * rates and seed. The UDP hop loses datagrams of its own when a socket's
 * receive buffer is full; those are counted and printed too. The node is a
 * Linux host on a clean link (veth for haproxy, TAP for the appliance, as in
 * bench:lb). Each setting: a download and an upload of BENCH_MB MB (default
 * 2) with curl, median of 3, each checked by its SHA-256; a row with a failed
 * or damaged transfer says FAILED.
 *
 * The Linux hosts use the kernel's congestion control unless BENCH_CC names
 * another (reno, cubic, bbr). It matters for the download, where haproxy's
 * host sends over the lossy link: BBR does not take loss for congestion,
 * while the appliance's TCP (NewReno/RFC 6675) halves its window on each
 * loss, as reno and cubic do.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchNamespaces, configure, installed, moveInto, nsAsync, sh } from './namespaces.ts';

const root = join(import.meta.dirname, '..');
const MB = Number(process.env['BENCH_MB'] ?? 2);
const RUNS = 3;
const SEED = 7;
const SETTINGS = [
  { drop: 0, corrupt: 0 },
  { drop: 0.01, corrupt: 0.005 },
  { drop: 0.03, corrupt: 0.02 },
];
const CC = process.env['BENCH_CC'];
const spaces = new BenchNamespaces();
/** A namespace for the bench, with BENCH_CC's congestion control when given. */
function namespace(label: string): string {
  const name = spaces.create(label);
  if (CC) sh('ip', ['netns', 'exec', name, 'sysctl', '-qw', `net.ipv4.tcp_congestion_control=${CC}`]);
  return name;
}
const suffix = spaces.suffix;
const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'nacl-bench-lossy-'));
const download = randomBytes(MB * 1024 * 1024);
const upload = randomBytes(MB * 1024 * 1024);
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const [downloadSha, uploadSha] = [sha256(download), sha256(upload)];
let nextPort = 30000 + Math.floor(Math.random() * 20000);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
function background(name: string, ...args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', name, ...args], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** The node: GET answers the download body, POST reads the whole body and answers its SHA-256. */
const NODE = `
import hashlib, http.server, sys
BODY = open(sys.argv[3], 'rb').read()
class H(http.server.BaseHTTPRequestHandler):
    def answer(self, data):
        self.send_response(200)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def do_GET(self):
        self.answer(BODY)
    def do_POST(self):
        left = int(self.headers['Content-Length'])
        h = hashlib.sha256()
        while left > 0:
            chunk = self.rfile.read(min(left, 65536))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        self.answer(h.hexdigest().encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()
`;

/** Resolves once `child` printed `text`; rejects after `ms` or if it exits first. */
function waitForOutput(child: ChildProcess, text: string, ms: number, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no '${text}' after ${ms} ms: ${out}`)), ms);
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes(text)) {
        clearTimeout(timer);
        resolve(out);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}): ${out}`));
    });
  });
}

/** Polls `check` every 200 ms until it holds; throws after `ms`. */
async function until(check: () => Promise<boolean> | boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/**
 * Datagrams the kernel dropped because a UDP socket's receive buffer was
 * full (/proc/net/udp), summed over the loopback sockets bound to `ports`:
 * loss the UDP hop adds on top of the injected faults.
 */
function udpDrops(ports: number[]): number {
  let drops = 0;
  for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const port = parseInt(fields[1]?.split(':')[1] ?? '', 16);
    if (ports.includes(port)) drops += Number(fields[fields.length - 1]);
  }
  return drops;
}

interface Relay {
  /** Stops the relay and answers its fault counters. */
  stop(): Promise<Record<string, number>>;
}

/** One lossy-link relay process: TAP device `tap` <-> UDP `port`, sending to `peer` on loopback. */
async function relay(tap: string, port: number, peer: number, drop: number, corrupt: number): Promise<Relay> {
  const script = join(root, 'test', 'helpers', 'lossy-link.ts');
  const child = spawn(process.execPath, [join(root, 'scripts', 'run-ts.mjs'), script, tap, String(port), String(peer), String(drop), String(corrupt), String(SEED)], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitForOutput(child, 'ready', 20_000, `relay ${tap}`);
  return {
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return {};
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      const last = out.trim().split('\n').pop() ?? '';
      return last.startsWith('{') ? (JSON.parse(last) as Record<string, number>) : {};
    },
  };
}

interface Measured {
  /** MB/s of the median run, or undefined when a run failed. */
  mbPerSecond: number | undefined;
  failures: string[];
}

/** Seconds curl took, from its `-w '%{time_total}'` at the end of `out`. */
const curlSeconds = (out: string) => Number(out.trim().split('\n').pop());

/** One download of the body through the balancer into a file, checked by its digest; answers seconds. */
async function fetchOnce(client: string, file: string): Promise<number> {
  rmSync(file, { force: true });
  const out = await nsAsync(client, ['curl', '-s', '-S', '-m', '120', '-o', file, '-w', '%{time_total}', 'http://10.93.1.1/'], 130_000);
  if (sha256(readFileSync(file)) !== downloadSha) throw new Error('the download arrived damaged or short');
  return curlSeconds(out);
}

/** One upload through the balancer; the node answers the digest of what it read. Answers seconds. */
async function sendOnce(client: string, file: string): Promise<number> {
  const out = await nsAsync(client, ['curl', '-s', '-S', '-m', '120', '-H', 'Expect:', '--data-binary', `@${file}`, '-w', '\n%{time_total}', 'http://10.93.1.1/'], 130_000);
  if (out.trim().split('\n')[0] !== uploadSha) throw new Error('the upload arrived damaged or short');
  return curlSeconds(out);
}

/** An error's first line, without the command line nsAsync puts before a command's own words. */
function why(err: unknown): string {
  const message = (err as Error).message;
  const at = message.indexOf(' failed (');
  return (at >= 0 ? message.slice(at + 1) : message).split('\n')[0]!.trim();
}

/** RUNS transfers; the median's MB/s, or every failure. */
async function measure(once: () => Promise<number>): Promise<Measured> {
  const times: number[] = [];
  const failures: string[] = [];
  for (let i = 0; i < RUNS; i++) {
    try {
      times.push(await once());
    } catch (err) {
      failures.push(why(err));
    }
  }
  if (failures.length > 0) return { mbPerSecond: undefined, failures };
  times.sort((a, b) => a - b);
  return { mbPerSecond: MB / times[Math.floor(RUNS / 2)]!, failures };
}

interface SubjectResult {
  down: Measured;
  up: Measured;
  /** The lossy relay's counters (TAP frames and faults injected). */
  faults: Record<string, number>;
  /** Datagrams dropped by the link's UDP sockets. */
  udpDrops: number;
}

/** Starts the node's server in namespace `nodes` and measures both directions from `client`. */
async function transfers(client: string, nodes: string, ready: () => Promise<void>): Promise<{ down: Measured; up: Measured }> {
  const server = background(nodes, 'python3', join(dir, 'node.py'), '10.93.2.5', '8080', join(dir, 'download'));
  try {
    await until(() => nsAsync(nodes, ['ss', '-ltn'], 5000).then((s) => s.includes('10.93.2.5:8080')), 10_000, 'the node to listen');
    await ready();
    const down = await measure(() => fetchOnce(client, join(dir, `got-${client}`)));
    const up = await measure(() => sendOnce(client, join(dir, 'upload')));
    return { down, up };
  } finally {
    server.kill();
  }
}

/**
 * haproxy in a router namespace. Client side: client TAP <-> lossy relay
 * <-> UDP <-> clean relay <-> router TAP. Node side: a veth pair.
 */
async function haproxy(i: number, drop: number, corrupt: number): Promise<SubjectResult> {
  const [c, r, n] = [namespace(`h${i}c`), namespace(`h${i}r`), namespace(`h${i}n`)];
  const [tapC, tapR] = [`nls${suffix}h${i}c`, `nls${suffix}h${i}r`];
  const [portC, portR] = [nextPort++, nextPort++];
  let lossy: Relay | undefined;
  let clean: Relay | undefined;
  let proxy: ChildProcess | undefined;
  try {
    lossy = await relay(tapC, portC, portR, drop, corrupt);
    clean = await relay(tapR, portR, portC, 0, 0);
    moveInto(c, tapC, '10.93.1.5/24');
    moveInto(r, tapR, '10.93.1.1/24');
    sh('ip', ['link', 'add', `nlv${suffix}${i}n`, 'netns', n, 'type', 'veth', 'peer', 'name', `nlv${suffix}${i}r`, 'netns', r]);
    configure(n, `nlv${suffix}${i}n`, '10.93.2.5/24');
    configure(r, `nlv${suffix}${i}r`, '10.93.2.1/24');
    const config = join(dir, `haproxy-${i}.cfg`);
    writeFileSync(
      config,
      `defaults
  mode tcp
  timeout connect 10s
  timeout client 130s
  timeout server 130s
frontend web
  bind 10.93.1.1:80
  default_backend node
backend node
  server n0 10.93.2.5:8080
`,
    );
    proxy = background(r, 'haproxy', '-f', config, '-db');
    const listening = () => nsAsync(r, ['ss', '-ltn'], 5000).then((s) => s.includes('10.93.1.1:80'));
    const result = await transfers(c, n, () => until(listening, 10_000, 'haproxy to listen'));
    const drops = udpDrops([portC, portR]);
    return { ...result, faults: await lossy.stop(), udpDrops: drops };
  } finally {
    proxy?.kill();
    await lossy?.stop();
    await clean?.stop();
  }
}

const CONFIG = `Iface outside { index: 0, address: 10.93.1.1, netmask: 255.255.255.0 }
Iface inside { index: 1, address: 10.93.2.1, netmask: 255.255.255.0 }
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 10, session_limit: 10 },
  servers: { iface: inside, algorithm: round_robin, pool: [{ address: 10.93.2.5, port: 8080 }] }
}
`;

/** The appliance's counter `name`, from its metrics endpoint (undefined while it does not answer). */
async function counter(metricsPort: number, name: string): Promise<number | undefined> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    const m = text.match(new RegExp(`^nacl_counter\\{name="${name.replace('.', '\\.')}"\\} (\\d+)$`, 'm'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The appliance: NIC 0 the lossy relay's UDP peer, NIC 1 a TAP device in the node's namespace. */
async function appliance(i: number, drop: number, corrupt: number): Promise<SubjectResult> {
  const [c, n] = [namespace(`a${i}c`), namespace(`a${i}n`)];
  const [tapC, tapN] = [`nls${suffix}a${i}c`, `nls${suffix}a${i}n`];
  const [portC, portA, metricsPort] = [nextPort++, nextPort++, nextPort++];
  let lossy: Relay | undefined;
  let boot: ChildProcess | undefined;
  try {
    lossy = await relay(tapC, portC, portA, drop, corrupt);
    const nic0 = `0=udp:${portA},127.0.0.1:${portC}`;
    boot = spawn(process.execPath, [join(root, 'dist', 'nacl.js'), 'boot', join(dir, 'lb.nimg'), '--metrics', `127.0.0.1:${metricsPort}`, '--nic', nic0, '--nic', `1=tap:${tapN}`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(boot);
    await waitForOutput(boot, 'ready', 20_000, 'the appliance');
    moveInto(c, tapC, '10.93.1.5/24');
    moveInto(n, tapN, '10.93.2.5/24');
    // The balancer checks its node at boot, before the server listens; a later check finds it.
    const nodeUp = () => until(async () => (await counter(metricsPort, 'lb.nodes_up')) === 1, 20_000, 'the balancer to see its node');
    const result = await transfers(c, n, nodeUp);
    const drops = udpDrops([portC, portA]);
    return { ...result, faults: await lossy.stop(), udpDrops: drops };
  } finally {
    boot?.kill('SIGTERM');
    await lossy?.stop();
  }
}

/** Runs one subject; a setup that fails counts as failed transfers both ways. */
async function attempt(run: () => Promise<SubjectResult>): Promise<SubjectResult> {
  try {
    return await run();
  } catch (err) {
    const failed = { mbPerSecond: undefined, failures: [why(err)] };
    return { down: failed, up: failed, faults: {}, udpDrops: 0 };
  }
}

const percent = (x: number) => `${+(x * 100).toFixed(1)}%`;
const cell = (m: Measured) => (m.mbPerSecond === undefined ? `FAILED ${m.failures.length}/${RUNS}` : m.mbPerSecond.toFixed(2));
function faultLine(name: string, r: SubjectResult): string {
  const f = r.faults;
  const frames = (f['rx_frames'] ?? 0) + (f['tx_frames'] ?? 0);
  const lost = (f['fault_rx_dropped'] ?? 0) + (f['fault_tx_dropped'] ?? 0);
  const damaged = (f['fault_rx_corrupted'] ?? 0) + (f['fault_tx_corrupted'] ?? 0);
  return `${name} ${frames} frames, ${lost} lost, ${damaged} damaged, ${r.udpDrops} dropped by full UDP socket buffers`;
}

if (!installed('haproxy') || !installed('curl', '--version') || !installed('python3', '--version')) {
  console.error('bench:lossy needs haproxy, curl and python3 (apt-get install haproxy curl python3) and root.');
  rmSync(dir, { recursive: true, force: true });
  process.exit(2);
}
try {
  writeFileSync(join(dir, 'node.py'), NODE);
  writeFileSync(join(dir, 'download'), download);
  writeFileSync(join(dir, 'upload'), upload);
  writeFileSync(join(dir, 'lb.nacl'), CONFIG);
  sh(process.execPath, [join(root, 'dist', 'nacl.js'), 'build', join(dir, 'lb.nacl'), '-o', join(dir, 'lb.nimg')]);
  const rows: string[][] = [];
  const notes: string[] = [];
  for (const [i, { drop, corrupt }] of SETTINGS.entries()) {
    const loss = `${percent(drop)}/${percent(corrupt)}`;
    const h = await attempt(() => haproxy(i, drop, corrupt));
    const a = await attempt(() => appliance(i, drop, corrupt));
    for (const [direction, hm, am] of [['download', h.down, a.down], ['upload', h.up, a.up]] as const) {
      const ratio = hm.mbPerSecond && am.mbPerSecond ? (am.mbPerSecond / hm.mbPerSecond).toFixed(2) : '-';
      rows.push([loss, direction, cell(hm), cell(am), ratio]);
      for (const [who, m] of [['haproxy', hm], ['appliance', am]] as const) {
        if (m.failures.length > 0) notes.push(`${loss} ${direction}, ${who}: ${m.failures.length} of ${RUNS} failed, the first: ${m.failures[0]}`);
      }
    }
    notes.push(`${loss} link: ${faultLine('haproxy', h)}; ${faultLine('appliance', a)}`);
  }
  const head = ['loss (drop/corrupt)', 'direction', 'haproxy MB/s', 'appliance MB/s', 'appliance/haproxy'];
  const widths = head.map((t, k) => Math.max(t.length, ...rows.map((r) => r[k]!.length)));
  const line = (r: string[]) => r.map((t, k) => (k < 2 ? t.padEnd(widths[k]!) : t.padStart(widths[k]!))).join('  ');
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(`\n${MB} MB (2^20 bytes) per transfer, median of ${RUNS}; loss is per direction on the client's link (seed ${SEED}).`);
  console.log(`Linux congestion control: ${CC ?? `${readFileSync('/proc/sys/net/ipv4/tcp_congestion_control', 'utf8').trim()} (the host's; BENCH_CC to choose)`}.`);
  for (const note of notes) console.log(note);
  if (rows.some((r) => r.some((t) => t.startsWith('FAILED')))) process.exitCode = 1;
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await sleep(300);
  spaces.deleteAll();
  rmSync(dir, { recursive: true, force: true });
}
