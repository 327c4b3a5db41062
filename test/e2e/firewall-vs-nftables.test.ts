import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildDatagram } from '../../runtime/packet-spec.ts';
import { parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import { decide, decidedBy, describePacket, HOST_A, HOST_B, nftForwardChain, packetSpec, randomAclPackets, randomPolicy, routerConfig, SOURCES, type AclPacket, type AclPolicy } from '../helpers/acl-model.ts';
import { describeRealNetwork, Netns } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { shOutput, Topology, waitFor, type Host } from './topology.ts';

/*
 * Does the firewall drop what the rules say, as Linux would? Random policies
 * (source sets, port sets, source-port and TTL comparisons, ICMP types,
 * protocol blocks, first match wins) are enforced twice on real packets:
 * by the appliance as a Gateway's forward Filter, and by a Linux router
 * with the same policy as an nftables forward chain. The same datagrams
 * (spoofed sources in 10.100.0.0/16, each with an IP id of its own) cross
 * each, and the ids that reach the far host must be exactly those the
 * policy model accepts - for the appliance and for Linux alike, so the
 * model and its nftables rendering are checked too.
 */

const PACKETS = 250;
const SEEDS = [11, 22, 33, 44];
const A = HOST_A;
const B = HOST_B;
const B_NUMBER = parseIpv4Address(B)!;
/** The sender's last datagram: from its real address, accepted by the preamble; it ends the capture. */
const END_ID = 65000;

/** What lets the test's own probes through, outside the model: replies, and anything from A's real address. */
const NACL_PREAMBLE = ['if (ct.state == established) { accept }', `if (ip.saddr == ${A}) { accept }`];
const NFT_PREAMBLE = ['ct state established accept', `ip saddr ${A} accept`];

const nftRuleset = (policy: AclPolicy) => `
table ip nacl_differential {
  chain forward {
    type filter hook forward priority filter; policy accept;
${nftForwardChain(policy, NFT_PREAMBLE)
  .split('\n')
  .map((l) => `    ${l}`)
  .join('\n')}
  }
}
`;

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
 * netfilter drops them. It prints the IP ids from SOURCES in arrival order
 * and stops at the sender's END_ID datagram: the path is first in, first
 * out, so everything sent before it has arrived or been dropped by then.
 */
const RECEIVER = `
import socket, sys
dev, ready = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
s.bind((dev, 0))
s.settimeout(20)
open(ready, "w").close()
ids = []
try:
    while True:
        f = s.recv(2048)
        ip = f[14:]
        src = ip[12:16]
        pid = ip[4] << 8 | ip[5]
        if src[0] == 10 and src[1] == 100:
            ids.append(pid)
        elif bytes(src) == bytes([${A.split('.').join(', ')}]) and pid == ${END_ID}:
            print("end", " ".join(map(str, ids)))
            break
except socket.timeout:
    print("timeout", " ".join(map(str, ids)))
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

describeRealNetwork('the firewall against Linux nftables, on the same real packets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nacl-fw-nft-'));
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

  /** The ids that crossed from `sender` to `receiver` (on device `dev`), of `packets` sent in order. */
  async function crossing(sender: Netns, receiver: Netns, dev: string, packets: readonly AclPacket[], label: string): Promise<Set<number>> {
    const hexes = join(dir, `${label}.hex`);
    const ready = join(dir, `${label}.ready`);
    rmSync(ready, { force: true });
    const end = packetSpec({ proto: 'udp', src: parseIpv4Address(A)!, sport: 40000, dport: 9, ttl: 64, icmpType: 0, id: END_ID }, B_NUMBER);
    const datagrams = [...packets.map((p) => packetSpec(p, B_NUMBER)), end].map(buildDatagram);
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
    return new Set(out.trim().split(/\s+/).slice(1).map(Number));
  }

  /** Packets whose fate differs from the model's, for the failure message. */
  function disagreements(policy: AclPolicy, packets: readonly AclPacket[], arrived: Set<number>): string[] {
    return packets
      .filter((p) => (decide(policy, p) === 'accept') !== arrived.has(p.id))
      .map((p) => `${describePacket(p)}: policy says ${decide(policy, p)}, ${arrived.has(p.id) ? 'arrived' : 'did not arrive'}`);
  }

  /** A router namespace between two hosts, forwarding with `ruleset` (veth links). */
  function linuxRouter(ruleset: string): { a: Netns; b: Netns } {
    const [a, r, b] = [new Netns(), new Netns(), new Netns()];
    linux.push(a, r, b);
    a.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'a_side', 'netns', r.name);
    b.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'b_side', 'netns', r.name);
    for (const [ns, dev, address] of [
      [a, 'eth0', `${A}/24`],
      [b, 'eth0', `${B}/24`],
      [r, 'a_side', '10.91.1.1/24'],
      [r, 'b_side', '10.91.2.1/24'],
    ] as const) {
      ns.ip('link', 'set', 'lo', 'up');
      ns.ip('addr', 'add', address, 'dev', dev);
      ns.ip('link', 'set', dev, 'up');
    }
    a.ip('route', 'add', 'default', 'via', '10.91.1.1');
    b.ip('route', 'add', 'default', 'via', '10.91.2.1');
    // Spoofed sources arrive where no route points back: reverse-path filtering would drop them.
    r.sh('sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.a_side.rp_filter=0');
    writeFileSync(join(dir, 'router.nft'), ruleset);
    r.exec('nft', ['-f', join(dir, 'router.nft')]);
    writeFileSync(join(dir, 'far.nft'), FAR_HOST_RULES);
    b.exec('nft', ['-f', join(dir, 'far.nft')]);
    return { a, b };
  }

  for (const seed of SEEDS) {
    it(`policy ${seed}: the appliance and Linux pass exactly the packets the policy accepts`, async () => {
      if (!haveNft) return;
      const policy = randomPolicy(seed);
      const packets = randomAclPackets(policy, PACKETS, seed * 7 + 1);
      const accepted = packets.filter((p) => decide(policy, p) === 'accept').length;
      // A policy that passes everything or nothing would prove little.
      expect(accepted).toBeGreaterThan(PACKETS / 10);
      expect(accepted).toBeLessThan(PACKETS - PACKETS / 10);
      // So does one where a few rules decide everything: most rules must decide some packet.
      expect(decidedBy(policy, packets).filter((n) => n > 0).length).toBeGreaterThanOrEqual(policy.rules.length / 2);

      const reference = linuxRouter(nftRuleset(policy));
      expect(reference.a.exec('ping', ['-c', '1', '-W', '2', B])).toMatch(/1 received/);
      const byLinux = await crossing(reference.a, reference.b, 'eth0', packets, `linux-${seed}`);
      expect(disagreements(policy, packets, byLinux), `Linux with\n${nftRuleset(policy)}`).toEqual([]);

      const topo = new Topology();
      try {
        const [tapA, tapB] = await topo.boot(routerConfig(policy, NACL_PREAMBLE), 2);
        const a: Host = topo.attach(tapA!, { nic: 0, address: `${A}/24`, gateway: '10.91.1.1' });
        const b: Host = topo.attach(tapB!, { nic: 1, address: `${B}/24`, gateway: '10.91.2.1' });
        writeFileSync(join(dir, 'far.nft'), FAR_HOST_RULES);
        b.ns.exec('nft', ['-f', join(dir, 'far.nft')]);
        // The probe resolves ARP on both sides, so no datagram waits in (or overflows) an ARP queue.
        await waitFor(() => /1 received/.test(shOutput(a, `ping -c 1 -W 1 ${B}`)), 10_000, () => `for ${B} through the appliance`);
        const byAppliance = await crossing(a.ns, b.ns, b.dev, packets, `appliance-${seed}`);
        expect(disagreements(policy, packets, byAppliance), `the appliance with\n${routerConfig(policy, NACL_PREAMBLE)}`).toEqual([]);
        expect(byAppliance).toEqual(byLinux);
      } finally {
        await topo.teardown();
      }
    }, 60_000);
  }
});
