import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ROOT } from '../helpers/examples.ts';
import { describeRealNetwork, testIfname } from '../helpers/netns.ts';
import { shOutput as sh, Topology, waitFor, type Host } from './topology.ts';

/*
 * The appliance's TCP against Linux's over a bad cable: one link is a relay
 * process (test/helpers/lossy-link.ts) that loses 3% of the frames each way
 * and flips a bit in 2%, between a host's TAP device and the appliance's
 * UDP NIC. Every lost segment must be sent again and every damaged one
 * refused by a checksum, on both sides, for transfers through the load
 * balancer to arrive whole. The cable is on the clients' side (the
 * appliance accepts the connection) or on the nodes' side (the appliance
 * opens it).
 */

const CONFIG = `
Iface outside { index: 0, address: 10.79.1.1, netmask: 255.255.255.0 }
Iface inside { index: 1, address: 10.79.2.1, netmask: 255.255.255.0 }
Load_balancer lb {
  layer: tcp,
  clients: { iface: outside, port: 80, wait_queue_limit: 10, session_limit: 10 },
  servers: { iface: inside, algorithm: round_robin, pool: [{ address: 10.79.2.5, port: 8080 }] }
}
`;

/** Serves files (GET), and answers a POST with the SHA-256 of its body. */
const SERVER = `
import functools, hashlib, http.server, socketserver, sys
class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    allow_reuse_address = True
    daemon_threads = True
class Handler(http.server.SimpleHTTPRequestHandler):
    def do_POST(self):
        digest = hashlib.sha256(self.rfile.read(int(self.headers['Content-Length']))).hexdigest().encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(digest)))
        self.end_headers()
        self.wfile.write(digest)
handler = functools.partial(Handler, directory=sys.argv[1])
Server(('10.79.2.5', 8080), handler).serve_forever()
`;

for (const side of ['clients', 'nodes'] as const) {
  /** The Iface on the bad cable, and the one on a clean TAP. */
  const [bad, good] = side === 'clients' ? (['outside', 'inside'] as const) : (['inside', 'outside'] as const);
  const badNic = side === 'clients' ? 0 : 1;

  describeRealNetwork(`the load balancer with a link that loses and damages frames on its ${side}' side`, () => {
    const topo = new Topology();
    const body = randomBytes(2 * 1024 * 1024);
    const appliancePort = 30000 + Math.floor(Math.random() * 20000);
    let link: ChildProcess;
    let linkOutput = '';
    let server: ChildProcess;
    let client: Host;

    beforeAll(async () => {
      const tap = testIfname();
      link = spawn(process.execPath, [join(ROOT, 'scripts', 'run-ts.mjs'), join(ROOT, 'test', 'helpers', 'lossy-link.ts'), tap, String(appliancePort + 1), String(appliancePort), '0.03', '0.02', '7'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      link.stdout!.on('data', (d) => (linkOutput += d));
      await waitFor(() => linkOutput.includes('ready'), 10_000, () => linkOutput);
      const taps = await topo.boot(CONFIG, 2, { [badNic]: `udp:${appliancePort},127.0.0.1:${appliancePort + 1}` });
      const tapOf = (nic: number) => (nic === badNic ? tap : taps[nic]!);
      client = topo.attach(tapOf(0), { nic: 0, address: '10.79.1.5/24', gateway: '10.79.1.1' });
      const nodes = topo.attach(tapOf(1), { nic: 1, address: '10.79.2.5/24', gateway: '10.79.2.1' });
      const www = join(topo.dir, 'www');
      mkdirSync(www);
      writeFileSync(join(www, 'body'), body);
      writeFileSync(join(topo.dir, 'server.py'), SERVER);
      server = spawn('ip', ['netns', 'exec', nodes.ns.name, '/usr/bin/python3', join(topo.dir, 'server.py'), www], { stdio: 'ignore' });
      await waitFor(() => sh(nodes, 'ss -ltn').includes(':8080'));
      // The check at boot may have found no server yet; a later one finds it.
      await topo.waitForCounter('lb.nodes_up', 1);
    }, 40_000);

    afterAll(async () => {
      server?.kill();
      if (link && link.exitCode === null) link.kill('SIGKILL');
      await topo.teardown();
    });

    it('takes a 2 MB upload intact across the bad cable', async () => {
      const upload = randomBytes(2 * 1024 * 1024);
      writeFileSync(join(topo.dir, 'upload'), upload);
      const counters = await topo.counters();
      const before = [counters[`${bad}.tcp.segments_out_of_order`] ?? 0, counters[`${bad}.tcp.fast_recoveries`] ?? 0];
      const digest = sh(client, `curl -s -m 90 -H 'Expect:' --data-binary @${join(topo.dir, 'upload')} http://10.79.1.1/upload`, 100_000);
      expect(digest).toBe(createHash('sha256').update(upload).digest('hex'));
      const after = await topo.counters();
      if (side === 'clients') {
        // Linux sent on past each lost segment; the appliance kept those bytes and reported them in SACK blocks.
        expect(after[`${bad}.tcp.segments_out_of_order`]).toBeGreaterThan(before[0]!);
      } else {
        // The appliance sent on the bad cable, and recovered from Linux's SACK blocks.
        expect(after[`${bad}.tcp.fast_recoveries`]).toBeGreaterThan(before[1]!);
      }
    }, 120_000);

    it('delivers a 2 MB download intact, both TCPs resending what was lost and refusing what was damaged', async () => {
      const before = (await topo.counters())[`${bad}.tcp.segments_out_of_order`] ?? 0;
      const digest = sh(client, 'curl -s -m 90 http://10.79.1.1/body | sha256sum', 100_000).split(' ')[0];
      const exited = new Promise((r) => link.once('exit', r));
      link.kill('SIGTERM');
      await exited;
      const faults = JSON.parse(linkOutput.trim().split('\n').pop()!) as Record<string, number>;
      expect(digest).toBe(createHash('sha256').update(body).digest('hex'));
      // The cable did its damage both ways: to the host and to the appliance.
      expect(faults['fault_tx_dropped']).toBeGreaterThan(0);
      expect(faults['fault_tx_corrupted']).toBeGreaterThan(0);
      expect(faults['fault_rx_dropped']).toBeGreaterThan(0);
      expect(faults['fault_rx_corrupted']).toBeGreaterThan(0);
      // The appliance refused damaged frames by their checksums (a flipped bit elsewhere, in the
      // Ethernet header say, is dropped for other reasons), and nothing on the clean side.
      const counters = await topo.counters();
      expect((counters[`${bad}.drop.bad-l4-checksum`] ?? 0) + (counters[`${bad}.drop.ip-bad-checksum`] ?? 0)).toBeGreaterThan(0);
      expect((counters[`${good}.drop.bad-l4-checksum`] ?? 0) + (counters[`${good}.drop.ip-bad-checksum`] ?? 0)).toBe(0);
      // Downloading from a node over the bad cable, the appliance is the receiver that keeps bytes past a gap.
      if (side === 'nodes') expect(counters[`${bad}.tcp.segments_out_of_order`]).toBeGreaterThan(before);
    }, 120_000);
  });
}
