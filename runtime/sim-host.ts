import type { Ir, IrIface } from '../compiler/ir.ts';
import { Appliance, type ApplianceEnv, type Clock } from './appliance.ts';
import type { Nic } from './drivers/nic.ts';
import { echoRequest, tcpSyn, udpDatagram } from './messages.ts';
import { fillIpv4Checksum, formatIpv4Address, ipv4Dst, ipv4Protocol, ipv4Src, ipv4Ttl, parseIpv4Address } from './wire/ipv4.ts';

/*
 * A simulated host for tests and the demo: the appliance core with one
 * Iface and no rules (address, ARP, ICMP, UDP), plus what a person would
 * do from a shell - ping, send UDP, open a TCP connection - and a record of
 * everything that arrived.
 */

export interface Received {
  readonly protocol: number;
  readonly src: string;
  readonly dst: string;
  readonly ttl: number;
  readonly sport: number;
  readonly dport: number;
  /** ICMP type, or the TCP flags byte. */
  readonly detail: number;
  readonly payload: Uint8Array;
}

export interface SimHostOptions {
  readonly name: string;
  readonly address: string;
  readonly prefix: number;
  readonly gateway?: string;
  readonly nic: Nic;
  readonly clock: Clock;
  readonly log?: (line: string) => void;
  /** Tag everything with this 802.1Q VLAN id (a host on a trunk port). */
  readonly vlan?: number;
}

function hostIr(o: SimHostOptions): Ir {
  const netmask = formatIpv4Address(o.prefix === 0 ? 0 : (0xffffffff << (32 - o.prefix)) >>> 0);
  const iface: IrIface = {
    name: o.name,
    nic: { index: 0 },
    vlan: o.vlan ?? null,
    config: 'static',
    address: o.address,
    netmask,
    prefixLength: o.prefix,
    gateway: o.gateway ?? null,
    dns: null,
    masquerade: false,
    sendQueueLimit: null,
    bufferLimit: null,
    chains: { prerouting: [], input: [], output: [], postrouting: [] },
    forwarding: false,
    conntrack: false,
    source: { file: 'sim', line: 1, column: 1, endLine: 1, endColumn: 1 },
  };
  return {
    irVersion: 1,
    source: { file: 'sim', sha256: '0'.repeat(64) },
    nics: [{ index: 0, mac: null, sendQueueLimit: null, bufferLimit: null }],
    ifaces: [iface],
    gateway: null,
    conntrack: { enabled: false, limit: 0, reserve: 0, statefulTcp: false, timeouts: { unconfirmed: { tcp: 10, udp: 10, icmp: 10 }, confirmed: { tcp: 30, udp: 10, icmp: 10 }, established: { tcp: 300, udp: 10, icmp: 10 } } },
    nat: { enabled: false },
    loadBalancer: null,
    syslog: null,
    timers: [],
    functions: [],
    rules: {},
  };
}

export class SimHost {
  readonly received: Received[] = [];
  readonly appliance: Appliance;
  readonly address: number;
  private ident = 0x4e00;

  constructor(readonly options: SimHostOptions) {
    const env: ApplianceEnv = {
      nics: new Map([['0', options.nic]]),
      clock: options.clock,
      log: options.log ?? (() => {}),
      random: Math.random,
    };
    this.address = parseIpv4Address(options.address)!;
    this.appliance = new Appliance(hostIr(options), env, {
      deliver: (_iface, bytes, l3, l4, end) => {
        const protocol = ipv4Protocol(bytes, l3);
        const ported = protocol === 6 || protocol === 17;
        this.received.push({
          protocol,
          src: formatIpv4Address(ipv4Src(bytes, l3)),
          dst: formatIpv4Address(ipv4Dst(bytes, l3)),
          ttl: ipv4Ttl(bytes, l3),
          sport: ported ? (bytes[l4]! << 8) | bytes[l4 + 1]! : 0,
          dport: ported ? (bytes[l4 + 2]! << 8) | bytes[l4 + 3]! : 0,
          detail: protocol === 1 ? bytes[l4]! : protocol === 6 ? bytes[l4 + 13]! : 0,
          payload: bytes.slice(protocol === 17 ? l4 + 8 : protocol === 6 ? l4 + (bytes[l4 + 12]! >>> 4) * 4 : l4 + 8, end),
        });
        // Echo requests are still answered by the core; everything else is consumed here.
        return !(protocol === 1 && bytes[l4] === 8);
      },
    });
    this.appliance.setFunctions({ functions: {}, rules: [], segments: [], run: () => 1, hits: new Int32Array(0) });
    this.appliance.start();
  }

  get name(): string {
    return this.options.name;
  }

  private send(d: { bytes: Uint8Array; l3: number; end: number }): void {
    this.appliance.output(this.appliance.ifaces.get(this.options.name)!, d);
  }

  ping(dst: string, options: { ttl?: number; seq?: number; payload?: Uint8Array } = {}): void {
    this.send(echoRequest(this.address, parseIpv4Address(dst)!, this.ident, options.seq ?? 1, options.payload ?? new TextEncoder().encode('nacl-sim'), options.ttl ?? 64));
  }

  udp(dst: string, dport: number, payload: Uint8Array | string, sport = 40000, ttl = 64, dontFragment = false): void {
    const bytes = typeof payload === 'string' ? new TextEncoder().encode(payload) : payload;
    const d = udpDatagram(this.address, sport, parseIpv4Address(dst)!, dport, bytes, ttl);
    if (dontFragment) {
      d.bytes[d.l3 + 6]! |= 0x40;
      fillIpv4Checksum(d.bytes, d.l3);
    }
    this.send(d);
  }

  /** A TCP SYN (the first step of a connection); the answer shows up in `received`. */
  syn(dst: string, dport: number, sport = 40000): void {
    this.send(tcpSyn(this.address, sport, parseIpv4Address(dst)!, dport));
  }

  clear(): void {
    this.received.length = 0;
  }
}
