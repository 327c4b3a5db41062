import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDatagram } from '../../runtime/packet-spec.ts';
import { formatIpv4Address, parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import {
  decide,
  decidedBy,
  describePacket,
  firstOfEachFlow,
  HOST_A,
  HOST_B,
  HOST_B_EXTRA,
  nftRules,
  packetSpec,
  randomAclPackets,
  randomDnatPolicy,
  randomPolicy,
  routerConfig,
  SOURCES,
  type AclPacket,
  type AclPolicy,
} from '../helpers/acl-model.ts';
import { describeRealNetwork, Netns } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { shOutput, Topology, waitFor } from './topology.ts';

/*
 * Does the appliance do what the rules say, as Linux would? Random policies
 * - source sets, port sets, source-port and TTL comparisons, ICMP types,
 * protocol blocks, first match wins - are enforced twice on real packets:
 * by the appliance and by a Linux router holding the same policy as
 * nftables rules. A forward policy is a Gateway's forward Filter (nftables:
 * a forward chain); a prerouting policy is port forwards, a Nat function of
 * dnat rules on the sending side's Iface (nftables: a dstnat chain). The
 * same datagrams (spoofed sources in 10.100.0.0/16, each with an IP id of
 * its own) cross each router, and what reaches the far host - which ids,
 * to which address and port, with valid checksums - must be exactly what
 * a first-match model of the policy says, for the appliance and for Linux
 * alike (so the model and its nftables rendering are checked too).
 */

const PACKETS = 250;
const A = HOST_A;
const B = HOST_B;
const ROUTER_A_SIDE = '10.91.1.1';
/** The sender's last datagram: from its real address, accepted by the preamble; it ends the capture. */
const END_ID = 65000;

/** What lets the test's own probes through a forward policy, outside the model: replies, and anything from A's real address. */
const NACL_PREAMBLE = ['if (ct.state == established) { accept }', `if (ip.saddr == ${A}) { accept }`];
const NFT_PREAMBLE = ['ct state established accept', `ip saddr ${A} accept`];

function nftRuleset(policy: AclPolicy): string {
  const rules = (preamble: string[]) =>
    nftRules(policy, preamble)
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
  const chain =
    policy.hook === 'forward'
      ? `  chain forward {\n    type filter hook forward priority filter; policy accept;\n${rules(NFT_PREAMBLE)}\n  }`
      : `  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n${rules([])}\n  }`;
  return `table ip nacl_differential {\n${chain}\n}\n`;
}

/** On the far host: the spoofed sources are captured, then dropped before the host could answer them. */
const FAR_HOST_RULES = `
table ip far_host {
  chain input {
    type filter hook input priority filter;
    ip saddr ${SOURCES.net} drop
  }
}
`;

/*
 * The capture: an AF_PACKET socket sees frames before the host's own
 * netfilter drops them. For each datagram from SOURCES it prints
 * "id/destination/port/checksums" in arrival order, and it stops at the
 * sender's END_ID datagram: the path is first in, first out, so everything
 * sent before it has arrived or been dropped by then.
 */
const RECEIVER = `
import socket, sys
dev, ready = sys.argv[1], sys.argv[2]
def ones(b):
    if len(b) % 2:
        b += b"\\0"
    s = sum(int.from_bytes(b[i:i + 2], "big") for i in range(0, len(b), 2))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return s
def checksums_ok(ip):
    ihl = (ip[0] & 15) * 4
    l4, proto = ip[ihl:], ip[9]
    if ones(ip[:ihl]) != 0xffff:
        return False
    if proto == 1:
        return ones(l4) == 0xffff
    if proto == 17 and l4[6:8] == b"\\0\\0":
        return True
    pseudo = ip[12:20] + bytes([0, proto]) + len(l4).to_bytes(2, "big")
    return ones(pseudo + l4) == 0xffff
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((dev, 0))
s.settimeout(20)
open(ready, "w").close()
seen = []
try:
    while True:
        f = s.recv(4096)
        ip = f[14:14 + (f[16] << 8 | f[17])]
        pid = ip[4] << 8 | ip[5]
        if ip[12] == 10 and ip[13] == 100:
            ihl = (ip[0] & 15) * 4
            port = (ip[ihl + 2] << 8 | ip[ihl + 3]) if ip[9] in (6, 17) else 0
            seen.append("%d/%s/%d/%s" % (pid, socket.inet_ntoa(ip[16:20]), port, "ok" if checksums_ok(ip) else "bad"))
        elif socket.inet_ntoa(ip[12:16]) == "${A}" and pid == ${END_ID}:
            print("end", " ".join(seen))
            break
except socket.timeout:
    print("timeout", " ".join(seen))
`;

/* The sender: each datagram as hex on a line, written whole through a raw IP socket (the kernel routes it). */
const SENDER = `
import socket, sys, time, os
hexes, ready = sys.argv[1], sys.argv[2]
for _ in range(200):
    if os.path.exists(ready):
        break
    time.sleep(0.05)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for line in open(hexes):
    d = bytes.fromhex(line.strip())
    s.sendto(d, (socket.inet_ntoa(d[16:20]), 0))
    time.sleep(0.001)
`;

/** Where a packet reached the far host: "destination/port", ICMP with port 0. */
type Arrivals = Map<number, string>;

/** What the model says reaches the far host: a forward policy passes packets to B, a prerouting one forwards them. */
function expectedArrivals(policy: AclPolicy, packets: readonly AclPacket[]): Arrivals {
  const out: Arrivals = new Map();
  for (const p of packets) {
    const action = decide(policy, p);
    const port = p.proto === 'icmp' ? 0 : p.dport;
    if (action === 'accept' && policy.hook === 'forward') out.set(p.id, `${B}/${port}`);
    else if (typeof action === 'object') out.set(p.id, `${formatIpv4Address(action.dnat)}/${p.proto === 'icmp' ? 0 : (action.port ?? port)}`);
  }
  return out;
}

describeRealNetwork('forward filters and port forwards against Linux nftables, on the same real packets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nacl-policies-nft-'));
  const linux: Netns[] = [];
  let haveNft = false;

  beforeAll(() => {
    haveNft = requireTool('nft');
    writeFileSync(join(dir, 'receiver.py'), RECEIVER);
    writeFileSync(join(dir, 'sender.py'), SENDER);
  });

  afterAll(() => {
    for (const ns of linux) ns.delete();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What crossed from `sender` to `receiver` (on device `dev`) of `packets`, sent in order to `dst`. */
  async function crossing(sender: Netns, receiver: Netns, dev: string, packets: readonly AclPacket[], dst: string, label: string): Promise<Arrivals> {
    const hexes = join(dir, `${label}.hex`);
    const ready = join(dir, `${label}.ready`);
    rmSync(ready, { force: true });
    const end = packetSpec({ proto: 'udp', src: parseIpv4Address(A)!, sport: 40000, dport: 9, ttl: 64, icmpType: 0, id: END_ID }, parseIpv4Address(B)!);
    const datagrams = [...packets.map((p) => packetSpec(p, parseIpv4Address(dst)!)), end].map(buildDatagram);
    writeFileSync(hexes, datagrams.map((d) => Buffer.from(d).toString('hex')).join('\n') + '\n');
    const capture = spawn('ip', ['netns', 'exec', receiver.name, 'python3', join(dir, 'receiver.py'), dev, ready], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    capture.stdout.on('data', (d) => (out += String(d)));
    capture.stderr.on('data', (d) => (out += String(d)));
    const done = new Promise<void>((resolve) => capture.once('exit', () => resolve()));
    sender.exec('python3', [join(dir, 'sender.py'), hexes, ready], 30_000);
    await Promise.race([done, new Promise((r) => setTimeout(r, 25_000))]);
    capture.kill();
    expect(out, `${label}: the capture did not see the end marker`).toMatch(/^end/);
    const arrivals: Arrivals = new Map();
    for (const token of out.trim().split(/\s+/).slice(1)) {
      const [id, address, port, checksums] = token.split('/');
      expect(checksums, `${label}: packet #${id} arrived with a bad checksum`).toBe('ok');
      expect(arrivals.has(Number(id)), `${label}: packet #${id} arrived twice`).toBe(false);
      arrivals.set(Number(id), `${address}/${port}`);
    }
    return arrivals;
  }

  /** Packets whose fate differs from the model's, for the failure message. */
  function disagreements(expected: Arrivals, packets: readonly AclPacket[], arrived: Arrivals): string[] {
    return packets
      .filter((p) => expected.get(p.id) !== arrived.get(p.id))
      .map((p) => `${describePacket(p)}: expected ${expected.get(p.id) ?? 'nothing'} at the far host, got ${arrived.get(p.id) ?? 'nothing'}`);
  }

  /** A router namespace between two hosts, with `ruleset` (veth links), addressed as the appliance's config. */
  function linuxRouter(ruleset: string): { a: Netns; b: Netns } {
    const [a, r, b] = [new Netns(), new Netns(), new Netns()];
    linux.push(a, r, b);
    a.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'a_side', 'netns', r.name);
    b.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'b_side', 'netns', r.name);
    for (const [ns, dev, address] of [
      [a, 'eth0', `${A}/24`],
      [b, 'eth0', `${B}/24`],
      [r, 'a_side', `${ROUTER_A_SIDE}/24`],
      [r, 'b_side', '10.91.2.1/24'],
    ] as const) {
      ns.ip('link', 'set', 'lo', 'up');
      ns.ip('addr', 'add', address, 'dev', dev);
      ns.ip('link', 'set', dev, 'up');
    }
    farHost(b, 'eth0');
    a.ip('route', 'add', 'default', 'via', ROUTER_A_SIDE);
    b.ip('route', 'add', 'default', 'via', '10.91.2.1');
    // Spoofed sources arrive where no route points back: reverse-path filtering would drop them.
    r.sh('sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.a_side.rp_filter=0');
    writeFileSync(join(dir, 'router.nft'), ruleset);
    r.exec('nft', ['-f', join(dir, 'router.nft')]);
    return { a, b };
  }

  /** B's port-forward addresses, and its rule against answering the spoofed sources. */
  function farHost(b: Netns, dev: string): void {
    for (const extra of HOST_B_EXTRA) b.ip('addr', 'add', `${extra}/24`, 'dev', dev);
    writeFileSync(join(dir, 'far.nft'), FAR_HOST_RULES);
    b.exec('nft', ['-f', join(dir, 'far.nft')]);
  }

  /** A's pings of each of B's addresses: the routers resolve them with ARP, so no datagram waits in (or overflows) an ARP queue. */
  async function resolveFarHost(a: Netns): Promise<void> {
    for (const target of [B, ...HOST_B_EXTRA]) {
      await waitFor(() => /1 received/.test(a.sh(`ping -c 1 -W 1 ${target} 2>&1 || true`)), 10_000, () => `for ${target} to answer ping`);
    }
  }

  async function compare(policy: AclPolicy, packets: readonly AclPacket[], dst: string): Promise<void> {
    const expected = expectedArrivals(policy, packets);
    // A policy that passes everything or nothing, or where a few rules decide everything, would prove little.
    expect(expected.size).toBeGreaterThan(packets.length / 10);
    expect(expected.size).toBeLessThan(packets.length - packets.length / 10);
    expect(decidedBy(policy, packets).filter((n) => n > 0).length).toBeGreaterThanOrEqual(policy.rules.length / 2);

    const reference = linuxRouter(nftRuleset(policy));
    await resolveFarHost(reference.a);
    const byLinux = await crossing(reference.a, reference.b, 'eth0', packets, dst, `linux-${policy.hook}-${policy.seed}`);
    expect(disagreements(expected, packets, byLinux), `Linux with\n${nftRuleset(policy)}`).toEqual([]);

    const topo = new Topology();
    try {
      const [tapA, tapB] = await topo.boot(routerConfig(policy, policy.hook === 'forward' ? NACL_PREAMBLE : []), 2);
      const a = topo.attach(tapA!, { nic: 0, address: `${A}/24`, gateway: ROUTER_A_SIDE });
      const b = topo.attach(tapB!, { nic: 1, address: `${B}/24`, gateway: '10.91.2.1' });
      farHost(b.ns, b.dev);
      await resolveFarHost(a.ns);
      const byAppliance = await crossing(a.ns, b.ns, b.dev, packets, dst, `appliance-${policy.hook}-${policy.seed}`);
      expect(disagreements(expected, packets, byAppliance), `the appliance with\n${routerConfig(policy, NACL_PREAMBLE)}`).toEqual([]);
    } finally {
      await topo.teardown();
    }
  }

  for (const seed of [11, 22, 33, 44]) {
    it(`forward policy ${seed}: the appliance and Linux pass exactly the packets the policy accepts`, async () => {
      if (!haveNft) return;
      const policy = randomPolicy(seed);
      await compare(policy, randomAclPackets(policy, PACKETS, seed * 7 + 1), B);
    }, 60_000);
  }

  for (const seed of [55, 77, 88]) {
    it(`port forwards ${seed}: the appliance and Linux forward exactly the packets the rules match, to their targets`, async () => {
      if (!haveNft) return;
      const policy = randomDnatPolicy(seed, [B, ...HOST_B_EXTRA].map((t) => parseIpv4Address(t)!));
      // Addressed to the router itself: what no rule forwards stays there.
      await compare(policy, firstOfEachFlow(randomAclPackets(policy, PACKETS, seed * 7 + 1)), ROUTER_A_SIDE);
    }, 60_000);
  }
});
