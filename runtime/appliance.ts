import type { FunctionState, GeneratedModule, GeneratedRuntime, PacketView } from '../compiler/codegen/runtime-api.ts';
import { functionRuns, segmentKey } from '../compiler/codegen/segments.ts';
import { CT_STATE, type Ir, type IrChainStep, type IrIface, type IrLoadBalancer } from '../compiler/ir.ts';
import { LoadBalancer } from '../appliances/load-balancer.ts';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, PortAllocator } from './port-allocator.ts';
import { cTimeText } from './local-time.ts';
import { DEFAULT_SYSLOG, syslogConsoleLine, syslogDatagramText, type SyslogSettings } from './syslog-message.ts';
import { TcpStack } from './tcp/stack.ts';
import { Conntrack } from './conntrack.ts';
import { DhcpClient, type DhcpAction } from './dhcp-client.ts';
import type { Nic } from './drivers/nic.ts';
import { Inet, type ChainStep, type NicPort } from './inet.ts';
import { arpPacket, BROADCAST_MAC, echoReply, HEADROOM, icmpError, tcpDatagram, tcpReset, udpDatagram, ZERO_MAC, type Datagram } from './messages.ts';
import { Nat } from './nat.ts';
import { OneShotTimer } from './one-shot-timer.ts';
import { loadDatagram, newPacket, type Packet } from './packet.ts';
import { Reassembler } from './reassembly.ts';
import { forwardTtl, icmpErrorAllowed, nextHop, RoutingTable, timeExceededAllowed, TtlVerdict } from './router.ts';
import type { Addresses, Tracer } from './trace-events.ts';
import { ETHERNET_HEADER_LEN, EtherType, ethEtherType, ethIsMulticast, macEquals, setEthDst, setEthEtherType, setEthSrc } from './wire/ethernet.ts';
import { Icmpv4TimeExceeded, Icmpv4Type, Icmpv4Unreachable } from './wire/icmpv4.ts';
import { DHCP_CLIENT_PORT, DHCP_SERVER_PORT } from './wire/dhcp.ts';
import { l4ChecksumValid } from './wire/l4-checksum.ts';
import {
  formatIpv4Address,
  isIpv4Multicast,
  ipv4DontFrag,
  ipv4Dst,
  ipv4FragOffset,
  ipv4IsFragment,
  ipv4Protocol,
  ipv4Src,
  ipv4Ttl,
  IpProtocol,
  parseIpv4Address,
} from './wire/ipv4.ts';
import { setVlanEtherType, setVlanVid, VLAN_HEADER_LEN, vlanEtherType, vlanVid, isVlanTpid } from './wire/vlan.ts';
import { fragmentDatagram } from './fragment.ts';
import { utf8 } from './utf8.ts';

/*
 * The appliance: the stacks, connection tracker, NAT engine and router an IR
 * describes, wired to NICs, with the packet path of runtime-semantics.md 1.2
 * and 1.3 (decisions of section 14) in one place:
 *
 *   receive: Ethernet/VLAN demux -> IPv4 checks -> conntrack -> prerouting ->
 *     for me: reassembly -> confirm -> input -> local delivery
 *     else:   TTL -> forward chain -> route -> (egress) confirm -> postrouting -> ARP -> send
 *   local output: conntrack -> output -> (router when forwarding) -> confirm -> postrouting -> send
 *
 * Time is read once per batch from the injected clock. Frames are sent once
 * per batch, per NIC. The appliance gets only what its environment hands it.
 */

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(ms: number, fn: () => void): unknown;
  clearTimer(handle: unknown): void;
  /** Wall-clock time, for timestamps in logs. */
  wallTime(): number;
}

export interface ApplianceEnv {
  /** NICs by Iface index, or by MAC string for MAC-indexed Ifaces. */
  readonly nics: ReadonlyMap<string, Nic>;
  readonly clock: Clock;
  /** Console output: log(...) actions, timers, events. */
  log(line: string): void;
  random(): number;
  /** Host facts for the Timer `memory`, `cpu` and `stack-sampling` items. */
  readonly host?: ApplianceHost;
  /** The operator's syslog facility and framing (boot flags); facility user, RFC 5424 when absent. */
  readonly syslog?: SyslogSettings;
  /** ms without progress after which a load-balancer session is reset (a boot flag, see LoadBalancerHost); none when absent. */
  readonly lbIdleTimeout?: number;
}

export interface ApplianceHost {
  memory(): { used: number; total: number };
  cpuMicros(): number;
  /**
   * Starts sampling the stack, for a Timer that lists `stack-sampling`;
   * then each call of `stackSamples` gives the samples since the previous
   * one. Absent, or false, where the host cannot sample.
   */
  startStackSampling?(): boolean;
  stackSamples?(): { total: number; functions: readonly { name: string; count: number }[] };
}

export interface ApplianceOptions {
  readonly tracer?: Tracer;
  /**
   * Local delivery hook (simulated hosts): sees every datagram that passed
   * the input chain; returning true means it was consumed.
   */
  readonly deliver?: (iface: string, bytes: Uint8Array, l3: number, l4: number, end: number) => boolean;
  /** `ct=` of a packet SPEC: what rules see instead of the real state (trace/test). */
  ctOverride?: number | undefined;
}

const CT_NAMES = ['invalid', 'new', 'established', 'related'];

/**
 * Drop reasons for EtherTypes worth naming; every other one counts as
 * `ethertype-other`, so a sender cycling through EtherTypes cannot add
 * 65536 counters to the statistics and /metrics.
 */
const DROPPED_ETHERTYPES = new Map<number, string>([0x86dd, 0x88a8, 0x9100, 0x88cc, 0x8847, 0x8863, 0x8864].map((t) => [t, `ethertype-${t.toString(16)}`]));

/** The key of a NIC in ApplianceEnv.nics for an Iface. */
export function nicKey(nic: IrIface['nic']): string {
  return 'index' in nic ? String(nic.index) : nic.mac;
}

export class Appliance {
  readonly ifaces = new Map<string, Inet>();
  /** The same Ifaces, for loops on the packet path (a Map's iterator is an allocation). */
  private readonly inets: Inet[] = [];
  readonly ports: NicPort[] = [];
  readonly conntrack: Conntrack | null;
  readonly nat: Nat | null;
  readonly routes: RoutingTable | null;
  readonly counters = {
    frames_rx: 0,
    frames_tx: 0,
    router_packets_fwd: 0,
    router_packets_dropped: 0,
    router_bytes_fwd: 0,
    no_conntrack_drops: 0,
    /** syslog(...) messages with a Syslog server but no address to send from yet (DHCP pending). */
    syslog_unsent: 0,
    drops: {} as Record<string, number>,
  };
  /** Times each rule decided a packet, by rule index of the generated module. */
  ruleHits: Int32Array = new Int32Array(0);
  readonly rt: GeneratedRuntime;
  private functions: GeneratedModule | null = null;
  private forwardChain: ChainStep[] = [];
  /** The egress Iface of each route, by index into `routes.routes`: no name lookup per packet. */
  private readonly routeEgress: readonly (Inet | undefined)[];
  private readonly reassembler = new Reassembler();
  private readonly state: FunctionState = { rule: -1, step: 0 };
  private readonly pkt: Packet = newPacket();
  /** Whole milliseconds (see clockNow). */
  private now = 0;
  private current: Packet = this.pkt;
  private readonly timers: unknown[] = [];
  /** The soonest TCP or load-balancer deadline (armTcpDeadline). */
  private readonly tcpDeadline: OneShotTimer;
  /** The soonest ARP retry (armArpRetry). */
  private readonly arpRetry: OneShotTimer;
  /** After stop(): frames still arriving while the drivers close must not arm the one-shot timers again. */
  private stopped = false;
  private icmpTokens = 100;
  private icmpRefill = 0;
  private inBatch = false;
  /** The TCP stacks of Ifaces that terminate TCP (the load balancer's), which hold their ACKs during a receive batch. */
  private readonly tcpStacks: TcpStack[] = [];
  /** The tracer, if any; every trace call is guarded so nothing is built for it otherwise. */
  private readonly tracer: Tracer | undefined;
  /** Work that must wait until the current packet is done (syslog datagrams). */
  private readonly deferred: (() => void)[] = [];
  private lb: LoadBalancer | null = null;

  constructor(
    readonly ir: Ir,
    private readonly env: ApplianceEnv,
    private readonly options: ApplianceOptions = {},
  ) {
    this.tracer = options.tracer;
    this.tcpDeadline = new OneShotTimer(env.clock, () => this.tcpDeadlineDue());
    this.arpRetry = new OneShotTimer(env.clock, () => this.arpRetryDue());
    this.conntrack = ir.conntrack.enabled
      ? new Conntrack({ timeouts: ir.conntrack.timeouts, limit: ir.conntrack.limit, reserve: ir.conntrack.reserve, statefulTcp: ir.conntrack.statefulTcp })
      : null;
    this.nat = this.conntrack && ir.nat.enabled ? new Nat(this.conntrack, { random: env.random }) : null;
    this.routes = ir.gateway
      ? new RoutingTable(
          ir.gateway.routes.map((r) => ({
            name: r.name,
            net: parseIpv4Address(r.net)!,
            netmask: parseIpv4Address(r.netmask)!,
            nexthop: r.nexthop ? parseIpv4Address(r.nexthop)! : 0,
            iface: r.iface,
            cost: r.cost,
          })),
        )
      : null;
    const conntrack = this.conntrack;
    const self = this;
    this.rt = {
      logEnabled: true,
      ctState(ct: number): number {
        if (self.options.ctOverride !== undefined) return self.options.ctOverride;
        return conntrack ? conntrack.packetState(ct, self.current) : CT_STATE.new;
      },
      log: (_s, text) => this.env.log(text.endsWith('\n') ? text.slice(0, -1) : text),
      syslog: (_s, severity, text) => this.syslog(severity, text),
      nat: (kind, p, ct, address, port) => {
        if (!this.nat) return true;
        const before = this.options.tracer ? addresses(p as Packet) : null;
        const a = address < 0 ? null : address;
        const q = port < 0 ? null : port;
        const translated = kind === 'dnat' ? this.nat.dnat(p as Packet, ct, a, q) : this.nat.snat(p as Packet, ct, a, q);
        if (before) this.trace({ kind: 'builtin', iface: this.tracedChain.iface, hook: this.tracedChain.hook, step: kind, before, after: addresses(p as Packet) });
        return translated;
      },
    };
    this.buildPorts();
    this.routeEgress = this.routes ? this.routes.routes.map((r) => this.ifaces.get(r.iface)) : [];
  }

  /** Rule ids of the generated module, indexed as FunctionState.rule. */
  get ruleIds(): readonly string[] {
    return this.functions?.rules ?? [];
  }

  /** Installs the generated functions (loaded by the tender with `this.rt`). */
  setFunctions(module: GeneratedModule): void {
    this.functions = module;
    this.ruleHits = module.hits;
    const segments = new Map(module.segments.map((names, k) => [segmentKey(names), k]));
    const segment = (names: readonly string[]): ChainStep => {
      const k = segments.get(segmentKey(names));
      if (k === undefined) throw new Error(`generated code has no segment for ${names.join(', ')}`);
      return { kind: 'functions', names, segment: k };
    };
    // A traced run calls each function on its own, so the trace can show each verdict.
    const traced = this.options.tracer !== undefined;
    const steps = (chain: readonly IrChainStep[]): ChainStep[] => {
      const out: ChainStep[] = [];
      const runs = functionRuns(chain);
      let r = 0;
      for (let i = 0; i < chain.length; i++) {
        const s = chain[i]!;
        if (s.kind !== 'function') {
          out.push({ kind: s.kind, names: [s.kind], segment: -1 });
          continue;
        }
        const run = runs[r++]!;
        if (traced) for (const name of run) out.push(segment([name]));
        else out.push(segment(run));
        i += run.length - 1;
      }
      return out;
    };
    for (const iface of this.ir.ifaces) {
      const inet = this.ifaces.get(iface.name)!;
      for (const chain of ['prerouting', 'input', 'output', 'postrouting'] as const) inet.chains[chain] = steps(iface.chains[chain]);
    }
    this.forwardChain = steps((this.ir.gateway?.forward ?? []).map((name) => ({ kind: 'function', function: name })));
  }

  private buildPorts(): void {
    const byKey = new Map<string, NicPort>();
    for (const iface of this.ir.ifaces) {
      const key = nicKey(iface.nic);
      let port = byKey.get(key);
      if (!port) {
        const nic = this.env.nics.get(key);
        if (!nic) throw new Error(`no NIC for Iface ${iface.name} (index ${key})`);
        const limits = this.ir.nics.find((n) => (n.index !== null ? String(n.index) : n.mac) === key);
        port = {
          nic,
          label: key,
          untagged: null,
          vlans: new Map(),
          pending: [],
          spare: [],
          // Upstream's driver defaults are 4096 each; 0 means unlimited (runtime-semantics.md 6.3).
          sendQueueLimit: limits?.sendQueueLimit ?? 4096,
          bufferLimit: limits?.bufferLimit ?? 4096,
          counters: { sendq_dropped: 0, rx_buffer_dropped: 0 },
        };
        byKey.set(key, port);
        this.ports.push(port);
      }
      const inet = new Inet(iface, port, iface.vlan === null ? port.nic.mtu : port.nic.mtu);
      if (iface.vlan === null) port.untagged = inet;
      else port.vlans.set(iface.vlan, inet);
      this.ifaces.set(iface.name, inet);
      this.inets.push(inet);
    }
  }

  /** Attaches to the NICs, applies addresses, starts timers. */
  start(): void {
    this.stopped = false;
    this.now = this.clockNow();
    for (const port of this.ports) port.nic.onReceive((frames) => this.receiveBatch(port, frames));
    for (const inet of this.ifaces.values()) this.configureIface(inet);
    if (this.ir.loadBalancer) this.startLoadBalancer(this.ir.loadBalancer);
    this.every(1000, () => this.tick());
    this.startTimers();
    this.flush();
  }

  private startLoadBalancer(ir: IrLoadBalancer): void {
    const clients = this.tcpStack(this.ifaces.get(ir.clients.iface)!);
    const servers = this.tcpStack(this.ifaces.get(ir.servers.iface)!);
    const lb = new LoadBalancer(ir, {
      clients,
      servers,
      now: () => this.clockNow(),
      log: (line) => this.env.log(line),
      ...(this.env.lbIdleTimeout ? { idleTimeout: this.env.lbIdleTimeout } : {}),
    });
    this.lb = lb;
    lb.start();
    const idle = this.env.lbIdleTimeout ? `, idle timeout ${this.env.lbIdleTimeout / 1000} s` : '';
    this.env.log(`[ NaCl LB ] ${ir.name}: clients on ${ir.clients.iface} port ${ir.clients.port}, ${ir.servers.pool.length} nodes via ${ir.servers.iface} (${ir.servers.algorithm})${idle}`);
  }

  /** The Iface's TCP endpoints; its ephemeral ports are shared with masquerade on the same address. */
  private tcpStack(inet: Inet): TcpStack {
    if (!inet.tcp) {
      const ports = this.nat && inet.address !== 0 ? this.nat.portsFor(inet.address) : new PortAllocator(this.env.random);
      inet.tcp = new TcpStack({
        address: () => inet.address,
        send: (remote, segment) => {
          if (inet.address !== 0) this.output(inet, tcpDatagram(inet.address, remote, segment));
        },
        now: () => this.clockNow(),
        ports,
        random: this.env.random,
      });
      this.tcpStacks.push(inet.tcp);
    }
    return inet.tcp;
  }

  // Whole milliseconds: an integer travels through calls as a small integer,
  // where a fractional time would be boxed as a heap number at every call
  // that is not inlined - an allocation per packet.
  private clockNow(): number {
    return Math.floor(this.env.clock.now());
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) this.env.clock.clearTimer(t);
    this.timers.length = 0;
    this.tcpDeadline.clear();
    this.arpRetry.clear();
  }

  /** A periodic timer: it re-arms into its own slot, so `timers` holds one handle per live timer. */
  private every(ms: number, fn: () => void, slot = this.timers.length): void {
    const run = () => {
      this.timers[slot] = this.env.clock.setTimer(ms, run);
      this.now = this.clockNow();
      fn();
      this.flush();
    };
    this.timers[slot] = this.env.clock.setTimer(ms, run);
  }

  private configureIface(inet: Inet): void {
    const ir = inet.ir;
    if (ir.config !== 'static') return this.startDhcp(inet);
    this.configureStatic(inet);
  }

  private configureStatic(inet: Inet): void {
    const ir = inet.ir;
    const ip = (s: string | null) => (s ? parseIpv4Address(s)! : 0);
    if (!ir.address) return;
    inet.configure(ip(ir.address), ir.prefixLength ?? 32, ip(ir.gateway), ip(ir.dns) || ip(ir.gateway));
    // Gratuitous ARP: announce the address so neighbours update their caches.
    this.sendArp(inet, 'request', inet.address, ZERO_MAC, BROADCAST_MAC);
  }

  // --- DHCP (6.1, 6.2) -----------------------------------------------------------

  private startDhcp(inet: Inet): void {
    const client = new DhcpClient({ mac: inet.mac, xid: () => Math.floor(this.env.random() * 0x100000000) });
    inet.dhcp = client;
    inet.udp.set(DHCP_CLIENT_PORT, (payload) => this.dhcpActions(inet, client.receive(payload, this.now)));
    this.dhcpActions(inet, client.start(this.now));
  }

  private dhcpActions(inet: Inet, actions: readonly DhcpAction[]): void {
    const name = inet.name;
    for (const a of actions) {
      switch (a.kind) {
        case 'send':
          this.output(inet, udpDatagram(a.src, DHCP_CLIENT_PORT, a.dst, DHCP_SERVER_PORT, a.message));
          break;
        case 'configure': {
          const l = a.lease;
          const changed = inet.address !== l.address;
          inet.configure(l.address, l.prefix, l.gateway, l.dns);
          const lease = l.leaseTime === 0xffffffff ? 'forever' : `${l.leaseTime} s`;
          this.env.log(`[ ${name} ] DHCP: ${formatIpv4Address(l.address)}/${l.prefix}, gateway ${formatIpv4Address(l.gateway)}, dns ${formatIpv4Address(l.dns)}, lease ${lease} from ${formatIpv4Address(l.server)}`);
          if (changed) this.sendArp(inet, 'request', inet.address, ZERO_MAC, BROADCAST_MAC);
          break;
        }
        case 'unconfigure':
          this.env.log(`[ ${name} ] DHCP: the lease on ${formatIpv4Address(inet.address)} ended; negotiating again`);
          inet.configure(0, 0, 0, 0);
          break;
        case 'timeout':
          if (inet.ir.config === 'dhcp-with-fallback' && inet.ir.address) {
            this.env.log(`[ ${name} ] DHCP request timed out. Applying the fallback configuration${a.retrying ? ' while still asking for a lease' : ''}.`);
            this.configureStatic(inet);
          } else {
            this.env.log(`[ ${name} ] DHCP request timed out. ${a.retrying ? 'Still asking, less often.' : 'Nothing to do.'}`);
          }
          break;
      }
    }
  }

  /** Static addresses are up once start() ran; DHCP ones come later and are not waited for. */
  get ready(): boolean {
    return this.inets.every((i) => i.ir.config !== 'static' || !i.ir.address || i.address !== 0);
  }

  // --- receive -----------------------------------------------------------------

  receiveBatch(port: NicPort, frames: readonly Uint8Array[]): void {
    this.now = this.clockNow();
    this.inBatch = true;
    for (let i = 0; i < this.tcpStacks.length; i++) this.tcpStacks[i]!.hold();
    try {
      // buffer_limit: the frames beyond it find no receive buffer and are dropped (counted).
      const take = port.bufferLimit > 0 ? Math.min(frames.length, port.bufferLimit) : frames.length;
      port.counters.rx_buffer_dropped += frames.length - take;
      for (let i = 0; i < take; i++) this.receiveFrame(port, frames[i]!);
    } finally {
      // One ACK per connection for the whole batch, after the load balancer has moved what arrived.
      for (let i = 0; i < this.tcpStacks.length; i++) this.tcpStacks[i]!.release();
      this.inBatch = false;
      this.flush();
    }
  }

  private receiveFrame(port: NicPort, frame: Uint8Array): void {
    this.counters.frames_rx++;
    if (frame.length < ETHERNET_HEADER_LEN) return this.dropFrame('truncated-frame');
    // The NIC filter is trusted upstream; a software switch floods, so check (Linux PACKET_OTHERHOST).
    if (!macEquals(frame, 0, port.nic.mac) && !ethIsMulticast(frame, 0)) return this.dropFrame('other-host');
    let etherType = ethEtherType(frame, 0);
    let l3 = ETHERNET_HEADER_LEN;
    let inet: Inet | null | undefined = port.untagged;
    // Only an 802.1Q tag selects a VLAN; an 802.1ad or 0x9100 outer tag is a
    // provider's, not ours, and drops below as an unknown EtherType (section 14).
    if (etherType === EtherType.Vlan) {
      if (frame.length < l3 + VLAN_HEADER_LEN) return this.dropFrame('truncated-frame');
      inet = port.vlans.get(vlanVid(frame, l3));
      etherType = vlanEtherType(frame, l3);
      l3 += VLAN_HEADER_LEN;
      // Q-in-Q crashed upstream; we drop and count (section 14).
      if (isVlanTpid(etherType)) return this.dropFrame('stacked-vlan');
      if (!inet) return this.dropFrame('unknown-vlan');
    }
    if (!inet) return this.dropFrame('no-untagged-iface');
    if (etherType === EtherType.Arp) return this.arpInput(inet, frame, l3);
    if (etherType !== EtherType.Ipv4) return this.dropFrame(DROPPED_ETHERTYPES.get(etherType) ?? 'ethertype-other');
    const error = loadDatagram(this.pkt, frame, l3, frame.length, true);
    if (error) {
      // Received, then dropped: packets_dropped never exceeds packets_rx.
      inet.counters.packets_rx++;
      inet.drop(`ip-${error}`);
      return;
    }
    this.groupFrame = ethIsMulticast(frame, 0);
    this.ipInput(inet, this.pkt);
    this.groupFrame = false;
  }

  private dropFrame(reason: string): void {
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }

  /** An IPv4 datagram arrived on `inet` (1.2 steps 2-10); `tracked` when it loops back already tracked. */
  ipInput(inet: Inet, arrived: Packet, tracked?: number): void {
    inet.counters.packets_rx++;
    const src = ipv4Src(arrived.bytes, arrived.l3);
    if (isIpv4Multicast(src) || src === 0xffffffff || (src === inet.broadcast && inet.address !== 0)) return inet.drop('bad-source');
    let pkt: Packet | null = arrived;
    // Fragments are reassembled here, once, as Linux's nf_defrag does: where
    // connections are tracked (a fragment has no ports to track, and every
    // NaCl function drops what has no conntrack entry; forwarding fragments
    // the datagram again for the egress MTU), and for the appliance itself
    // (1.2 step 7; an Iface that tracks nothing has no chain to run first).
    if (
      tracked === undefined &&
      ipv4IsFragment(arrived.bytes, arrived.l3) &&
      ((inet.tracks && this.conntrack) || inet.isForMe(ipv4Dst(arrived.bytes, arrived.l3)))
    ) {
      pkt = this.reassembler.add(arrived, this.now);
      if (!pkt) return;
    }
    const { bytes, l3 } = pkt;
    if (!l4Intact(pkt)) return inet.drop('truncated-l4');
    const handle = tracked ?? this.track(inet, pkt);
    if (this.options.tracer) this.traceReceive(inet, pkt, handle);
    if (!this.runChain(inet, 'prerouting', inet.chains.prerouting, pkt, handle)) {
      inet.counters.prerouting_dropped++;
      return;
    }
    const dst = ipv4Dst(bytes, l3);
    if (inet.isForMe(dst)) return this.localInput(inet, pkt, handle);
    if (inet.forwards && this.routes) return this.forward(inet, pkt, handle, false);
    inet.drop('not-for-me');
    if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: 'not addressed to this Iface, and it does not forward', rule: null });
  }

  private track(inet: Inet, pkt: Packet): number {
    if (!this.conntrack || !inet.tracks) return -1;
    if (this.options.ctOverride === CT_STATE.invalid) return -1;
    return this.conntrack.track(pkt, this.now, this.options.ctOverride !== undefined);
  }

  /** Runs one hook's steps; false = dropped. */
  private runChain(inet: Inet, hook: 'prerouting' | 'input' | 'output' | 'postrouting' | 'forward', steps: readonly ChainStep[], pkt: Packet, handle: number): boolean {
    if (steps.length === 0) return true;
    const tracer = this.options.tracer;
    if (tracer) {
      tracer({ kind: 'hook', iface: inet.name, hook });
      this.tracedChain.iface = inet.name;
      this.tracedChain.hook = hook;
    }
    this.current = pkt;
    for (let i = 0; i < steps.length; i++) {
      const step = steps[i]!;
      if (step.segment >= 0) {
        const state = this.state;
        state.rule = -1;
        state.step = 0;
        const verdict = this.functions!.run(step.segment, pkt, state, handle);
        const rule = state.rule;
        const name = step.names[state.step]!;
        if (rule >= 0) this.ruleHits[rule]!++;
        if (tracer) {
          const id = rule >= 0 ? this.functions!.rules[rule]! : null;
          tracer({ kind: 'function', iface: inet.name, hook, name, verdict: verdict === 1 ? 'accept' : 'drop', rule: id });
        }
        if (verdict === 0) {
          if (rule === -2) {
            this.counters.no_conntrack_drops++;
            inet.drop('no-conntrack-entry');
            if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: 'no conntrack entry (untracked protocol, or table full): every NaCl function drops it', rule: null });
          } else {
            inet.drop(`${hook}-rule`);
            if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: `dropped by ${name} on ${hook}`, rule: rule >= 0 ? this.functions!.rules[rule]! : null });
          }
          return false;
        }
        continue;
      }
      if (handle < 0 || !this.nat) continue;
      const before = tracer ? addresses(pkt) : null;
      let ok = true;
      switch (step.kind) {
        case 'masquerade':
          ok = this.nat.masquerade(pkt, handle, inet.address);
          break;
        case 'demasquerade':
          ok = this.nat.demasquerade(pkt, handle);
          break;
        case 'dnat-translate':
          ok = this.nat.dnatTranslate(pkt, handle);
          break;
        case 'snat-translate':
          ok = this.nat.snatTranslate(pkt, handle);
          break;
      }
      if (tracer && before) {
        const after = addresses(pkt);
        if (JSON.stringify(before) !== JSON.stringify(after)) tracer({ kind: 'builtin', iface: inet.name, hook, step: step.kind, before, after });
      }
      if (!ok) {
        inet.drop(`${step.kind}-failed`);
        if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: `${step.kind} failed (ports exhausted or a tuple clash)`, rule: null });
        return false;
      }
    }
    return true;
  }

  // --- local delivery ----------------------------------------------------------

  /** A whole datagram for the appliance (fragments were reassembled in ipInput). */
  private localInput(inet: Inet, pkt: Packet, handle: number): void {
    if (handle >= 0) this.conntrack!.confirm(handle, this.now);
    if (!this.runChain(inet, 'input', inet.chains.input, pkt, handle)) {
      inet.counters.input_dropped++;
      return;
    }
    const { bytes, l3, l4, end } = pkt;
    // Forwarded packets are not checked (the receiver does that); local ones are (Linux does; upstream skipped UDP).
    if (!l4ChecksumValid(bytes, l3, l4, end)) {
      inet.drop('bad-l4-checksum');
      if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: 'bad TCP/UDP/ICMP checksum', rule: null });
      return;
    }
    if (this.options.deliver?.(inet.name, bytes, l3, l4, end)) return;
    const protocol = ipv4Protocol(bytes, l3);
    const dst = ipv4Dst(bytes, l3);
    const broadcast = dst !== inet.address;
    if (protocol === IpProtocol.Icmp) {
      if (bytes[l4] === Icmpv4Type.EchoRequest && inet.address !== 0) {
        inet.counters.icmp_echo_replies++;
        if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: 'ICMP echo request: the appliance replies' });
        return this.output(inet, echoReply(bytes, l3, end, inet.address));
      }
      if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: `ICMP type ${bytes[l4]} delivered to the appliance` });
      return;
    }
    if (protocol === IpProtocol.Udp) {
      const dport = (bytes[l4 + 2]! << 8) | bytes[l4 + 3]!;
      const endpoint = inet.udp.get(dport);
      if (endpoint) {
        if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: `UDP port ${dport}: delivered to a local endpoint` });
        return endpoint(bytes.slice(l4 + 8, end), ipv4Src(bytes, l3), (bytes[l4]! << 8) | bytes[l4 + 1]!);
      }
      if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: `UDP port ${dport}: no local endpoint (ICMP port unreachable)` });
      if (!broadcast) this.icmpErrorTo(inet, pkt, Icmpv4Type.DestUnreachable, Icmpv4Unreachable.Port);
      return;
    }
    if (protocol === IpProtocol.Tcp) {
      const src = ipv4Src(bytes, l3);
      if (!broadcast && inet.tcp && inet.tcp.takes(src, (bytes[l4]! << 8) | bytes[l4 + 1]!, (bytes[l4 + 2]! << 8) | bytes[l4 + 3]!, bytes[l4 + 13]!)) {
        // Traced before the stack runs: what it sends in answer comes after the delivery.
        if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: 'TCP: delivered to a local connection or listener' });
        inet.tcp.receive(src, bytes, l4, end);
        return;
      }
      if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: 'TCP: no listener on this port (RST)' });
      if (!broadcast && !(bytes[l4 + 13]! & 0x04)) this.output(inet, tcpReset(bytes, l3, end));
      return;
    }
    if (this.tracer) this.trace({ kind: 'deliver', iface: inet.name, what: `IP protocol ${protocol}: not handled (ICMP protocol unreachable)` });
    if (!broadcast) this.icmpErrorTo(inet, pkt, Icmpv4Type.DestUnreachable, Icmpv4Unreachable.Protocol);
  }

  // --- forwarding ----------------------------------------------------------------

  /** The chain being run, for trace events raised inside it (a Nat function's dnat/snat). */
  private readonly tracedChain = { iface: '', hook: '' };

  /** Whether the frame being received was sent to a group (broadcast or multicast) MAC. */
  private groupFrame = false;

  /** The router (4.3): TTL, forward chain, route, egress. */
  private forward(ingress: Inet, pkt: Packet, handle: number, locallySourced: boolean): void {
    // A router passes on neither multicast (it routes none) nor what reached
    // it in a link-layer broadcast (RFC 1812 5.3.4; Linux ip_forward drops
    // both). Silently: no ICMP error may answer either.
    let dst = ipv4Dst(pkt.bytes, pkt.l3);
    const multicast = isIpv4Multicast(dst);
    if (!locallySourced && (multicast || (this.groupFrame && !this.isApplianceAddress(dst)))) {
      ingress.drop(multicast ? 'multicast-not-routed' : 'link-broadcast-not-routed');
      if (this.tracer) this.trace({ kind: 'drop', iface: ingress.name, reason: 'not routed: a multicast destination, or a frame sent to a group MAC', rule: null });
      return;
    }
    const ttlBefore = ipv4Ttl(pkt.bytes, pkt.l3);
    const ttl = forwardTtl(pkt, locallySourced);
    // RFC 1812 5.3.1: TTL expires only on packets the appliance would pass on;
    // one addressed to another of its Ifaces is received there, even at TTL 1.
    if (ttl !== TtlVerdict.Forward && !this.isApplianceAddress(ipv4Dst(pkt.bytes, pkt.l3))) {
      this.counters.router_packets_dropped++;
      ingress.drop('ttl-expired');
      if (this.tracer) this.trace({ kind: 'drop', iface: ingress.name, reason: `TTL ${ttlBefore} expires here`, rule: null });
      if (ttl === TtlVerdict.TimeExceeded && timeExceededAllowed(pkt, this.ir.gateway?.sendTimeExceeded ?? true)) {
        this.icmpErrorTo(ingress, pkt, Icmpv4Type.TimeExceeded, Icmpv4TimeExceeded.TtlExpired);
      }
      return;
    }
    if (this.options.tracer && !locallySourced) this.trace({ kind: 'ttl', iface: ingress.name, before: ttlBefore, after: ipv4Ttl(pkt.bytes, pkt.l3) });
    if (!this.runChain(ingress, 'forward', this.forwardChain, pkt, handle)) {
      this.counters.router_packets_dropped++;
      return;
    }
    // The forward chain may have rewritten it.
    dst = ipv4Dst(pkt.bytes, pkt.l3);
    const index = this.routes!.lookupIndex(dst);
    const route = index < 0 ? null : this.routes!.routes[index]!;
    const egress = index < 0 ? undefined : this.routeEgress[index];
    if (!route || !egress) {
      this.counters.router_packets_dropped++;
      ingress.drop('no-route');
      if (this.tracer) this.trace({ kind: 'route', destination: formatIpv4Address(dst), route: null, egress: null, nexthop: null });
      if (this.tracer) this.trace({ kind: 'drop', iface: ingress.name, reason: `no route to ${formatIpv4Address(dst)}`, rule: null });
      if (!locallySourced) this.icmpErrorTo(ingress, pkt, Icmpv4Type.DestUnreachable, Icmpv4Unreachable.Net);
      return;
    }
    const hop = nextHop(dst, route, egress);
    if (this.tracer) this.trace({
      kind: 'route',
      destination: formatIpv4Address(dst),
      route: `${route.name ?? 'route'} ${formatIpv4Address(route.net)}/${Math.clz32(~route.netmask >>> 0)}${route.nexthop ? ` via ${formatIpv4Address(route.nexthop)}` : ''} cost ${route.cost}`,
      egress: egress.name,
      nexthop: hop ? formatIpv4Address(hop) : null,
    });
    this.counters.router_packets_fwd++;
    this.counters.router_bytes_fwd += pkt.end - pkt.l4;
    this.ship(egress, pkt, handle, hop, ingress);
  }

  private isApplianceAddress(address: number): boolean {
    for (let i = 0; i < this.inets.length; i++) if (this.inets[i]!.address === address && address !== 0) return true;
    return false;
  }

  /** Egress (1.3 steps 6-9): confirm, postrouting, MTU, next hop, ARP. */
  private ship(egress: Inet, pkt: Packet, handle: number, hop: number, ingress: Inet): void {
    if (ipv4Dst(pkt.bytes, pkt.l3) === egress.address && egress.address !== 0) {
      // Addressed to another Iface of this appliance: loop it into that Iface (1.3), same conntrack entry.
      return this.ipInput(egress, pkt, handle);
    }
    if (handle >= 0) this.conntrack!.confirm(handle, this.now);
    if (!this.runChain(egress, 'postrouting', egress.chains.postrouting, pkt, handle)) {
      egress.counters.postrouting_dropped++;
      return;
    }
    if (hop === 0) {
      egress.drop('no-next-hop');
      if (this.tracer) this.trace({ kind: 'drop', iface: egress.name, reason: `no next hop: ${egress.name} has no gateway`, rule: null });
      return;
    }
    const length = pkt.end - pkt.l3;
    if (length > egress.mtu) {
      if (ipv4DontFrag(pkt.bytes, pkt.l3)) {
        egress.drop('too-big-df');
        if (this.tracer) this.trace({ kind: 'drop', iface: egress.name, reason: `${length} bytes exceed the MTU ${egress.mtu} and DF is set (ICMP fragmentation needed)`, rule: null });
        return this.icmpErrorTo(ingress, pkt, Icmpv4Type.DestUnreachable, Icmpv4Unreachable.FragNeeded, egress.mtu);
      }
      for (const piece of fragmentDatagram(pkt.bytes, pkt.l3, pkt.end, egress.mtu, HEADROOM)) this.transmit(egress, piece.bytes, piece.l3, piece.end, hop);
      return;
    }
    this.transmit(egress, pkt.bytes, pkt.l3, pkt.end, hop);
  }

  // --- output ----------------------------------------------------------------------

  /** A datagram the appliance originates (1.3). */
  output(inet: Inet, d: Datagram): void {
    const pkt = newPacket();
    if (loadDatagram(pkt, d.bytes, d.l3, d.end, false)) return;
    const handle = this.track(inet, pkt);
    if (!this.runChain(inet, 'output', inet.chains.output, pkt, handle)) {
      inet.counters.output_dropped++;
      return;
    }
    // A reply of ours to a flow whose source NAT changed (a port forward to this appliance given a new
    // source port on a clash) goes back to the original source, as prerouting's reverse step does for
    // forwarded replies - before the route lookup, which needs the real destination.
    if (handle >= 0 && this.nat && !this.nat.dnatTranslate(pkt, handle)) {
      inet.counters.output_dropped++;
      inet.drop('dnat-translate-failed');
      return;
    }
    const dst = ipv4Dst(pkt.bytes, pkt.l3);
    // The limited broadcast stays on its link (RFC 1812 5.3.5.1): DHCP before there is an address.
    if (inet.forwards && this.routes && dst !== 0xffffffff) return this.forward(inet, pkt, handle, true);
    const hop = inet.onSubnet(dst) || dst === 0xffffffff ? dst : inet.gateway;
    this.ship(inet, pkt, handle, hop, inet);
  }

  /** ICMP errors are rate-limited: a token bucket of 100, refilled at 100/s. */
  private icmpErrorTo(inet: Inet, pkt: Packet, type: number, code: number, extra = 0): void {
    if (!icmpErrorAllowed(pkt)) return;
    const refill = Math.floor((this.now - this.icmpRefill) / 10);
    if (refill > 0) {
      this.icmpTokens = Math.min(100, this.icmpTokens + refill);
      this.icmpRefill = this.now;
    }
    if (this.icmpTokens <= 0 || inet.address === 0) return inet.drop('icmp-rate-limited');
    this.icmpTokens--;
    inet.counters.icmp_errors_tx++;
    if (this.tracer) this.trace({ kind: 'icmp', iface: inet.name, what: `ICMP type ${type} code ${code} to ${formatIpv4Address(ipv4Src(pkt.bytes, pkt.l3))}` });
    this.output(inet, icmpError(type, code, pkt.bytes, pkt.l3, inet.address, extra));
  }

  // --- link layer --------------------------------------------------------------------

  private transmit(inet: Inet, bytes: Uint8Array, l3: number, end: number, hop: number): void {
    const dst = ipv4Dst(bytes, l3);
    if (this.options.tracer) this.trace({ kind: 'transmit', iface: inet.name, nexthop: formatIpv4Address(hop), packet: addressesOf(bytes, l3) });
    const mac = dst === 0xffffffff || dst === inet.broadcast ? BROADCAST_MAC : inet.arp.lookup(hop, this.now);
    if (mac) return this.emit(inet, bytes, l3, end, mac, EtherType.Ipv4);
    // Waiting for ARP: keep a copy (the frame buffer belongs to the driver).
    const copy = new Uint8Array(HEADROOM + end - l3);
    copy.set(bytes.subarray(l3, end), HEADROOM);
    this.arpActions(inet, inet.arp.enqueue(hop, { bytes: copy, l3: HEADROOM, end: HEADROOM + end - l3 }, this.now));
  }

  /**
   * Puts a link header in front of `l3` and queues the frame. In the common
   * case (same header size as the frame it arrived in) the header is written
   * in place and the driver's own frame is sent back out: no allocation.
   */
  private emit(inet: Inet, bytes: Uint8Array, l3: number, end: number, dstMac: Uint8Array, etherType: number): void {
    const header = inet.vlan === null ? ETHERNET_HEADER_LEN : ETHERNET_HEADER_LEN + VLAN_HEADER_LEN;
    let b = bytes;
    let o = l3 - header;
    let frame: Uint8Array;
    if (o >= 0) {
      // The frame ends where the datagram does: what a sender put past the IP
      // total length (padding, or a frame far larger than the link's MTU) is
      // not passed on. The driver's own frame is reused when nothing trails.
      frame = o === 0 && end === bytes.length ? bytes : bytes.subarray(o, end);
    } else {
      // An untagged frame leaving on a VLAN: the tag needs room the buffer lacks.
      b = new Uint8Array(header + end - l3);
      b.set(bytes.subarray(l3, end), header);
      o = 0;
      frame = b;
    }
    setEthDst(b, o, dstMac);
    setEthSrc(b, o, inet.mac);
    if (inet.vlan !== null) {
      setEthEtherType(b, o, EtherType.Vlan);
      setVlanVid(b, o + ETHERNET_HEADER_LEN, inet.vlan);
      setVlanEtherType(b, o + ETHERNET_HEADER_LEN, etherType);
    } else {
      setEthEtherType(b, o, etherType);
    }
    const port = inet.port;
    if (port.sendQueueLimit > 0 && port.pending.length >= port.sendQueueLimit) {
      // send_queue_limit: tail drop, counted (6.3).
      port.counters.sendq_dropped++;
      inet.drop('send-queue-full');
      return;
    }
    if (etherType === EtherType.Ipv4) inet.counters.packets_tx++;
    this.counters.frames_tx++;
    port.pending.push(frame);
    if (!this.inBatch) this.flush();
  }

  /** Runs deferred sends, then sends every queued frame, one batch per NIC. */
  flush(): void {
    while (this.deferred.length > 0) this.deferred.shift()!();
    for (const port of this.ports) {
      const frames = port.pending;
      if (frames.length === 0) continue;
      // Two arrays in turn, emptied by popping: a fresh array per batch, or
      // `length = 0` (V8 frees the store and the next batch regrows it),
      // would allocate on every batch. Drivers never call back into the
      // appliance from send (nic.ts), so the array is not in use after it.
      port.pending = port.spare;
      port.spare = frames;
      port.nic.send(frames);
      while (frames.length > 0) frames.pop();
    }
    if (this.tcpStacks.length > 0) this.armTcpDeadline();
  }

  /**
   * Every TCP timer (retransmission, persist, TIME-WAIT, probes) and the load
   * balancer's (checks, waits) runs from one one-shot timer, armed for the
   * soonest deadline of them all and moved earlier when a sooner one comes:
   * a deadline is served within a millisecond or two, and an idle appliance
   * does not wake for nothing (a 50 ms tick did both worse). A deadline
   * moved later costs one early wake, after which the stacks know better.
   * Runs after every batch: a look at each stack's soonest and the
   * balancer's, never at the connections.
   */
  private armTcpDeadline(): void {
    if (this.stopped) return;
    let soonest = this.lb ? this.lb.nextDeadline() : Infinity;
    for (const stack of this.tcpStacks) if (stack.soonest < soonest) soonest = stack.soonest;
    this.tcpDeadline.armFor(soonest);
  }

  private tcpDeadlineDue(): void {
    this.now = this.clockNow();
    for (const stack of this.tcpStacks) stack.tick(this.now);
    this.lb?.tick(this.now);
    this.flush();
  }

  private arpInput(inet: Inet, frame: Uint8Array, l3: number): void {
    const op = (frame[l3 + 6]! << 8) | frame[l3 + 7]!;
    if (op === 1) inet.counters.arp_requests_rx++;
    else inet.counters.arp_replies_rx++;
    this.arpActions(inet, inet.arp.receive(frame, l3, frame.length, this.now));
  }

  private arpActions(inet: Inet, actions: ReturnType<Inet['arp']['tick']>): void {
    for (const a of actions) {
      switch (a.kind) {
        case 'request':
          this.sendArp(inet, 'request', a.ip, ZERO_MAC, BROADCAST_MAC);
          this.armArpRetry();
          break;
        case 'reply':
          this.sendArp(inet, 'reply', a.ip, a.mac, a.mac);
          break;
        case 'send':
          for (const d of a.packets) this.emit(inet, d.bytes, d.l3, d.end, a.mac, EtherType.Ipv4);
          break;
        case 'drop':
          for (let i = 0; i < a.packets.length; i++) inet.drop('arp-queue-full');
          break;
        case 'failed':
          for (const d of a.packets) {
            inet.drop('arp-failed');
            const p = newPacket();
            if (!loadDatagram(p, d.bytes, d.l3, d.end, false) && ipv4Src(d.bytes, d.l3) !== inet.address) {
              this.icmpErrorTo(inet, p, Icmpv4Type.DestUnreachable, Icmpv4Unreachable.Host);
            }
          }
          break;
      }
    }
  }

  /**
   * ARP retries are due 1 s after each request (as Linux's retrans_time);
   * the once-a-second tick alone would send them 1-2 s apart. One one-shot
   * timer, moved earlier when a sooner retry comes.
   */
  private armArpRetry(): void {
    if (this.stopped) return;
    let soonest = Infinity;
    for (const inet of this.ifaces.values()) soonest = Math.min(soonest, inet.arp.nextRetryAt);
    this.arpRetry.armFor(soonest);
  }

  private arpRetryDue(): void {
    this.now = this.clockNow();
    for (const inet of this.ifaces.values()) this.arpActions(inet, inet.arp.tick(this.now));
    // A next hop that answered or failed may have been what the timer was for: the others' retries still need it.
    this.armArpRetry();
    this.flush();
  }

  private sendArp(inet: Inet, op: 'request' | 'reply', targetIp: number, targetMac: Uint8Array, dstMac: Uint8Array): void {
    if (inet.address === 0) return;
    if (op === 'request') inet.counters.arp_requests_tx++;
    else inet.counters.arp_replies_tx++;
    const d = arpPacket(op, inet.mac, inet.address, targetMac, targetIp);
    this.emit(inet, d.bytes, d.l3, d.end, dstMac, EtherType.Arp);
  }

  // --- timers ------------------------------------------------------------------------

  private tick(): void {
    for (const inet of this.ifaces.values()) {
      this.arpActions(inet, inet.arp.tick(this.now));
      if (inet.dhcp) this.dhcpActions(inet, inet.dhcp.tick(this.now));
    }
    if (this.conntrack) this.conntrack.sweep(this.now);
    this.reassembler.sweep(this.now);
  }

  private startTimers(): void {
    if (this.ir.timers.some((t) => t.data.includes('stack-sampling'))) this.sampling = this.env.host?.startStackSampling?.() ?? false;
    for (const t of this.ir.timers) {
      const run = () => this.timerReport(t.data);
      const slot = this.timers.length;
      this.timers.push(
        this.env.clock.setTimer(1000, () => {
          run();
          this.every(t.interval * 1000, run, slot);
        }),
      );
    }
  }

  private cpuSample: { at: number; micros: number } | null = null;
  /** Whether the host samples the stack (a Timer lists `stack-sampling` and the host can). */
  private sampling = false;

  /** One Timer report (8.10; memory and cpu printed as the FIXes of 8.2 say). */
  timerReport(data: readonly string[]): void {
    for (const item of data) {
      switch (item) {
        case 'timestamp':
          this.env.log(`[ NaCl Timer Timestamp ] ${cTimeText(this.env.clock.wallTime())}`);
          break;
        case 'stats':
          this.env.log(`[ NaCl Timer Stats ] ${JSON.stringify(this.statistics())}`);
          break;
        case 'memory': {
          const m = this.env.host?.memory();
          this.env.log(m ? `[ NaCl Timer Memory ] Total memory: ${m.total} bytes, in use ${m.used} bytes (${((100 * m.used) / m.total).toFixed(1)}%)` : '[ NaCl Timer Memory ] not available');
          break;
        }
        case 'cpu': {
          const micros = this.env.host?.cpuMicros();
          const now = this.env.clock.now();
          if (micros === undefined || !this.cpuSample) this.env.log('[ NaCl Timer CPU ] CPU usage unavailable due to lack of samples');
          else {
            const usage = Math.min(100, (100 * (micros - this.cpuSample.micros)) / 1000 / Math.max(1, now - this.cpuSample.at));
            this.env.log(`[ NaCl Timer CPU ] Usage: ${usage.toFixed(1)}% Idle: ${(100 - usage).toFixed(1)}%`);
          }
          if (micros !== undefined) this.cpuSample = { at: now, micros };
          break;
        }
        case 'lb':
          if (this.lb) for (const line of this.lb.report()) this.env.log(`[ NaCl Timer LB ] ${line}`);
          break;
        case 'stack-sampling': {
          const samples = this.sampling ? this.env.host?.stackSamples?.() : undefined;
          if (!samples) {
            this.env.log('[ NaCl Timer Stack Sampling ] stack sampling is not available on this host');
            break;
          }
          this.env.log('[ NaCl Timer Stack Sampling ]');
          this.env.log(`Stack sampling - ${samples.functions.length} results (${samples.total} samples)`);
          for (const f of samples.functions.slice(0, 5)) this.env.log(`${((100 * f.count) / samples.total).toFixed(2).padStart(6)}%  ${f.count}: ${f.name}`);
          break;
        }
        case 'timers':
          this.env.log(`[ NaCl Timer Timers ] Active: ${this.timers.length} Existing: ${this.timers.length} Free: 0`);
          break;
      }
    }
  }

  // --- syslog --------------------------------------------------------------------------

  /** syslog(...): over UDP from the Iface on NIC 0, or to the console (8.1; PRI and framing as section 14 decides). */
  private syslog(severity: number, text: string): void {
    const settings = this.env.syslog ?? DEFAULT_SYSLOG;
    const sink = this.ir.syslog;
    if (!sink) {
      this.env.log(syslogConsoleLine(settings, severity, this.env.clock.wallTime(), text));
      return;
    }
    const from = this.inets.find((i) => i.ir.vlan === null && 'index' in i.ir.nic && i.ir.nic.index === 0) ?? this.inets[0];
    if (!from || from.address === 0) {
      this.counters.syslog_unsent++;
      return;
    }
    const payload = utf8(syslogDatagramText(settings, severity, this.env.clock.wallTime(), formatIpv4Address(from.address), text));
    const port = this.syslogSourcePort(from.address);
    // Sent after the packet that triggered it is done: the output path must not run inside a chain.
    this.deferred.push(() => this.output(from, udpDatagram(from.address, port, parseIpv4Address(sink.address)!, sink.port, payload)));
    if (!this.inBatch) this.flush();
  }

  /** The source port of syslog datagrams: one ephemeral port, as upstream's one socket, taken from the address's port table so masquerade never hands it out. */
  private syslogSource = { address: 0, port: 0, owned: false };
  private syslogSourcePort(address: number): number {
    const source = this.syslogSource;
    if (source.address === address) return source.port;
    // Only a port taken from the table goes back to it: the fallback below may be one a NATed flow holds.
    if (this.nat && source.owned) this.nat.portsFor(source.address).release(source.port);
    let port = this.nat ? this.nat.portsFor(address).allocate() : -1;
    const owned = port >= 0;
    if (!owned) port = EPHEMERAL_FIRST + Math.floor(this.env.random() * (EPHEMERAL_LAST - EPHEMERAL_FIRST + 1));
    this.syslogSource = { address, port, owned };
    return port;
  }

  // --- inspection -------------------------------------------------------------------

  statistics(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.counters)) if (typeof v === 'number') out[k] = v;
    for (const [k, v] of Object.entries(this.counters.drops)) out[`drop.${k}`] = v;
    for (const inet of this.ifaces.values()) {
      for (const [k, v] of Object.entries(inet.counters)) if (typeof v === 'number') out[`${inet.name}.${k}`] = v;
      for (const [k, v] of Object.entries(inet.counters.drops)) out[`${inet.name}.drop.${k}`] = v;
      if (inet.dhcp) for (const [k, v] of Object.entries(inet.dhcp.counters)) out[`${inet.name}.dhcp.${k}`] = v;
    }
    for (const port of this.ports) {
      out[`nic${port.label}.sendq_dropped`] = port.counters.sendq_dropped;
      out[`nic${port.label}.rx_buffer_dropped`] = port.counters.rx_buffer_dropped;
    }
    if (this.conntrack) for (const [k, v] of Object.entries(this.conntrack.counters)) out[`conntrack.${k}`] = v as number;
    if (this.nat) for (const [k, v] of Object.entries(this.nat.counters)) out[`nat.${k}`] = v as number;
    for (const [k, v] of Object.entries(this.reassembler.counters)) out[`reassembly.${k}`] = v;
    for (const inet of this.ifaces.values()) {
      if (!inet.tcp) continue;
      for (const [k, v] of Object.entries(inet.tcp.counters)) out[`${inet.name}.tcp.${k}`] = v;
      out[`${inet.name}.tcp.connections`] = inet.tcp.size;
      out[`${inet.name}.tcp.buffer_bytes`] = inet.tcp.bufferMemory;
    }
    if (this.lb) for (const [k, v] of Object.entries(this.lb.counters)) out[`lb.${k}`] = v;
    return out;
  }

  /**
   * Runs a datagram through the receive path of an Iface as if it had
   * arrived there (`nacl trace`, `nacl test`): no Ethernet, same hooks.
   */
  inject(ifaceName: string, datagram: Uint8Array, ctOverride?: number): boolean {
    const inet = this.ifaces.get(ifaceName);
    if (!inet) return false;
    this.now = this.clockNow();
    const bytes = new Uint8Array(HEADROOM + datagram.length);
    bytes.set(datagram, HEADROOM);
    const pkt = newPacket();
    const error = loadDatagram(pkt, bytes, HEADROOM, bytes.length, true);
    this.options.ctOverride = ctOverride;
    this.inBatch = true;
    try {
      if (error) {
        inet.drop(`ip-${error}`);
        if (this.tracer) this.trace({ kind: 'drop', iface: inet.name, reason: `malformed IPv4 packet (${error})`, rule: null });
        return true;
      }
      this.ipInput(inet, pkt);
    } finally {
      this.inBatch = false;
      this.options.ctOverride = undefined;
      this.flush();
    }
    return true;
  }

  private trace(event: Parameters<Tracer>[0]): void {
    this.tracer!(event);
  }

  private traceReceive(inet: Inet, pkt: Packet, handle: number): void {
    const state = this.options.ctOverride ?? (handle >= 0 ? this.conntrack!.packetState(handle, pkt) : CT_STATE.invalid);
    if (this.tracer) this.trace({ kind: 'receive', iface: inet.name, packet: addresses(pkt), ttl: ipv4Ttl(pkt.bytes, pkt.l3), ctState: CT_NAMES[state] ?? String(state) });
  }
}

/** Are the transport headers the chains may read present (TCP/UDP/ICMP, first fragments)? */
function l4Intact(pkt: Packet): boolean {
  const { bytes, l3, l4, end } = pkt;
  if (ipv4FragOffset(bytes, l3) !== 0) return true;
  switch (ipv4Protocol(bytes, l3)) {
    case IpProtocol.Tcp:
      return end - l4 >= 20 && (bytes[l4 + 12]! >>> 4) * 4 >= 20 && (bytes[l4 + 12]! >>> 4) * 4 <= end - l4;
    case IpProtocol.Udp:
      return end - l4 >= 8;
    case IpProtocol.Icmp:
      return end - l4 >= 8;
    default:
      return true;
  }
}

export function addresses(p: PacketView): Addresses {
  return addressesOf(p.bytes, p.l3);
}

function addressesOf(bytes: Uint8Array, l3: number): Addresses {
  const l4 = l3 + (bytes[l3]! & 15) * 4;
  const proto = bytes[l3 + 9]!;
  const ported = proto === 6 || proto === 17;
  return {
    src: formatIpv4Address(ipv4Src(bytes, l3)),
    sport: ported ? (bytes[l4]! << 8) | bytes[l4 + 1]! : 0,
    dst: formatIpv4Address(ipv4Dst(bytes, l3)),
    dport: ported ? (bytes[l4 + 2]! << 8) | bytes[l4 + 3]! : 0,
  };
}

