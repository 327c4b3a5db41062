import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDatagram } from '../../runtime/packet-spec.ts';
import { fillIpv4Checksum, formatIpv4Address, parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import {
  decide,
  decidedBy,
  describePacket,
  firstOfEachFlow,
  HOST_A,
  HOST_B,
  HOST_B_EXTRA,
  nftTable,
  packetSpec,
  randomAclPackets,
  randomDnatPolicy,
  randomPolicy,
  randomSnatPolicy,
  routerConfig,
  type AclPacket,
  type AclPolicy,
} from '../helpers/acl-model.ts';
import { describeRealNetwork, type Netns } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { linuxRouter, ROUTER_A_SIDE, ROUTER_B_SIDE, type LinuxRouter } from './linux-router.ts';
import { Topology, waitFor } from './topology.ts';

/*
 * Does the appliance do what the rules say, as Linux would? Random policies
 * - source sets, port sets, source-port and TTL comparisons, ICMP types,
 * protocol blocks, first match wins - are enforced twice on real packets:
 * by the appliance and by a Linux router holding the same policy as
 * nftables rules. A forward policy is a Gateway's forward Filter (nftables:
 * a forward chain); a prerouting policy is port forwards, a Nat function of
 * dnat rules on the sending side's Iface (nftables: a dstnat chain); a
 * postrouting policy is source translations, snat rules on the far side's
 * Iface (a srcnat chain); a forward policy may also masquerade on the far
 * side (nftables: masquerade). The same datagrams (spoofed sources in
 * 10.100.0.0/16, each with an IP id of its own, marked with DSCP CS1) cross
 * each router, and what reaches the far host - which ids, from and to which
 * address and port, with valid checksums - must be exactly what a
 * first-match model of the policy says, for the appliance and for Linux
 * alike (so the model and its nftables rendering are checked too). Where a
 * translation would give two flows one tuple, both routers pick some other
 * source port: the model accepts any, and the tuples that arrive must be
 * distinct.
 */

const PACKETS = 250;
const A = HOST_A;
const B = HOST_B;
/** Source addresses of the source translations: the router's own on B's side, another on that link, one beyond it. */
const SNAT_ADDRESSES = [ROUTER_B_SIDE, '10.91.2.200', '10.91.3.7'];
/** The sender's last datagram: unmarked UDP from its real address, which no policy drops or translates; it ends the capture. */
const END_ID = 65000;

/** What lets the test's own probes through a forward policy, outside the model: replies, and anything from A's real address. */
const NACL_PREAMBLE = ['if (ct.state == established) { accept }', `if (ip.saddr == ${A}) { accept }`];
const NFT_PREAMBLE = ['ct state established accept', `ip saddr ${A} accept`];

/** The DSCP the test's datagrams carry (CS1, TOS byte 0x20): the far host captures them, and drops them before it could answer. */
const MARK_TOS = 0x20;
const FAR_HOST_RULES = `
table ip far_host {
  chain input {
    type filter hook input priority filter;
    ip dscp cs1 drop
  }
}
`;

/*
 * The capture: an AF_PACKET socket sees frames before the host's own
 * netfilter drops them. For each marked datagram it prints
 * "id/source/port/destination/port/checksums" in arrival order (an ICMP
 * query's identifier as both ports), and it stops at the sender's END_ID
 * datagram: the path is first in, first out, so everything sent before it
 * has arrived or been dropped by then.
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
        if ip[1] == ${MARK_TOS}:
            l4 = ip[(ip[0] & 15) * 4:]
            sport, dport = (l4[0] << 8 | l4[1], l4[2] << 8 | l4[3]) if ip[9] in (6, 17) else (l4[4] << 8 | l4[5],) * 2
            seen.append("%d/%s/%d/%s/%d/%s" % (pid, socket.inet_ntoa(ip[12:16]), sport, socket.inet_ntoa(ip[16:20]), dport, "ok" if checksums_ok(ip) else "bad"))
        elif ip[9] == 17 and pid == ${END_ID}:
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

/** The datagram with `options` after its 20-byte header (a multiple of 4 bytes); the transport checksum does not cover them. */
function withIpOptions(datagram: Uint8Array, options: readonly number[]): Uint8Array {
  const out = new Uint8Array(datagram.length + options.length);
  out.set(datagram.subarray(0, 20), 0);
  out.set(options, 20);
  out.set(datagram.subarray(20), 20 + options.length);
  out[0] = 0x40 | ((20 + options.length) / 4);
  out[2] = out.length >>> 8;
  out[3] = out.length & 255;
  return out;
}

/** How each packet reached the far host: "source/port/destination/port" (a port of * when any will do). */
type Arrivals = Map<number, string>;

/** The identifier buildDatagram gives an ICMP query, its "ports". */
const ICMP_IDENTIFIER = 1;

/**
 * What the model says reaches the far host: a forward policy passes packets
 * to B, a prerouting one forwards them to its targets, a postrouting one
 * translates their sources. A translated flow that would take a tuple an
 * earlier flow holds gets some other source port (or identifier).
 */
function expectedArrivals(policy: AclPolicy, packets: readonly AclPacket[]): Arrivals {
  const out: Arrivals = new Map();
  const taken = new Set<string>();
  for (const p of packets) {
    const action = decide(policy, p);
    const icmp = p.proto === 'icmp';
    let [src, sport, dst, dport] = [formatIpv4Address(p.src), icmp ? ICMP_IDENTIFIER : p.sport, B, icmp ? ICMP_IDENTIFIER : p.dport];
    if (policy.hook === 'forward' && action !== 'accept') continue;
    if (policy.hook === 'prerouting') {
      if (typeof action !== 'object' || !('dnat' in action)) continue; // stays with the router it was sent to
      dst = formatIpv4Address(action.dnat);
      if (!icmp) dport = action.port ?? dport;
    }
    if (policy.masquerade) {
      // Masquerade's port is the router's choice: Linux keeps the client's while it can, the appliance takes one from 49152 up.
      out.set(p.id, `${ROUTER_B_SIDE}/*/${dst}/${icmp ? '*' : dport}`);
      continue;
    }
    const translated = typeof action === 'object';
    if (typeof action === 'object' && 'snat' in action) src = formatIpv4Address(action.snat);
    const tuple = `${p.proto} ${src} ${sport} ${dst} ${dport}`;
    // An ICMP query's identifier stands for both its ports.
    out.set(p.id, translated && taken.has(tuple) ? `${src}/*/${dst}/${icmp ? '*' : dport}` : `${src}/${sport}/${dst}/${dport}`);
    taken.add(tuple);
  }
  return out;
}

/** Whether an arrival is what was expected: equal, or any port where the expectation says *. */
function fits(expected: string | undefined, arrived: string | undefined): boolean {
  if (expected === undefined || arrived === undefined) return expected === arrived;
  const [e, a] = [expected.split('/'), arrived.split('/')];
  return e.every((part, i) => part === '*' || part === a[i]);
}

describeRealNetwork('forward filters and port forwards against Linux nftables, on the same real packets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nacl-policies-nft-'));
  const linux: LinuxRouter[] = [];
  let haveNft = false;

  beforeAll(() => {
    haveNft = requireTool('nft');
    writeFileSync(join(dir, 'receiver.py'), RECEIVER);
    writeFileSync(join(dir, 'sender.py'), SENDER);
  });

  afterAll(() => {
    for (const router of linux) router.delete();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What crossed from `sender` to `receiver` (on device `dev`) of `packets`, sent in order to `dst`. */
  async function crossing(sender: Netns, receiver: Netns, dev: string, packets: readonly AclPacket[], dst: string, label: string): Promise<Arrivals> {
    const hexes = join(dir, `${label}.hex`);
    const ready = join(dir, `${label}.ready`);
    rmSync(ready, { force: true });
    const end = packetSpec({ proto: 'udp', src: parseIpv4Address(A)!, sport: 40000, dport: 9, ttl: 64, icmpType: 0, id: END_ID }, parseIpv4Address(B)!);
    const marked = packets.map((p) => {
      const built = buildDatagram(packetSpec(p, parseIpv4Address(dst)!));
      // Every fifth carries IP options (four NOPs): rules and rewrites must find the ports past them.
      const d = p.id % 5 === 0 ? withIpOptions(built, [1, 1, 1, 1]) : built;
      d[1] = MARK_TOS;
      fillIpv4Checksum(d, 0);
      return d;
    });
    const datagrams = [...marked, buildDatagram(end)];
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
      const [id, src, sport, dst, dport, checksums] = token.split('/');
      expect(checksums, `${label}: packet #${id} arrived with a bad checksum`).toBe('ok');
      expect(arrivals.has(Number(id)), `${label}: packet #${id} arrived twice`).toBe(false);
      arrivals.set(Number(id), `${src}/${sport}/${dst}/${dport}`);
    }
    // Two TCP or UDP flows never arrive as one (ICMP types are told apart by more than this tuple).
    const tuples = packets.filter((p) => p.proto !== 'icmp' && arrivals.has(p.id)).map((p) => `${p.proto} ${arrivals.get(p.id)}`);
    expect(new Set(tuples).size, `${label}: two flows arrived with one tuple`).toBe(tuples.length);
    return arrivals;
  }

  /** Packets whose fate differs from the model's, for the failure message. */
  function disagreements(expected: Arrivals, packets: readonly AclPacket[], arrived: Arrivals): string[] {
    return packets
      .filter((p) => !fits(expected.get(p.id), arrived.get(p.id)))
      .map((p) => `${describePacket(p)}: expected ${expected.get(p.id) ?? 'nothing'} at the far host, got ${arrived.get(p.id) ?? 'nothing'}`);
  }

  /** The Linux router with `ruleset`, its far host set up as the appliance's will be. */
  function referenceRouter(ruleset: string): { a: Netns; b: Netns } {
    const made = linuxRouter(ruleset, dir);
    linux.push(made);
    farHost(made.b, 'eth0');
    return made;
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
    // A policy that passes (or translates) everything or nothing, or where a few rules decide everything, would prove little.
    const decided = policy.hook === 'forward' ? expected.size : packets.filter((p) => typeof decide(policy, p) === 'object').length;
    expect(decided).toBeGreaterThan(packets.length / 10);
    expect(decided).toBeLessThan(packets.length - packets.length / 10);
    expect(decidedBy(policy, packets).filter((n) => n > 0).length).toBeGreaterThanOrEqual(policy.rules.length / 2);

    const ruleset = nftTable(policy, NFT_PREAMBLE);
    const reference = referenceRouter(ruleset);
    await resolveFarHost(reference.a);
    const byLinux = await crossing(reference.a, reference.b, 'eth0', packets, dst, `linux-${policy.hook}-${policy.seed}`);
    expect(disagreements(expected, packets, byLinux), `Linux with\n${ruleset}`).toEqual([]);

    const topo = new Topology();
    try {
      const [tapA, tapB] = await topo.boot(routerConfig(policy, policy.hook === 'forward' ? NACL_PREAMBLE : []), 2);
      const a = topo.attach(tapA!, { nic: 0, address: `${A}/24`, gateway: ROUTER_A_SIDE });
      const b = topo.attach(tapB!, { nic: 1, address: `${B}/24`, gateway: ROUTER_B_SIDE });
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

  for (const seed of [11, 33]) {
    it(`forward policy ${seed} with masquerade: each router passes the packets the policy accepts, all from its own address, as distinct flows`, async () => {
      if (!haveNft) return;
      const policy = { ...randomPolicy(seed), masquerade: true };
      await compare(policy, firstOfEachFlow(randomAclPackets(policy, PACKETS, seed * 7 + 1)), B);
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

  for (const seed of [101, 202, 303]) {
    it(`source translations ${seed}: the appliance and Linux give exactly the packets the rules match their new source, and keep flows apart`, async () => {
      if (!haveNft) return;
      const policy = randomSnatPolicy(seed, SNAT_ADDRESSES.map((a) => parseIpv4Address(a)!));
      await compare(policy, firstOfEachFlow(randomAclPackets(policy, PACKETS, seed * 7 + 1)), B);
    }, 60_000);
  }
});
