import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatIpv4Address } from '../../runtime/wire/ipv4.ts';
import { decide, describePacket, HOST_A, HOST_B, nftTable, randomAclPackets, randomPolicy, routerConfig, type AclPacket, type AclPolicy } from '../helpers/acl-model.ts';
import { describeRealNetwork, type Netns } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { linuxRouter, ROUTER_A_SIDE, ROUTER_B_SIDE, type LinuxRouter } from './linux-router.ts';
import { Topology, waitFor } from './topology.ts';

/*
 * The stateful firewall with real connections: random policies that let
 * established traffic through first, then decide new flows by their first
 * packet. Real TCP connections, UDP exchanges and pings from many source
 * addresses (aliases on host A, routed back through the router) to echo
 * servers on host B cross the appliance - with the generic tracker and
 * with `stateful_tcp` - and a Linux router holding the same policy in
 * nftables. Each flow must complete exactly when the policy accepts its
 * first packet: the handshake's replies, the data and its echo, and the
 * closing segments all ride on the connection's state.
 */

const FLOWS = 80;
const A = HOST_A;
const B = HOST_B;
const SOURCES_ROUTE = { net: '10.100.0.0', prefix: 16 };
const PREAMBLE = ['if (ct.state == established) { accept }'];
const NFT_PREAMBLE = ['ct state established accept'];

/** Echo servers on every port the flows use, TCP and UDP; "ready" once all listen. */
const ECHO = `
import selectors, socket, sys
tcp_ports, udp_ports = [int(p) for p in sys.argv[1].split(",") if p], [int(p) for p in sys.argv[2].split(",") if p]
sel = selectors.DefaultSelector()
for port in tcp_ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "listen")
for port in udp_ports:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, "udp")
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if key.data == "listen":
            c, _ = s.accept()
            c.setblocking(False)
            sel.register(c, selectors.EVENT_READ, "conn")
        elif key.data == "udp":
            d, peer = s.recvfrom(2048)
            s.sendto(d, peer)
        else:
            try:
                d = s.recv(2048)
            except OSError:
                d = b""
            if d:
                s.sendall(d)
            else:
                sel.unregister(s)
                s.close()
`;

/*
 * The flows, all at once (a thread each): a TCP connection that sends a
 * byte, reads its echo and closes; a UDP datagram and its echo; a ping.
 * UDP and ping are tried once on purpose: the burst is the point, and a
 * router that drops part of it (an ARP queue too short, say) must fail.
 * Each from its own source address and port, with its own TTL. Prints
 * "ID ok" or "ID failed".
 */
const CLIENT = `
import json, socket, subprocess, sys, threading
flows = json.load(open(sys.argv[1]))
dst = sys.argv[2]
results = {}
def run(f):
    try:
        if f["proto"] == "icmp":
            r = subprocess.run(["ping", "-c", "1", "-W", "3", "-I", f["src"], "-t", str(f["ttl"]), dst], capture_output=True)
            results[f["id"]] = r.returncode == 0
            return
        kind = socket.SOCK_STREAM if f["proto"] == "tcp" else socket.SOCK_DGRAM
        s = socket.socket(socket.AF_INET, kind)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, f["ttl"])
        s.bind((f["src"], f["sport"]))
        s.settimeout(3)
        if f["proto"] == "tcp":
            s.connect((dst, f["dport"]))
            s.sendall(b"x")
            ok = s.recv(1) == b"x"
        else:
            s.sendto(b"x", (dst, f["dport"]))
            ok = s.recvfrom(1)[0] == b"x"
        s.close()
        results[f["id"]] = ok
    except OSError:
        results[f["id"]] = False
threads = [threading.Thread(target=run, args=(f,)) for f in flows]
for t in threads:
    t.start()
for t in threads:
    t.join()
for f in flows:
    print(f["id"], "ok" if results.get(f["id"]) else "failed")
`;

/** The flows' first packets, one flow per source socket (a socket can make only one of them). */
function flows(policy: AclPolicy, seed: number): AclPacket[] {
  const seen = new Set<string>();
  return randomAclPackets(policy, FLOWS * 3, seed)
    .filter((p) => {
      const key = p.proto === 'icmp' ? `icmp ${p.src}` : `${p.proto} ${p.src} ${p.sport}`;
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, FLOWS);
}

describeRealNetwork('the stateful firewall against Linux nftables, with real connections', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nacl-connections-nft-'));
  const routers: LinuxRouter[] = [];
  const servers: ChildProcess[] = [];
  let haveNft = false;

  beforeAll(() => {
    haveNft = requireTool('nft');
    writeFileSync(join(dir, 'echo.py'), ECHO);
    writeFileSync(join(dir, 'client.py'), CLIENT);
  });

  afterAll(() => {
    for (const s of servers) s.kill();
    for (const r of routers) r.delete();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Starts the echo servers in B's namespace for the flows' ports. */
  async function echoServers(b: Netns, packets: readonly AclPacket[]): Promise<void> {
    const ports = (proto: string) => [...new Set(packets.filter((p) => p.proto === proto).map((p) => p.dport))].join(',');
    const server = spawn('ip', ['netns', 'exec', b.name, 'python3', join(dir, 'echo.py'), ports('tcp'), ports('udp')], { stdio: ['ignore', 'pipe', 'pipe'] });
    servers.push(server);
    let out = '';
    server.stdout!.on('data', (d) => (out += String(d)));
    server.stderr!.on('data', (d) => (out += String(d)));
    await waitFor(() => out.includes('ready') || server.exitCode !== null, 10_000, () => `for the echo servers: ${out}`);
    expect(out).toContain('ready');
  }

  /** Gives A every source address of the flows, runs them all, and returns the ids that completed. */
  function run(a: Netns, dev: string, packets: readonly AclPacket[], label: string): Set<number> {
    for (const src of new Set(packets.map((p) => p.src))) a.ip('addr', 'add', `${formatIpv4Address(src)}/32`, 'dev', dev);
    const file = join(dir, `${label}.json`);
    writeFileSync(file, JSON.stringify(packets.map((p) => ({ ...p, src: formatIpv4Address(p.src) }))));
    const out = a.exec('python3', [join(dir, 'client.py'), file, B], 60_000);
    return new Set(
      out
        .trim()
        .split('\n')
        .filter((l) => l.endsWith(' ok'))
        .map((l) => Number(l.split(' ')[0])),
    );
  }

  function disagreements(policy: AclPolicy, packets: readonly AclPacket[], completed: Set<number>): string[] {
    return packets
      .filter((p) => (decide(policy, p) === 'accept') !== completed.has(p.id))
      .map((p) => `${describePacket(p)}: the policy ${decide(policy, p) === 'accept' ? 'accepts' : 'drops'} it, the flow ${completed.has(p.id) ? 'completed' : 'failed'}`);
  }

  for (const [seed, statefulTcp] of [
    [5, false],
    [6, true],
  ] as const) {
    it(`policy ${seed}${statefulTcp ? ' with stateful_tcp' : ''}: a flow completes through the appliance, as through Linux, exactly when the policy accepts its first packet`, async () => {
      if (!haveNft) return;
      const policy = randomPolicy(seed);
      const packets = flows(policy, seed);
      const accepted = packets.filter((p) => decide(policy, p) === 'accept').length;
      expect(accepted).toBeGreaterThan(packets.length / 10);
      expect(accepted).toBeLessThan(packets.length - packets.length / 10);

      const ruleset = nftTable(policy, NFT_PREAMBLE);
      const linux = linuxRouter(ruleset, dir, [[`${SOURCES_ROUTE.net}/${SOURCES_ROUTE.prefix}`, 'via', A]]);
      routers.push(linux);
      await echoServers(linux.b, packets);
      const byLinux = run(linux.a, 'eth0', packets, `linux-${seed}`);
      expect(disagreements(policy, packets, byLinux), `Linux with\n${ruleset}`).toEqual([]);

      const config = routerConfig(policy, PREAMBLE, {
        routes: [`sources: { net: ${SOURCES_ROUTE.net}, netmask: 255.255.0.0, iface: a_side, nexthop: ${A} }`],
        elements: statefulTcp ? 'Conntrack tracker { stateful_tcp: true }\n' : '',
      });
      const topo = new Topology();
      try {
        const [tapA, tapB] = await topo.boot(config, 2);
        const a = topo.attach(tapA!, { nic: 0, address: `${A}/24`, gateway: ROUTER_A_SIDE });
        const b = topo.attach(tapB!, { nic: 1, address: `${B}/24`, gateway: ROUTER_B_SIDE });
        await echoServers(b.ns, packets);
        const byAppliance = run(a.ns, a.dev, packets, `appliance-${seed}`);
        expect(disagreements(policy, packets, byAppliance), `the appliance with\n${config}`).toEqual([]);
      } finally {
        await topo.teardown();
      }
    }, 90_000);
  }
});
