import type { ChainName, IrIface } from '../compiler/ir.ts';
import { ArpCache } from './arp-cache.ts';
import type { TcpStack } from './tcp/stack.ts';
import type { Datagram } from './messages.ts';
import type { DhcpClient } from './dhcp-client.ts';
import type { Nic } from './drivers/nic.ts';

/*
 * One IPv4 stack: an Iface of the config on a NIC, untagged or on a VLAN
 * (runtime-semantics.md 1, 5, 6). It holds the interface's state; the packet
 * path that uses it lives in appliance.ts, in one visible place.
 */

// One shape for every step (fn is null for the built-in NAT steps), so the
// chain loop's property loads stay monomorphic.
export type ChainStep =
  /** A run of user functions: `segment` is its index in the generated module's `run`. */
  | { readonly kind: 'functions'; readonly names: readonly string[]; readonly segment: number }
  | { readonly kind: 'masquerade' | 'demasquerade' | 'dnat-translate' | 'snat-translate'; readonly names: readonly string[]; readonly segment: -1 };

/** A physical NIC and the stacks on it. */
export interface NicPort {
  readonly nic: Nic;
  readonly label: string;
  untagged: Inet | null;
  readonly vlans: Map<number, Inet>;
  /** Frames to send when the current batch is done (one send per batch). */
  pending: Uint8Array[];
  /** The other of the two arrays `pending` alternates between (see Appliance.flush). */
  spare: Uint8Array[];
  /** `send_queue_limit`: frames waiting to be sent at once; 0 = unlimited (6.3). */
  sendQueueLimit: number;
  /** `buffer_limit`: frames taken from one receive batch; 0 = unlimited (6.3). */
  bufferLimit: number;
  readonly counters: { sendq_dropped: number; rx_buffer_dropped: number };
}

export interface InetCounters {
  packets_rx: number;
  packets_tx: number;
  packets_dropped: number;
  prerouting_dropped: number;
  input_dropped: number;
  output_dropped: number;
  postrouting_dropped: number;
  arp_requests_rx: number;
  arp_replies_rx: number;
  arp_requests_tx: number;
  arp_replies_tx: number;
  icmp_echo_replies: number;
  icmp_errors_tx: number;
  /** Drops by reason. */
  readonly drops: Record<string, number>;
}

export class Inet {
  address = 0;
  netmask = 0;
  prefix = 0;
  broadcast = 0;
  gateway = 0;
  dns = 0;
  readonly arp: ArpCache<Datagram>;
  readonly chains: Record<ChainName, ChainStep[]> = { prerouting: [], input: [], output: [], postrouting: [] };
  readonly counters: InetCounters = {
    packets_rx: 0,
    packets_tx: 0,
    packets_dropped: 0,
    prerouting_dropped: 0,
    input_dropped: 0,
    output_dropped: 0,
    postrouting_dropped: 0,
    arp_requests_rx: 0,
    arp_replies_rx: 0,
    arp_requests_tx: 0,
    arp_replies_tx: 0,
    icmp_echo_replies: 0,
    icmp_errors_tx: 0,
    drops: {},
  };
  /** The DHCP client of a `dhcp` or `dhcp-with-fallback` Iface. */
  dhcp: DhcpClient | null = null;
  /** Local UDP endpoints by port. */
  readonly udp = new Map<number, (payload: Uint8Array, src: number, sport: number) => void>();
  /** TCP endpoints on this Iface's address (the load balancer's); null when nothing here speaks TCP. */
  tcp: TcpStack | null = null;

  // Copied out of the IR once: the data path reads these per packet, and a
  // field of this class is cheaper than a walk into the IR's JSON objects.
  readonly name: string;
  readonly vlan: number | null;
  readonly mac: Uint8Array;
  /** The Iface routes what is not for it (`forwarding`, with a Gateway). */
  readonly forwards: boolean;
  /** Conntrack follows this Iface's packets. */
  readonly tracks: boolean;

  constructor(
    readonly ir: IrIface,
    readonly port: NicPort,
    readonly mtu: number,
  ) {
    this.arp = new ArpCache({ address: 0, size: (d) => d.end - d.l3 });
    this.name = ir.name;
    this.vlan = ir.vlan;
    this.mac = port.nic.mac;
    this.forwards = ir.forwarding;
    this.tracks = ir.conntrack;
  }

  /** Applies an address (static config, DHCP result or fallback). */
  configure(address: number, prefix: number, gateway: number, dns: number): void {
    this.address = address >>> 0;
    this.prefix = prefix;
    this.netmask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
    this.broadcast = (address | ~this.netmask) >>> 0;
    this.gateway = gateway >>> 0;
    this.dns = dns >>> 0;
    this.arp.setAddress(this.address);
  }

  /** Is this destination the interface itself (1.2 step 5)? */
  isForMe(dst: number): boolean {
    if (this.address === 0) return dst === 0xffffffff && this.dhcp !== null; // DHCP replies before the lease
    return dst === this.address || dst === this.broadcast || dst === 0xffffffff;
  }

  onSubnet(addr: number): boolean {
    return this.address !== 0 && ((addr ^ this.address) & this.netmask) === 0;
  }

  drop(reason: string): void {
    this.counters.packets_dropped++;
    this.counters.drops[reason] = (this.counters.drops[reason] ?? 0) + 1;
  }
}
