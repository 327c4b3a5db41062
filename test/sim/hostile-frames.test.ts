import fc from 'fast-check';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { generateModule } from '../../compiler/codegen/emit.ts';
import { compileSource } from '../../compiler/compile.ts';
import type { Ir } from '../../compiler/ir.ts';
import type { Appliance } from '../../runtime/appliance.ts';
import { createAppliance } from '../../runtime/boot.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { attach, MemoryNetwork, type MemoryNic } from '../../runtime/drivers/memory.ts';

/*
 * The whole packet path under hostile input: appliances with most features
 * on at once (VLAN Ifaces on a trunk, a Gateway with a forward Filter,
 * conntrack with a small limit, dnat/snat Nat functions, masquerade, a TCP
 * Load_balancer, syslog, a Timer, reassembly) get sequences of random and
 * mutated frames with clock advances between them, and every frame they
 * send must be well-formed and explainable (runtime-semantics.md, README
 * "Run time"). The frames are built and checked here by hand, not with
 * runtime/wire: the checks must not share the code they check.
 *
 * NACL_FUZZ_RUNS=20000 runs it for longer (and prints what kinds of frames
 * were sent); NACL_FUZZ_SEED picks another seed. To study a failure, rerun
 * with its seed, NACL_FUZZ_PATH=<the printed path> and NACL_FUZZ_SHRINK=1
 * (shrinks it), then NACL_FUZZ_TRACE=1 to print every frame in and out.
 */

const RUNS = Number(process.env.NACL_FUZZ_RUNS ?? 500);
const SEED = Number(process.env.NACL_FUZZ_SEED ?? 20261127);
/** Set to print each injected and sent frame (with NACL_FUZZ_PATH, of the one failing sequence). */
const TRACE = Boolean(process.env.NACL_FUZZ_TRACE);

// --- addresses ------------------------------------------------------------------

const ip = (text: string): number => text.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
const ipText = (a: number): string => [24, 16, 8, 0].map((s) => (a >>> s) & 255).join('.');

const WAN = ip('198.51.100.10');
const V10 = ip('10.10.0.1');
const V20 = ip('10.20.0.1');
const LAN = ip('10.30.0.1');
const OWN = new Set([WAN, V10, V20, LAN]);
/** Sources the forward Filter drops, whatever their state. */
const BANNED_NET = ip('10.99.0.0');
const isBanned = (a: number): boolean => (a & 0xffff0000) >>> 0 === BANNED_NET;

/** Addresses frames are sent from and to: hosts on each segment, outside, banned, the appliance's own, broadcasts. */
const HOSTS = ['198.51.100.7', '203.0.113.9', '10.10.0.80', '10.10.0.5', '10.20.0.81', '10.20.0.82', '10.30.0.5', '10.30.0.9', '10.99.0.5'].map(ip);
const DESTINATIONS = [...HOSTS, ...OWN, ip('255.255.255.255'), ip('10.10.0.255'), ip('10.30.0.255'), ip('224.0.0.1'), ip('192.0.2.1')];
/** Ports the config names, their neighbours, and others. */
const PORTS = [22, 23, 53, 80, 81, 443, 514, 2222, 8080, 49152, 65535, 0];

const BROADCAST_MAC = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
const MULTICAST_MAC = [0x01, 0x00, 0x5e, 0x00, 0x00, 0x01];
const applianceMac = (nic: number): number[] => [0x02, 0, 0, 0, 0xa0, nic];
/** The MAC the simulated neighbour owning `address` answers ARP with. */
const neighbourMac = (address: number): number[] => [0x02, 0x0e, ...[24, 16, 8, 0].map((s) => (address >>> s) & 255)];

// --- the appliances --------------------------------------------------------------

interface Variant {
  limit: number;
  statefulTcp: boolean;
  /** MTU of NIC 2 (lan): smaller ones make forwarding fragment. */
  lanMtu: number;
  /**
   * lan's send_queue_limit and buffer_limit small, and UDP from lan's
   * servers out of v10 onto one fixed source socket (snat(ADDRESS, PORT)
   * conflicts): where frames are dropped on purpose.
   */
  tight: boolean;
}

function config(v: Variant): string {
  return `
Iface wan { index: 0, address: 198.51.100.10, netmask: 255.255.255.0, gateway: 198.51.100.1, prerouting: port_forward, masquerade: true }
Iface trunk { index: 1 }
Iface v10 { index: 1, vlan: 10, address: 10.10.0.1, netmask: 255.255.255.0, input: guard${v.tight ? ', postrouting: one_socket' : ''} }
Iface v20 { index: 1, vlan: 20, address: 10.20.0.1, netmask: 255.255.255.0, postrouting: source_nat }
Iface lan { index: 2, address: 10.30.0.1, netmask: 255.255.255.0${v.tight ? ', send_queue_limit: 2, buffer_limit: 4' : ''} }
Gateway gw {
  forward: policy,
  world: { net: 0.0.0.0, netmask: 0.0.0.0, iface: wan, nexthop: 198.51.100.1 },
  v10_net: { net: 10.10.0.0, netmask: 255.255.255.0, iface: v10 },
  v20_net: { net: 10.20.0.0, netmask: 255.255.255.0, iface: v20 },
  lan_net: { net: 10.30.0.0, netmask: 255.255.255.0, iface: lan }
}
Conntrack tracker {
  limit: ${v.limit},
  stateful_tcp: ${v.statefulTcp},
  timeout: { established: { tcp: 30, udp: 20, icmp: 10 }, unconfirmed: { tcp: 5, udp: 5, icmp: 5 } }
}
Nat::IP port_forward {
  if (ip.daddr == 198.51.100.10) {
    Nat::UDP { if (udp.dport == 8080) { dnat(10.10.0.80, 80) } }
    Nat::TCP { if (tcp.dport == 2222) { dnat(10.30.0.5, 22) } }
  }
}
Nat::IP source_nat { snat(10.20.0.1) }
Nat::UDP one_socket { if (ip.saddr in 10.30.0.0/24) { snat(10.10.0.1, 7000) } }
Filter::IP guard {
  Filter::ICMP { accept }
  if (ct.state == established) { accept }
  syslog(INFO, "v10 input drop from ", ip.saddr)
  drop
}
Filter::IP policy {
  if (ip.saddr in 10.99.0.0/16) { drop }
  if (ct.state == established) { accept }
  Filter::TCP { if (tcp.dport in [22, 80, 443]) { accept } }
  Filter::UDP {
    if (udp.dport in [53, 80, 8080]) {
      syslog(NOTICE, "udp to ", ip.daddr, ":", udp.dport)
      accept
    }
  }
  Filter::ICMP { accept }
  log("forward drop ", ip.saddr, "\\n")
  drop
}
Load_balancer lb {
  layer: tcp,
  clients: { iface: lan, port: 80, wait_queue_limit: 4, session_limit: 2 },
  servers: {
    iface: v20,
    algorithm: least_connections,
    pool: [ { address: 10.20.0.81, port: 80 }, { address: 10.20.0.82, port: 80 } ]
  }
}
Syslog logger { address: 10.30.0.9, port: 514 }
Timer t { interval: 3, data: [stats, lb, timers, memory, timestamp] }
`;
}

/** Each variant's IR and generated code, compiled once. */
const compiled = new Map<string, { ir: Ir; code: string }>();

function compiledVariant(v: Variant): { ir: Ir; code: string } {
  const key = `${v.limit}/${v.statefulTcp}/${v.tight}`;
  const known = compiled.get(key);
  if (known) return known;
  const result = compileSource(config(v), 'hostile.nacl');
  if (!result.ir) throw new Error(result.diagnostics.map((d) => `${d.span.startLine}: ${d.message}`).join('\n'));
  const made = { ir: result.ir, code: generateModule(result.ir) };
  compiled.set(key, made);
  return made;
}

const SENT_KEPT = 5000;

/** What an emitted frame broke, or null. */
type Check = (frame: Uint8Array, nic: number) => string | null;

/**
 * One appliance on three simulated NICs (wan, the VLAN trunk, lan) with a
 * manual clock. Every frame it sends is copied and checked; neighbours that
 * it asks for by ARP answer when `neighboursAnswer` is set, so forwarded
 * packets and the load balancer's connections actually leave.
 */
class Bench {
  readonly clock = new ManualClock();
  readonly net = new MemoryNetwork({ clock: () => this.clock.now() });
  readonly appliance: Appliance;
  readonly mtus: number[];
  readonly injectors: MemoryNic[] = [];
  readonly violations: string[] = [];
  /** Console lines, the latest ones only: a long run must not measure its own log. */
  readonly logs: string[] = [];
  /** The frames sent, by NIC: `[nic, frame]`; the latest SENT_KEPT only, for the same reason. */
  readonly sent: [number, Uint8Array][] = [];
  /** All frames that left the appliance's NICs. */
  sentCount = 0;
  /** ARP replies owed to the appliance, sent at the next delivery. */
  private readonly owed: { nic: number; frame: Uint8Array }[] = [];

  constructor(
    readonly variant: Variant,
    readonly check: Check,
    readonly neighboursAnswer: boolean,
  ) {
    this.mtus = [1500, 1500, variant.lanMtu];
    const nics = new Map<string, MemoryNic>();
    for (let i = 0; i < 3; i++) {
      const nic = this.net.createNic({ name: `appliance.nic${i}`, mac: Uint8Array.from(applianceMac(i)), mtu: this.mtus[i]! });
      attach(nic, this.net.switch(`seg${i}`));
      const send = nic.send.bind(nic);
      // The driver may reuse the frames after send returns: look at them now.
      nic.send = (frames) => {
        for (const f of frames) this.observe(Uint8Array.from(f), i);
        send(frames);
      };
      nics.set(String(i), nic);
      const injector = this.net.createNic({ name: `injector${i}`, mac: Uint8Array.of(2, 0, 0, 0, 0xc0, i) });
      attach(injector, this.net.switch(`seg${i}`));
      this.injectors.push(injector);
    }
    const { ir, code } = compiledVariant(variant);
    this.appliance = createAppliance(ir, code, { nics, clock: this.clock, log: (line) => {
        this.logs.push(line);
        if (this.logs.length > 100) this.logs.shift();
      }, random: seededRandom(1) });
    this.appliance.start();
    this.deliver();
  }

  private observe(frame: Uint8Array, nic: number): void {
    this.sentCount++;
    if (TRACE) console.log(`out nic${nic} ${hex(frame)}`);
    this.sent.push([nic, frame]);
    if (this.sent.length > SENT_KEPT) this.sent.shift();
    const problem = this.check(frame, nic);
    if (problem) this.violations.push(`nic${nic}: ${problem}: ${hex(frame)}`);
    if (this.neighboursAnswer) {
      const reply = arpReplyFor(frame, nic);
      if (reply) this.owed.push({ nic, frame: reply });
    }
  }

  inject(nic: number, frame: Uint8Array): void {
    if (TRACE) console.log(`in  nic${nic} ${hex(frame)}`);
    this.injectors[nic]!.send([frame]);
    this.deliver();
  }

  advance(ms: number): void {
    this.clock.advance(ms, () => this.deliver());
    this.deliver();
  }

  /** Delivers every frame in flight, the owed ARP replies among them. */
  private deliver(): void {
    for (let round = 0; round < 10; round++) {
      this.net.flush();
      if (this.owed.length === 0) return;
      for (const { nic, frame } of this.owed.splice(0)) this.injectors[nic]!.send([frame]);
    }
  }
}

/** A small deterministic generator (mulberry32), so a failing seed replays exactly. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- independent wire reading ------------------------------------------------------

const u16 = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const hex = (b: Uint8Array): string => Buffer.from(b.subarray(0, 80)).toString('hex') + (b.length > 80 ? '...' : '');

/** RFC 1071 one's complement sum of `b[start, end)`, not folded to 16 bits yet. */
function sum16(b: Uint8Array, start: number, end: number, initial = 0): number {
  let s = initial;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return s;
}

function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

const checksum = (b: Uint8Array, start: number, end: number, initial = 0): number => ~fold(sum16(b, start, end, initial)) & 0xffff;
const sumsToZero = (b: Uint8Array, start: number, end: number, initial = 0): boolean => fold(sum16(b, start, end, initial)) === 0xffff;

/** Where the link header ends and what it carries, or null; up to two tags. */
function linkOf(frame: Uint8Array): { l3: number; etherType: number; tags: number } | null {
  if (frame.length < 14) return null;
  let l3 = 14;
  let etherType = u16(frame, 12);
  let tags = 0;
  while ((etherType === 0x8100 || etherType === 0x88a8) && tags < 2 && frame.length >= l3 + 4) {
    etherType = u16(frame, l3 + 2);
    l3 += 4;
    tags++;
  }
  return { l3, etherType, tags };
}

interface Ipv4 {
  l3: number;
  ihl: number;
  total: number;
  id: number;
  protocol: number;
  src: number;
  dst: number;
  fragment: boolean;
  firstFragment: boolean;
}

/** The IPv4 header at l3 as far as the bytes go, without judging it. */
function ipv4At(b: Uint8Array, l3: number): Ipv4 | null {
  if (b.length < l3 + 20) return null;
  const flags = u16(b, l3 + 6);
  return {
    l3,
    ihl: (b[l3]! & 15) * 4,
    total: u16(b, l3 + 2),
    id: u16(b, l3 + 4),
    protocol: b[l3 + 9]!,
    src: u32(b, l3 + 12),
    dst: u32(b, l3 + 16),
    fragment: (flags & 0x3fff) !== 0,
    firstFragment: (flags & 0x1fff) === 0,
  };
}

const ICMP_ERRORS = new Set([3, 4, 5, 11, 12]);

/** Whether the TCP/UDP/ICMP checksum of a whole (unfragmented) datagram is right; UDP 0 means none. */
function l4ChecksumOk(b: Uint8Array, h: Ipv4): boolean {
  const l4 = h.l3 + h.ihl;
  const end = h.l3 + h.total;
  if (h.protocol === 1) return end - l4 >= 8 ? sumsToZero(b, l4, end) : false;
  if (h.protocol !== 6 && h.protocol !== 17) return true;
  if (h.protocol === 6 ? end - l4 < 20 : end - l4 < 8) return false;
  if (h.protocol === 17 && u16(b, l4 + 6) === 0) return true;
  const pseudo = (h.src >>> 16) + (h.src & 0xffff) + (h.dst >>> 16) + (h.dst & 0xffff) + h.protocol + (end - l4);
  return sumsToZero(b, l4, end, pseudo);
}

// --- what the appliance may send ---------------------------------------------------

/** What the sequence put on the wire, for deciding whether an emitted packet was forwarded. */
interface Injected {
  /** `${src}>${dst}` of every IPv4 header injected: what a packet leaving wan unmasqueraded must answer. */
  pairs: Set<string>;
  /** `${protocol}/${id}` of every injected IPv4 header: forwarded packets keep both. */
  ids: Set<string>;
  /** The same, for injected datagrams whose L4 checksum was wrong or could not be judged (fragments). */
  unchecked: Set<string>;
}

const noneInjected = (): Injected => ({ pairs: new Set(), ids: new Set(), unchecked: new Set() });

function recordInjected(frame: Uint8Array, into: Injected): void {
  const link = linkOf(frame);
  if (!link || link.etherType !== 0x0800) return;
  const h = ipv4At(frame, link.l3);
  if (!h) return;
  into.pairs.add(`${h.src}>${h.dst}`);
  const key = `${h.protocol}/${h.id}`;
  into.ids.add(key);
  const whole = !h.fragment && h.ihl >= 20 && h.total >= h.ihl && link.l3 + h.total <= frame.length;
  if (!whole || !l4ChecksumOk(frame, h)) into.unchecked.add(key);
}

/**
 * The invariants on one emitted frame: from the NIC's MAC, tagged exactly
 * when it leaves the trunk and only with a configured VLAN, a sound ARP or
 * IPv4 header, within the link's MTU, no source the forward Filter drops,
 * nothing leaving masquerading wan from an inside address unless it is a
 * reply. A packet whose protocol and IP identification no injected packet
 * had cannot be a forwarded one: the appliance made it, so it must come
 * from one of its own addresses, carry a correct L4 checksum, not be an
 * ICMP error RFC 1812 4.3.2.7 forbids, and be RFC 5424 if it is syslog.
 * Forwarded packets must keep a correct L4 checksum through NAT when they
 * arrived with one.
 */
function frameCheck(injected: Injected, mtus: readonly number[]): Check {
  return (frame, nic) => {
    const link = linkOf(frame);
    if (!link) return 'shorter than an Ethernet header';
    if (!equalBytes(frame.subarray(6, 12), applianceMac(nic))) return 'source MAC is not the NIC MAC';
    if (link.tags > 1) return 'sent a Q-in-Q frame';
    if (link.tags === 1 && nic !== 1) return 'tagged frame on an untagged NIC';
    // The trunk Iface has no address: nothing leaves NIC 1 untagged.
    if (link.tags === 0 && nic === 1) return 'untagged frame on the trunk';
    if (link.tags === 1 && ![10, 20].includes(u16(frame, 14) & 0xfff)) return `tagged with VLAN ${u16(frame, 14) & 0xfff}`;
    if (link.etherType === 0x0806) return arpProblem(frame, link.l3, nic);
    if (link.etherType !== 0x0800) return `EtherType ${link.etherType.toString(16)}`;
    const h = ipv4At(frame, link.l3);
    if (!h) return 'IPv4 header cut short';
    if (frame[h.l3]! >> 4 !== 4 || h.ihl < 20) return 'bad version or IHL';
    if (h.total < h.ihl || h.l3 + h.total > frame.length) return `total length ${h.total} outside the frame`;
    if (h.total > mtus[nic]!) return `${h.total} bytes exceed the MTU ${mtus[nic]}`;
    if (frame.length > link.l3 + mtus[nic]!) return `a ${frame.length}-byte frame on a link of MTU ${mtus[nic]}`;
    if (!sumsToZero(frame, h.l3, h.l3 + h.ihl)) return 'bad IPv4 header checksum';
    if (frame[h.l3 + 8] === 0) return 'TTL 0';
    if (isBanned(h.src)) return `forwarded ${ipText(h.src)}, which the forward Filter drops`;
    const key = `${h.protocol}/${h.id}`;
    const forwarded = injected.ids.has(key);
    if (!forwarded && !OWN.has(h.src)) return `made a packet from ${ipText(h.src)}, not its own address`;
    // wan masquerades: TCP or UDP leaves it from another address only as a reply, in answer to a flow the other way
    // (one from an outside host, or one that came in spoofing the address it is now sent back to).
    if (nic === 0 && (h.protocol === 6 || h.protocol === 17) && !OWN.has(h.src) && !injected.pairs.has(`${h.dst}>${h.src}`)) {
      return `${ipText(h.src)} -> ${ipText(h.dst)} left wan unmasqueraded`;
    }
    if (!h.fragment && !injected.unchecked.has(key) && !l4ChecksumOk(frame, h)) return `bad protocol ${h.protocol} checksum`;
    // Only a first fragment starts with the ICMP header (an ICMP error fragmented for a small MTU).
    if (!forwarded && h.protocol === 1 && h.firstFragment) return icmpErrorProblem(frame, h);
    if (!forwarded && h.protocol === 17 && !h.fragment) return syslogProblem(frame, h);
    return null;
  };
}

/** A syslog datagram the appliance made must be RFC 5424 with facility user (PRI 8-15), as the README says. */
function syslogProblem(frame: Uint8Array, h: Ipv4): string | null {
  const l4 = h.l3 + h.ihl;
  if (u16(frame, l4 + 2) !== 514) return null;
  const text = Buffer.from(frame.subarray(l4 + 8, h.l3 + h.total)).toString('latin1');
  const pri = /^<(\d{1,3})>1 /.exec(text);
  return pri && Number(pri[1]) >= 8 && Number(pri[1]) <= 15 ? null : `syslog datagram ${JSON.stringify(text.slice(0, 40))}`;
}

function icmpErrorProblem(frame: Uint8Array, h: Ipv4): string | null {
  const l4 = h.l3 + h.ihl;
  if (!ICMP_ERRORS.has(frame[l4]!)) return null;
  const quoted = ipv4At(frame, l4 + 8);
  if (!quoted) return 'ICMP error quoting less than an IPv4 header';
  if (!quoted.firstFragment) return 'ICMP error about a non-first fragment';
  if (quoted.dst === 0xffffffff || quoted.dst >>> 28 === 14) return 'ICMP error about a broadcast or multicast packet';
  const quotedL4 = quoted.l3 + quoted.ihl;
  if (quoted.protocol === 1 && quotedL4 < h.l3 + h.total && ICMP_ERRORS.has(frame[quotedL4]!)) return 'ICMP error about an ICMP error';
  return null;
}

function arpProblem(frame: Uint8Array, l3: number, nic: number): string | null {
  if (frame.length < l3 + 28) return 'ARP cut short';
  if (u16(frame, l3) !== 1 || u16(frame, l3 + 2) !== 0x0800 || frame[l3 + 4] !== 6 || frame[l3 + 5] !== 4) return 'ARP for something other than Ethernet/IPv4';
  const op = u16(frame, l3 + 6);
  if (op !== 1 && op !== 2) return `ARP op ${op}`;
  if (!equalBytes(frame.subarray(l3 + 8, l3 + 14), applianceMac(nic))) return 'ARP sender MAC is not the NIC MAC';
  if (!OWN.has(u32(frame, l3 + 14))) return `ARP for ${ipText(u32(frame, l3 + 14))}, not its own address`;
  return null;
}

function equalBytes(a: Uint8Array, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** A neighbour's answer to an ARP request the appliance sent, or null. */
function arpReplyFor(frame: Uint8Array, nic: number): Uint8Array | null {
  const link = linkOf(frame);
  if (!link || link.etherType !== 0x0806 || frame.length < link.l3 + 28 || u16(frame, link.l3 + 6) !== 1) return null;
  const asker = u32(frame, link.l3 + 14);
  const wanted = u32(frame, link.l3 + 24);
  if (OWN.has(wanted) || wanted === asker) return null;
  const arp = [0, 1, 8, 0, 6, 4, 0, 2, ...neighbourMac(wanted), ...be32(wanted), ...frame.subarray(link.l3 + 8, link.l3 + 14), ...be32(asker)];
  const tag = link.tags === 1 ? [0x81, 0x00, ...frame.subarray(14, 16)] : [];
  return Uint8Array.from([...applianceMac(nic), ...neighbourMac(wanted), ...tag, 0x08, 0x06, ...arp]);
}

const be16 = (n: number): number[] => [(n >>> 8) & 255, n & 255];
const be32 = (n: number): number[] => [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];

// --- frames to send ----------------------------------------------------------------

interface IpFields {
  src: number;
  dst: number;
  protocol: number;
  ttl: number;
  id: number;
  df: boolean;
  tos: number;
  /** IP options, a multiple of 4 bytes. */
  options?: number[];
}

/** An IPv4 datagram with correct checksums. */
function ipv4Datagram(p: IpFields, l4: number[]): number[] {
  const options = p.options ?? [];
  const hl = 20 + options.length;
  const h = [0x40 | (hl / 4), p.tos, ...be16(hl + l4.length), ...be16(p.id), p.df ? 0x40 : 0, 0, p.ttl, p.protocol, 0, 0, ...be32(p.src), ...be32(p.dst), ...options];
  const bytes = Uint8Array.from([...h, ...l4]);
  const sum = checksum(bytes, 0, hl);
  bytes[10] = sum >> 8;
  bytes[11] = sum & 255;
  if (p.protocol === 1 && l4.length >= 4) fillL4Checksum(bytes, hl, hl + 2, 0);
  if ((p.protocol === 6 && l4.length >= 20) || (p.protocol === 17 && l4.length >= 8)) {
    const pseudo = (p.src >>> 16) + (p.src & 0xffff) + (p.dst >>> 16) + (p.dst & 0xffff) + p.protocol + l4.length;
    const at = hl + (p.protocol === 6 ? 16 : 6);
    if (!(p.protocol === 17 && bytes[at] === 0 && bytes[at + 1] === 0)) fillL4Checksum(bytes, hl, at, pseudo);
  }
  return [...bytes];
}

function fillL4Checksum(bytes: Uint8Array, l4: number, at: number, pseudo: number): void {
  bytes[at] = 0;
  bytes[at + 1] = 0;
  let sum = checksum(bytes, l4, bytes.length, pseudo);
  if (sum === 0 && bytes[9] === 17) sum = 0xffff;
  bytes[at] = sum >> 8;
  bytes[at + 1] = sum & 255;
}

/** The fields of a datagram ipv4Datagram built. */
function fieldsOf(d: number[]): IpFields {
  const hl = (d[0]! & 15) * 4;
  return { src: u32(Uint8Array.from(d), 12), dst: u32(Uint8Array.from(d), 16), protocol: d[9]!, ttl: d[8]!, id: (d[4]! << 8) | d[5]!, df: (d[6]! & 0x40) !== 0, tos: d[1]!, options: d.slice(20, hl) };
}

/** Splits a datagram into fragments of `size` payload bytes (a multiple of 8), each with the whole header. */
function fragments(datagram: number[], size: number): number[][] {
  const hl = (datagram[0]! & 15) * 4;
  const payload = datagram.slice(hl);
  const out: number[][] = [];
  for (let off = 0; off < payload.length || off === 0; off += size) {
    const piece = payload.slice(off, off + size);
    const more = off + size < payload.length;
    const h = datagram.slice(0, hl);
    h[2] = (hl + piece.length) >> 8;
    h[3] = (hl + piece.length) & 255;
    const flags = (h[6]! & 0x40) << 8;
    const word = flags | (more ? 0x2000 : 0) | (off / 8);
    h[6] = word >> 8;
    h[7] = word & 255;
    h[10] = 0;
    h[11] = 0;
    const sum = checksum(Uint8Array.from(h), 0, hl);
    h[10] = sum >> 8;
    h[11] = sum & 255;
    out.push([...h, ...piece]);
    if (payload.length === 0) break;
  }
  return out;
}

const address = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...HOSTS) }, { weight: 3, arbitrary: fc.constantFrom(...DESTINATIONS) }, { weight: 1, arbitrary: fc.nat({ max: 0xffffffff }) });
const source = fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...HOSTS) }, { weight: 1, arbitrary: fc.constantFrom(ip('0.0.0.0'), ip('255.255.255.255'), ip('224.0.0.5')) });
// The ports the forward Filter and the Nat functions name come up most.
const port = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(22, 53, 80, 443, 2222, 8080) }, { weight: 2, arbitrary: fc.constantFrom(...PORTS) }, { weight: 1, arbitrary: fc.nat({ max: 65535 }) });
// Mostly small; sometimes more than the lan MTU, so forwarding fragments.
const data = fc.oneof({ weight: 5, arbitrary: fc.array(fc.nat({ max: 255 }), { maxLength: 40 }) }, { weight: 1, arbitrary: fc.array(fc.nat({ max: 255 }), { minLength: 560, maxLength: 1480 }) });
const tcpFlags = fc.oneof(fc.constantFrom(0x02, 0x10, 0x12, 0x04, 0x14, 0x11, 0x18, 0x01, 0x29), fc.nat({ max: 255 }));

const ipFields = fc.record({
  src: source,
  dst: address,
  ttl: fc.constantFrom(64, 64, 64, 64, 64, 64, 1, 2, 0, 255),
  // Above any identification the appliance itself uses early on, so forwarded and made packets rarely share one.
  id: fc.integer({ min: 0x8000, max: 0xffff }),
  df: fc.boolean(),
  tos: fc.constantFrom(0, 0, 0xb8),
  // Mostly none; NOPs, a record route and a timestamp option shift every offset past the header.
  options: fc.constantFrom<number[]>([], [], [], [], [1, 1, 1, 1], [7, 7, 4, 0, 0, 0, 0, 0], [0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0], [0x94, 4, 0, 0]),
});

const tcpSegment = fc.record({ sport: port, dport: port, seq: fc.nat({ max: 0xffffffff }), ack: fc.nat({ max: 0xffffffff }), flags: tcpFlags, window: fc.nat({ max: 65535 }), options: fc.constantFrom([], [2, 4, 5, 0xb4], [2, 4, 5, 0xb4, 1, 3, 3, 7, 4, 2, 1, 1], [1, 1, 5, 10, 0, 0, 0, 1, 0, 0, 0, 9]), data }).map(
  (t) => [...be16(t.sport), ...be16(t.dport), ...be32(t.seq), ...be32(t.ack), (5 + t.options.length / 4) << 4, t.flags, ...be16(t.window), 0, 0, 0, 0, ...t.options, ...t.data],
);
const udpDatagram = fc.record({ sport: port, dport: port, data, noChecksum: fc.boolean() }).map((u) => [
  ...be16(u.sport),
  ...be16(u.dport),
  ...be16(8 + u.data.length),
  // 0 asks ipv4Datagram for no checksum, anything else for a computed one.
  u.noChecksum ? 0 : 1,
  0,
  ...u.data,
]);
const echo = fc.record({ type: fc.constantFrom(8, 8, 8, 0, 13, 42), id: fc.nat({ max: 65535 }), seq: fc.nat({ max: 65535 }), data }).map((e) => [e.type, 0, 0, 0, ...be16(e.id), ...be16(e.seq), ...e.data]);

const plainDatagram: fc.Arbitrary<number[]> = fc.oneof(
  fc.tuple(ipFields, tcpSegment).map(([f, l4]) => ipv4Datagram({ ...f, protocol: 6 }, l4)),
  fc.tuple(ipFields, udpDatagram).map(([f, l4]) => ipv4Datagram({ ...f, protocol: 17 }, l4)),
  fc.tuple(ipFields, echo).map(([f, l4]) => ipv4Datagram({ ...f, protocol: 1 }, l4)),
  fc.tuple(ipFields, data).map(([f, l4]) => ipv4Datagram({ ...f, protocol: 47 }, l4)),
);

/** An ICMP error (unreachable, time exceeded, ...) quoting the start of another datagram, itself maybe an ICMP error. */
const icmpError = fc
  .tuple(ipFields, fc.constantFrom(3, 11, 12, 4, 5), fc.nat({ max: 15 }), plainDatagram, fc.boolean(), fc.constantFrom(8, 28, 576))
  .map(([f, type, code, quoted, nested, keep]) => {
    const quote = nested ? ipv4Datagram({ ...f, src: f.dst, dst: f.src, protocol: 1 }, [type, code, 0, 0, 0, 0, 0, 0, ...quoted.slice(0, 28)]) : quoted;
    return ipv4Datagram({ ...f, protocol: 1 }, [type, code, 0, 0, 0, 0, 0, 0, ...quote.slice(0, 20 + keep)]);
  });

const datagram = fc.oneof({ weight: 4, arbitrary: plainDatagram }, { weight: 1, arbitrary: icmpError });

const arpPayload = fc
  .record({ op: fc.constantFrom(1, 2, 3), senderMac: fc.constantFrom(neighbourMac(HOSTS[0]!), [2, 0, 0, 0, 0xc0, 1], BROADCAST_MAC), sender: address, target: address })
  .map((a) => [0, 1, 8, 0, 6, 4, ...be16(a.op), ...a.senderMac, ...be32(a.sender), 0, 0, 0, 0, 0, 0, ...be32(a.target)]);

/** How a frame is damaged after it was built. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat({ max: 200 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat({ max: 200 }), bit: fc.nat({ max: 7 }) }),
  fc.record({ kind: fc.constant('set' as const), at: fc.constantFrom(14, 16, 17, 18, 20, 21, 22, 23, 24, 32, 34, 35, 36, 37, 38, 39, 40, 41, 46, 47, 18, 19), value: fc.nat({ max: 255 }) }),
  // Ethernet padding, or far more trailing bytes than the IP total length says (a driver takes frames of any size).
  fc.record({ kind: fc.constant('pad' as const), bytes: fc.oneof(fc.nat({ max: 60 }), fc.integer({ min: 1400, max: 2000 })) }),
);
type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

function mutate(frame: number[], m: Mutation): number[] {
  switch (m.kind) {
    case 'truncate':
      return frame.slice(0, m.at);
    case 'flip': {
      if (m.at >= frame.length) return frame;
      const out = [...frame];
      out[m.at] = out[m.at]! ^ (1 << m.bit);
      return out;
    }
    case 'set': {
      if (m.at >= frame.length) return frame;
      const out = [...frame];
      out[m.at] = m.value;
      return out;
    }
    case 'pad':
      return [...frame, ...new Array<number>(m.bytes).fill(0)];
  }
}

/** Puts the IPv4 header checksum right again after mutations, so damage past the header reaches further in. */
function refixIpChecksum(frame: number[]): number[] {
  const b = Uint8Array.from(frame);
  const link = linkOf(b);
  if (!link || link.etherType !== 0x0800) return frame;
  const ihl = (b[link.l3]! & 15) * 4;
  if (ihl < 20 || b.length < link.l3 + ihl) return frame;
  b[link.l3 + 10] = 0;
  b[link.l3 + 11] = 0;
  const sum = checksum(b, link.l3, link.l3 + ihl);
  b[link.l3 + 10] = sum >> 8;
  b[link.l3 + 11] = sum & 255;
  return [...b];
}

/** A link header: which MAC, which tags. */
const linkHeader = fc.record({
  to: fc.constantFrom('appliance', 'appliance', 'appliance', 'broadcast', 'multicast', 'other'),
  from: fc.constantFrom(...HOSTS.slice(0, 4).map(neighbourMac), [0x03, 0, 0, 0, 0, 1]),
  tags: fc.constantFrom<number[][]>([], [], [0x8100, 10], [0x8100, 20], [0x8100, 30], [0x8100, 10, 0x8100, 20], [0x88a8, 100, 0x8100, 10], [0x9100, 10]),
});

function frameOf(link: { to: string; from: number[]; tags: number[] }, nic: number, etherType: number, payload: number[]): number[] {
  const dst = link.to === 'appliance' ? applianceMac(nic) : link.to === 'broadcast' ? BROADCAST_MAC : link.to === 'multicast' ? MULTICAST_MAC : [2, 9, 9, 9, 9, 9];
  const tags: number[] = [];
  for (let i = 0; i < link.tags.length; i += 2) tags.push(...be16(link.tags[i]!), ...be16(link.tags[i + 1]!));
  return [...dst, ...link.from, ...tags, ...be16(etherType), ...payload];
}

type Step = { kind: 'frames'; nic: number; frames: number[][] } | { kind: 'advance'; ms: number } | ReplyStep | ConnectStep | FlowsStep;

/** Where a plausible packet comes from: the NIC and tag of a host's segment, and its addresses. */
const ORIGINS: readonly { nic: number; tags: number[]; sources: number[] }[] = [
  { nic: 0, tags: [], sources: ['198.51.100.7', '203.0.113.9', '10.99.0.5'].map(ip) },
  { nic: 1, tags: [0x8100, 10], sources: ['10.10.0.80', '10.10.0.5', '10.99.0.5'].map(ip) },
  { nic: 1, tags: [0x8100, 20], sources: ['10.20.0.81', '10.20.0.82'].map(ip) },
  { nic: 2, tags: [], sources: ['10.30.0.5', '10.30.0.9', '10.99.0.5'].map(ip) },
];

/** The same datagram (20-byte header) from another source, checksums made right again. */
function fromSource(datagram: number[], src: number): number[] {
  const hl = (datagram[0]! & 15) * 4;
  return ipv4Datagram({ ...fieldsOf(datagram), src }, datagram.slice(hl));
}

const frameStep: fc.Arbitrary<Step> = fc
  .record({
    // A plausible frame (a host's segment, tag and address) or one from anywhere.
    origin: fc.option(fc.record({ at: fc.nat({ max: ORIGINS.length - 1 }), source: fc.nat({ max: 2 }) }), { freq: 3 }),
    nic: fc.constantFrom(0, 1, 2),
    link: linkHeader,
    body: fc.oneof(
      { weight: 1, arbitrary: fc.record({ kind: fc.constant('random' as const), bytes: fc.array(fc.nat({ max: 255 }), { maxLength: 120 }), etherType: fc.constantFrom(0x0800, 0x0806, 0x86dd, 0x88cc) }) },
      { weight: 2, arbitrary: fc.record({ kind: fc.constant('arp' as const), bytes: arpPayload }) },
      { weight: 8, arbitrary: fc.record({ kind: fc.constant('ip' as const), bytes: datagram, fragment: fc.constantFrom(0, 0, 0, 8, 16, 24), order: fc.constantFrom('in order', 'reversed', 'last missing', 'doubled') }) },
    ),
    mutations: fc.oneof(fc.constant([]), fc.array(mutation, { minLength: 1, maxLength: 3 })),
    refix: fc.boolean(),
  })
  .map(({ origin, nic: anyNic, link: anyLink, body, mutations, refix }) => {
    let nic: number = anyNic;
    let link = anyLink;
    let bytes = body.bytes;
    if (origin) {
      const o = ORIGINS[origin.at]!;
      nic = o.nic;
      link = { ...anyLink, to: 'appliance', tags: o.tags };
      if (body.kind === 'ip') bytes = fromSource(bytes, o.sources[origin.source % o.sources.length]!);
    }
    let payloads: number[][];
    const etherType = body.kind === 'random' ? body.etherType : body.kind === 'arp' ? 0x0806 : 0x0800;
    if (body.kind === 'ip' && body.fragment > 0) {
      const pieces = fragments(bytes, body.fragment);
      payloads = body.order === 'reversed' ? pieces.reverse() : body.order === 'last missing' && pieces.length > 1 ? pieces.slice(0, -1) : body.order === 'doubled' ? [...pieces, ...pieces.slice(0, 1)] : pieces;
    } else {
      payloads = [bytes];
    }
    const frames = payloads.map((p, i) => {
      let f = frameOf(link, nic, etherType, p);
      // Damage the first frame of a fragment train only, so the others stay valid fragments.
      if (i === 0) for (const m of mutations) f = mutate(f, m);
      return i === 0 && refix ? refixIpChecksum(f) : f;
    });
    return { kind: 'frames' as const, nic, frames };
  });

/**
 * An answer to a packet the appliance sent earlier (picked at run time):
 * the reverse direction of its flow (a SYN-ACK, ACK, data, RST or FIN in
 * sequence, an echo reply, a UDP answer), or an ICMP error about it. This is
 * what reaches established state, reverse NAT and the load balancer's
 * connections to its nodes.
 */
const replyStep = fc.record({
  kind: fc.constant('reply' as const),
  pick: fc.nat(),
  how: fc.constantFrom('reverse', 'reverse', 'reverse', 'icmp-error'),
  tcp: fc.constantFrom('syn-ack', 'ack', 'data', 'rst', 'fin'),
  icmp: fc.constantFrom<[number, number]>([3, 3], [3, 4], [3, 1], [11, 0], [12, 0]),
  fromRouter: fc.boolean(),
  isn: fc.nat({ max: 0xffffffff }),
  id: fc.integer({ min: 0x8000, max: 0xffff }),
  data: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 200 }),
  mutations: fc.oneof({ weight: 3, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 2 }) }),
});
type ReplyStep = typeof replyStep extends fc.Arbitrary<infer T> ? T : never;

/** The frame `r` describes, answering one the appliance sent, or null when it sent no IPv4 packet yet. */
function replyFrame(bench: Bench, r: ReplyStep): { nic: number; frame: Uint8Array } | null {
  const candidates = bench.sent.filter(([, f]) => {
    const link = linkOf(f);
    const h = link?.etherType === 0x0800 ? ipv4At(f, link.l3) : null;
    return h !== null && h.firstFragment && !isBroadcastMac(f);
  });
  if (candidates.length === 0) return null;
  // Mostly one of the latest: a conversation goes on from where it is.
  const recent = Math.min(candidates.length, 6);
  const at = r.pick % 4 === 0 ? r.pick % candidates.length : candidates.length - 1 - (r.pick % recent);
  const [nic, sent] = candidates[at]!;
  return answer(nic, sent, r);
}

/** The frame `r` describes, answering `sent`, which left NIC `nic`. */
function answer(nic: number, sent: Uint8Array, r: ReplyStep): { nic: number; frame: Uint8Array } | null {
  const link = linkOf(sent)!;
  const h = ipv4At(sent, link.l3)!;
  const l4 = link.l3 + h.ihl;
  const fields = { src: h.dst, dst: h.src, ttl: 64, id: r.id, df: false, tos: 0 };
  let datagram: number[];
  if (r.how === 'icmp-error') {
    const quote = [...sent.subarray(link.l3, Math.min(link.l3 + h.total, link.l3 + 548, sent.length))];
    const [type, code] = r.icmp;
    const mtu = type === 3 && code === 4 ? 576 : 0;
    datagram = ipv4Datagram({ ...fields, src: r.fromRouter ? HOSTS[0]! : h.dst, protocol: 1 }, [type!, code!, 0, 0, 0, 0, ...be16(mtu), ...quote]);
  } else if (h.protocol === 6 && sent.length >= l4 + 20) {
    const seq = u32(sent, l4 + 4);
    const ack = u32(sent, l4 + 8);
    const flags = sent[l4 + 13]!;
    const length = link.l3 + h.total - l4 - (sent[l4 + 12]! >> 4) * 4 + (flags & 0x03 ? 1 : 0);
    const next = (seq + length) >>> 0;
    // The sequence number the appliance expects: what it acknowledged, or a fresh ISN for a SYN-ACK.
    const ours = r.tcp === 'syn-ack' ? r.isn : flags & 0x10 ? ack : r.isn;
    const flagByte = { 'syn-ack': 0x12, ack: 0x10, data: 0x18, rst: 0x14, fin: 0x11 }[r.tcp];
    const payload = r.tcp === 'data' ? r.data : [];
    const options = r.tcp === 'syn-ack' ? [2, 4, 5, 0xb4, 1, 1, 4, 2] : [];
    datagram = ipv4Datagram({ ...fields, protocol: 6 }, [...sent.subarray(l4 + 2, l4 + 4), ...sent.subarray(l4, l4 + 2), ...be32(ours), ...be32(next), (5 + options.length / 4) << 4, flagByte, 0xff, 0xff, 0, 0, 0, 0, ...options, ...payload]);
  } else if (h.protocol === 17 && sent.length >= l4 + 8) {
    datagram = ipv4Datagram({ ...fields, protocol: 17 }, [...sent.subarray(l4 + 2, l4 + 4), ...sent.subarray(l4, l4 + 2), ...be16(8 + r.data.length), 1, 0, ...r.data]);
  } else if (h.protocol === 1 && sent.length >= l4 + 8 && sent[l4] === 8) {
    datagram = ipv4Datagram({ ...fields, protocol: 1 }, [0, 0, 0, 0, ...sent.subarray(l4 + 4, link.l3 + h.total)]);
  } else {
    return null;
  }
  const tags = link.tags === 1 ? [0x8100, u16(sent, 14) & 0xfff] : [];
  let frame = frameOf({ to: 'appliance', from: [...sent.subarray(0, 6)], tags }, nic, 0x0800, datagram);
  for (const m of r.mutations) frame = mutate(frame, m);
  return { nic, frame: Uint8Array.from(frame) };
}

/**
 * A client of the load balancer on lan: a SYN to its port, then, answering
 * the SYN-ACK, the ACK with the first bytes of a request.
 */
const connectStep = fc.record({
  kind: fc.constant('connect' as const),
  client: fc.constantFrom(ip('10.30.0.5'), ip('10.30.0.9')),
  sport: fc.integer({ min: 1024, max: 65535 }),
  isn: fc.nat({ max: 0xffffffff }),
  id: fc.integer({ min: 0x8000, max: 0xffff }),
  request: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 300 }),
});
type ConnectStep = typeof connectStep extends fc.Arbitrary<infer T> ? T : never;

function connect(bench: Bench, c: ConnectStep, injected: Injected): void {
  const syn = ipv4Datagram({ src: c.client, dst: LAN, protocol: 6, ttl: 64, id: c.id, df: true, tos: 0 }, [...be16(c.sport), 0, 80, ...be32(c.isn), 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0, 2, 4, 5, 0xb4]);
  const frame = Uint8Array.from(frameOf({ to: 'appliance', from: neighbourMac(c.client), tags: [] }, 2, 0x0800, syn));
  recordInjected(frame, injected);
  bench.inject(2, frame);
  const isSynAck = ([nic, f]: [number, Uint8Array]): boolean => nic === 2 && f.length >= 54 && f[23] === 6 && u32(f, 30) === c.client && u16(f, 36) === c.sport && (f[47]! & 0x12) === 0x12;
  const synAck = [...bench.sent].reverse().find(isSynAck);
  if (!synAck) return;
  const ack = answer(2, synAck[1], { kind: 'reply', pick: 0, how: 'reverse', tcp: 'data', icmp: [3, 3], fromRouter: false, isn: 0, id: (c.id + 1) & 0xffff, data: c.request, mutations: [] });
  if (!ack) return;
  recordInjected(ack.frame, injected);
  bench.inject(ack.nic, ack.frame);
}

/**
 * Well-formed traffic the random frames rarely make: a datagram from v10 to
 * a lan server bigger than lan's MTU (fragmented, more frames than a tight
 * send queue takes), or two lan servers' UDP flows to one v10 host (the
 * second cannot have the one source socket of snat(ADDRESS, PORT)).
 */
const flowsStep = fc.record({
  kind: fc.constant('flows' as const),
  which: fc.constantFrom('big to lan', 'two onto one socket'),
  sport: fc.integer({ min: 1024, max: 65535 }),
  id: fc.integer({ min: 0x8000, max: 0xfffe }),
  size: fc.integer({ min: 600, max: 1400 }),
});
type FlowsStep = typeof flowsStep extends fc.Arbitrary<infer T> ? T : never;

function flowFrames(f: FlowsStep): { nic: number; frame: Uint8Array }[] {
  const udp = (src: number, dst: number, id: number, payload: number) =>
    ipv4Datagram({ src, dst, protocol: 17, ttl: 64, id, df: false, tos: 0 }, [...be16(f.sport), 0, 53, ...be16(8 + payload), 1, 0, ...new Array<number>(payload).fill(0x5a)]);
  if (f.which === 'big to lan') {
    const from = ip('10.10.0.5');
    return [{ nic: 1, frame: Uint8Array.from(frameOf({ to: 'appliance', from: neighbourMac(from), tags: [0x8100, 10] }, 1, 0x0800, udp(from, ip('10.30.0.5'), f.id, f.size))) }];
  }
  return [ip('10.30.0.5'), ip('10.30.0.9')].map((from, i) => ({
    nic: 2,
    frame: Uint8Array.from(frameOf({ to: 'appliance', from: neighbourMac(from), tags: [] }, 2, 0x0800, udp(from, ip('10.10.0.80'), f.id + i, 20))),
  }));
}

const isBroadcastMac = (f: Uint8Array): boolean => (f[0]! & 1) === 1;

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: frameStep },
  { weight: 3, arbitrary: replyStep },
  { weight: 1, arbitrary: connectStep },
  { weight: 1, arbitrary: flowsStep },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.constantFrom(10, 50, 200, 1000, 3000, 6000, 16_000, 61_000) }) },
);

const variant: fc.Arbitrary<Variant> = fc.record({ limit: fc.constantFrom(4, 16, 64), statefulTcp: fc.boolean(), lanMtu: fc.constantFrom(1500, 576, 68), tight: fc.boolean() });

// --- the run ------------------------------------------------------------------------

/** Runs a sequence on a fresh appliance; throws what the appliance threw. */
function run(v: Variant, neighboursAnswer: boolean, steps: readonly Step[]): Bench {
  const injected: Injected = noneInjected();
  const mtus = [1500, 1500, v.lanMtu];
  const bench = new Bench(v, frameCheck(injected, mtus), neighboursAnswer);
  play(bench, injected, steps);
  // Let every timer that the sequence armed run once more.
  bench.advance(61_000);
  return bench;
}

function play(bench: Bench, injected: Injected, steps: readonly Step[]): void {
  for (const s of steps) {
    if (s.kind === 'advance') {
      bench.advance(s.ms);
      continue;
    }
    if (s.kind === 'flows') {
      for (const { nic, frame } of flowFrames(s)) {
        recordInjected(frame, injected);
        bench.inject(nic, frame);
      }
      continue;
    }
    if (s.kind === 'connect') {
      connect(bench, s, injected);
      continue;
    }
    if (s.kind === 'reply') {
      const reply = replyFrame(bench, s);
      if (reply) {
        recordInjected(reply.frame, injected);
        bench.inject(reply.nic, reply.frame);
      }
      continue;
    }
    for (const f of s.frames) {
      const frame = Uint8Array.from(f);
      recordInjected(frame, injected);
      bench.inject(s.nic, frame);
    }
  }
}

function counterProblems(bench: Bench, v: Variant): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(bench.appliance.statistics())) {
    if (!Number.isSafeInteger(value) || value < 0) problems.push(`counter ${name} = ${value}`);
  }
  const stats = bench.appliance.statistics();
  // Every frame counted as sent left a NIC, and no other.
  if (stats['frames_tx'] !== bench.sentCount) problems.push(`frames_tx ${stats['frames_tx']}, but ${bench.sentCount} frames left the NICs`);
  // The Load_balancer's session_limit 2 and wait_queue_limit 4 hold.
  if (stats['lb.sessions_open']! > 2 || stats['lb.sessions_open']! > stats['lb.sessions_total']!) problems.push(`${stats['lb.sessions_open']} load-balancer sessions open`);
  if (stats['lb.waiting']! > 4) problems.push(`${stats['lb.waiting']} clients waiting`);
  if (stats['lb.nodes_up']! + stats['lb.nodes_down']! > 2) problems.push('more nodes up and down than the pool has');
  const entries = bench.appliance.conntrack!.size;
  if (entries > v.limit) problems.push(`${entries} conntrack entries, limit ${v.limit}`);
  return problems;
}

/** Kinds of frames the appliance sent, so a run that never reaches a check does not pass unnoticed. */
function tally(bench: Bench, into: Map<string, number>): void {
  const add = (kind: string) => into.set(kind, (into.get(kind) ?? 0) + 1);
  for (const [nic, f] of bench.sent) {
    const link = linkOf(f)!;
    if (link.etherType === 0x0806) add('ARP');
    if (link.etherType !== 0x0800) continue;
    const h = ipv4At(f, link.l3)!;
    if (link.tags === 1) add('VLAN-tagged');
    if (h.fragment) add('fragment');
    if (h.id >= 0x8000 && !OWN.has(h.src)) add('forwarded');
    if (h.id >= 0x8000 && nic === 0 && h.src === WAN) add('forwarded, masqueraded');
    if (h.id >= 0x8000 && h.dst === ip('10.10.0.80')) add('forwarded, dnat');
    if (h.protocol === 1 && ICMP_ERRORS.has(f[link.l3 + h.ihl]!) && OWN.has(h.src)) add('ICMP error');
    if (h.protocol === 6 && h.src === V20) add('load balancer to a node');
    if (h.protocol === 17 && h.dst === ip('10.30.0.9')) add('syslog');
  }
}

/** Kinds of run, by the counter that says the run got there. */
const REACHED: readonly [string, string][] = [
  ['load-balancer session', 'lb.sessions_total'],
  ['conntrack full', 'conntrack.evicted'],
  ['reassembled', 'reassembly.reassembled'],
  ['snat conflict', 'nat.conflicts'],
  ['send queue full', 'nic2.sendq_dropped'],
];

describe('a booted appliance under hostile frames', () => {
  it('never throws, sends only well-formed and explainable frames, and keeps its counters and conntrack sane', () => {
    const seen = new Map<string, number>();
    fc.assert(
      fc.property(variant, fc.boolean(), fc.array(step, { minLength: 1, maxLength: 40, size: 'max' }), (v, neighboursAnswer, steps) => {
        const bench = run(v, neighboursAnswer, steps);
        expect(bench.violations).toEqual([]);
        expect(counterProblems(bench, v)).toEqual([]);
        tally(bench, seen);
        // Counters that show a limit or a failure path was reached.
        const stats = bench.appliance.statistics();
        for (const [kind, counter] of REACHED) if (stats[counter]! > 0) seen.set(kind, (seen.get(kind) ?? 0) + 1);
        bench.appliance.stop();
      }),
      // No shrinking in CI (a shrink replays hundreds of sequences); NACL_FUZZ_SHRINK=1 with the printed seed and path shrinks.
      { numRuns: RUNS, seed: SEED, endOnFailure: !process.env.NACL_FUZZ_SHRINK, ...(process.env.NACL_FUZZ_PATH ? { path: process.env.NACL_FUZZ_PATH } : {}) },
    );
    if (process.env.NACL_FUZZ_RUNS) console.log(Object.fromEntries(seen));
    const kinds = ['ARP', 'VLAN-tagged', 'fragment', 'forwarded', 'forwarded, masqueraded', 'forwarded, dnat', 'ICMP error', 'load balancer to a node', 'syslog', ...REACHED.map(([kind]) => kind)];
    expect(kinds.filter((k) => !seen.has(k))).toEqual([]);
  }, Math.max(60_000, RUNS * 50));

  it('keeps its heap bounded over a long run of hostile frames on one appliance', () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const v: Variant = { limit: 64, statefulTcp: true, lanMtu: 576, tight: false };
    // Identifications are forgotten each round, so the checks stay as strict as in a short run.
    let injected: Injected = noneInjected();
    const bench = new Bench(v, (frame, nic) => frameCheck(injected, [1500, 1500, v.lanMtu])(frame, nic), true);
    const rounds = fc.sample(fc.array(step, { minLength: 200, maxLength: 200 }), { numRuns: 30, seed: SEED });
    const heap: number[] = [];
    for (const steps of rounds) {
      injected = noneInjected();
      play(bench, injected, steps);
      bench.advance(61_000);
      expect(bench.violations).toEqual([]);
      gc();
      heap.push(process.memoryUsage().heapUsed);
    }
    expect(counterProblems(bench, v)).toEqual([]);
    // After the tables have filled (a third of the way), the heap stays flat: a few MB of noise, not growth per round.
    const settled = heap[10]!;
    if (process.env.NACL_FUZZ_RUNS) console.log(`heap by round: ${heap.map((h) => Math.round(h / 1e6)).join(' ')} MB`);
    const growth = Math.max(...heap.slice(10)) - settled;
    expect(growth, `heap by round: ${heap.map((h) => Math.round(h / 1e6)).join(' ')} MB`).toBeLessThan(16e6);
    bench.appliance.stop();
  });

  it('sends something: the checks above see real traffic, not an appliance that stays silent', () => {
    // A fixed, valid exchange through every feature the property test relies on reaching.
    const v: Variant = { limit: 16, statefulTcp: false, lanMtu: 576, tight: false };
    const echoToWan = ipv4Datagram({ src: HOSTS[0]!, dst: WAN, protocol: 1, ttl: 64, id: 0x9000, df: false, tos: 0 }, [8, 0, 0, 0, 0, 1, 0, 1]);
    const bench = run(v, true, [
      { kind: 'frames', nic: 0, frames: [frameOf({ to: 'appliance', from: neighbourMac(HOSTS[0]!), tags: [] }, 0, 0x0800, echoToWan)] },
      { kind: 'frames', nic: 1, frames: [frameOf({ to: 'appliance', from: neighbourMac(ip('10.10.0.5')), tags: [0x8100, 10] }, 1, 0x0800, ipv4Datagram({ src: ip('10.10.0.5'), dst: ip('10.30.0.5'), protocol: 17, ttl: 64, id: 0x9001, df: false, tos: 0 }, [...be16(4000), ...be16(53), ...be16(8 + 700), 1, 0, ...new Array<number>(700).fill(7)]))] },
    ]);
    expect(bench.violations).toEqual([]);
    expect(bench.appliance.statistics()['wan.icmp_echo_replies']).toBe(1);
    // 728 bytes through a 576-byte MTU: two fragments on lan, with the sender's identification.
    const toServer = bench.sent.filter(([nic, f]) => nic === 2 && linkOf(f)?.etherType === 0x0800 && ipv4At(f, 14)?.dst === ip('10.30.0.5'));
    expect(toServer.map(([, f]) => [ipv4At(f, 14)!.id, ipv4At(f, 14)!.total])).toEqual([
      [0x9001, 572],
      [0x9001, 176],
    ]);
  });
});
