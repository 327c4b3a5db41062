/**
 * The routing table of a Gateway and the forwarding decisions around it
 * (runtime-semantics.md 4).
 *
 * Selection (section 14 decision): the most specific prefix wins; among
 * equal prefixes the lowest `cost`; then the order of the table. Upstream
 * ignored `cost` and took the first of equal prefixes (4.2). Tables are
 * small (a NaCl Gateway lists a handful of routes), so the routes are
 * sorted once into that order and a lookup is a linear scan over two typed
 * arrays that returns the first match: no allocation per packet.
 */

import type { IrRoute } from '../compiler/ir.ts';
import type { Packet } from './packet.ts';
import { isIcmpError } from './conntrack.ts';
import {
  decrementIpv4Ttl,
  IpProtocol,
  isIpv4Multicast,
  ipv4Dst,
  ipv4FragOffset,
  ipv4Protocol,
  ipv4Src,
  ipv4Ttl,
  parseIpv4Address,
} from './wire/ipv4.ts';

export interface Route {
  readonly name: string | null;
  /** Network address, host bits cleared. */
  readonly net: number;
  readonly netmask: number;
  /** 0 = none: the egress interface's gateway is used (4.3 step 4). */
  readonly nexthop: number;
  /** The egress interface's name. */
  readonly iface: string;
  readonly cost: number;
}

/** A route as the config states it; `net` may have host bits set (they are ignored). */
export interface RouteSpec {
  readonly name?: string | null;
  readonly net: number;
  readonly netmask: number;
  readonly nexthop?: number;
  readonly iface: string;
  readonly cost?: number;
}

/** NaCl's default cost (`NaCl:type_processors/gateway.py`, 4.1). */
export const DEFAULT_ROUTE_COST = 1;

/** Up to this many routes, a scan beats hashing per distinct netmask. */
const LINEAR_ROUTES = 16;

export class RoutingTable {
  /** In selection order: netmask descending, cost ascending, table order. */
  readonly routes: readonly Route[];
  readonly #nets: Uint32Array;
  readonly #masks: Uint32Array;
  /**
   * For a large table: its distinct netmasks, most specific first, and per
   * netmask the first route (in selection order) of each network, keyed by
   * the network as a signed int32 (a small integer: no allocation per
   * lookup). A lookup costs one Map probe per distinct netmask, not one
   * comparison per route; the answer is the linear scan's.
   */
  readonly #distinctMasks: Int32Array | null = null;
  readonly #byNet: Map<number, number>[] = [];

  constructor(specs: readonly RouteSpec[]) {
    const routes = specs.map((spec, order) => ({
      order,
      route: {
        name: spec.name ?? null,
        // A net with host bits set would never equal `dst & mask` upstream
        // (the route silently never matched); we match it as its network.
        net: (spec.net & spec.netmask) >>> 0,
        netmask: spec.netmask >>> 0,
        nexthop: (spec.nexthop ?? 0) >>> 0,
        iface: spec.iface,
        cost: spec.cost ?? DEFAULT_ROUTE_COST,
      },
    }));
    // Upstream compares netmasks numerically (4.2): with contiguous masks
    // that is the prefix length.
    routes.sort((a, b) => b.route.netmask - a.route.netmask || a.route.cost - b.route.cost || a.order - b.order);
    this.routes = routes.map((entry) => entry.route);
    this.#nets = Uint32Array.from(this.routes, (route) => route.net);
    this.#masks = Uint32Array.from(this.routes, (route) => route.netmask);
    if (this.routes.length > LINEAR_ROUTES) {
      const masks: number[] = [];
      this.routes.forEach((route, i) => {
        if (masks[masks.length - 1] !== route.netmask) {
          masks.push(route.netmask);
          this.#byNet.push(new Map());
        }
        const byNet = this.#byNet[this.#byNet.length - 1]!;
        if (!byNet.has(route.net | 0)) byNet.set(route.net | 0, i);
      });
      this.#distinctMasks = Int32Array.from(masks, (m) => m | 0);
    }
  }

  /** The routes of a Gateway's IR; throws on an address the compiler should have rejected. */
  static fromIr(routes: readonly IrRoute[]): RoutingTable {
    return new RoutingTable(
      routes.map((route) => ({
        name: route.name,
        net: irAddress(route.net),
        netmask: irAddress(route.netmask),
        nexthop: route.nexthop === null ? 0 : irAddress(route.nexthop),
        iface: route.iface,
        cost: route.cost,
      })),
    );
  }

  /** Index into `routes` of the route for `dst`, or -1: no route, drop (4.2). */
  lookupIndex(dst: number): number {
    const distinct = this.#distinctMasks;
    if (distinct !== null) {
      for (let k = 0; k < distinct.length; k++) {
        const i = this.#byNet[k]!.get(dst & distinct[k]!);
        if (i !== undefined) return i;
      }
      return -1;
    }
    const nets = this.#nets;
    const masks = this.#masks;
    for (let i = 0; i < nets.length; i++) {
      if (((dst & masks[i]!) >>> 0) === nets[i]) return i;
    }
    return -1;
  }

  lookup(dst: number): Route | null {
    const index = this.lookupIndex(dst);
    return index < 0 ? null : this.routes[index]!;
  }
}

function irAddress(text: string): number {
  const addr = parseIpv4Address(text);
  if (addr === undefined) throw new Error(`invalid IPv4 address in IR route: ${text}`);
  return addr;
}

// --- next hop ------------------------------------------------------------------

/** What next-hop selection needs to know about the egress interface. 0 = not configured. */
export interface EgressInterface {
  readonly address: number;
  readonly netmask: number;
  readonly gateway: number;
}

/**
 * Where to send a packet for `dst` out of `egress` (4.3 step 4, 1.3 step
 * 9): the destination itself when it is on the egress subnet, else the
 * route's next hop, else the interface's gateway; 0 means none (drop). An
 * interface without an address (DHCP still pending) has no subnet.
 */
export function nextHop(dst: number, route: Route | null, egress: EgressInterface): number {
  if (egress.address !== 0 && ((dst ^ egress.address) & egress.netmask) === 0) return dst >>> 0;
  if (route !== null && route.nexthop !== 0) return route.nexthop;
  return egress.gateway >>> 0;
}

// --- TTL -----------------------------------------------------------------------

export const TtlVerdict = {
  /** TTL decremented (unless locally sourced); forward it. */
  Forward: 0,
  /** Must not be forwarded: drop, and send ICMP Time Exceeded if allowed (`timeExceededAllowed`). */
  TimeExceeded: 1,
  /** A locally sourced packet with TTL 0: dropped silently (upstream `ship`, TTL0). */
  Drop: 2,
} as const;
export type TtlVerdict = (typeof TtlVerdict)[keyof typeof TtlVerdict];

/**
 * True when a packet arriving with this TTL may not be forwarded: RFC 1812
 * 5.3.1 - a router that would decrement the TTL to 0 discards the packet
 * and sends Time Exceeded. Upstream tested TTL == 0 before decrementing, so
 * TTL 1 packets vanished silently and the hop was invisible to traceroute
 * (4.3 FIX).
 */
export function ttlExpired(ttl: number): boolean {
  return ttl <= 1;
}

/**
 * The TTL step of forwarding (4.3 steps 1 and 2): a packet from elsewhere
 * with TTL <= 1 is not forwarded; otherwise its TTL is decremented with an
 * incremental checksum update. A locally sourced packet (source = the
 * ingress interface's address) keeps its TTL.
 */
export function forwardTtl(pkt: Packet, locallySourced: boolean): TtlVerdict {
  const ttl = ipv4Ttl(pkt.bytes, pkt.l3);
  if (locallySourced) return ttl === 0 ? TtlVerdict.Drop : TtlVerdict.Forward;
  if (ttlExpired(ttl)) return TtlVerdict.TimeExceeded;
  decrementIpv4Ttl(pkt.bytes, pkt.l3);
  return TtlVerdict.Forward;
}

function isMulticastOrBroadcast(addr: number): boolean {
  return isIpv4Multicast(addr) || addr >>> 0 === 0xffffffff;
}

/**
 * May a Time Exceeded be sent for this packet? `send_time_exceeded` must
 * be on (the runtime default, 4.1) and RFC 1812 4.3.2.7 must allow an ICMP
 * error: not for a multicast or broadcast destination, an unspecified,
 * multicast or broadcast source, a non-first fragment, or an ICMP error.
 */
export function timeExceededAllowed(pkt: Packet, sendTimeExceeded: boolean): boolean {
  return sendTimeExceeded && icmpErrorAllowed(pkt);
}

/**
 * May any ICMP error be sent about this packet (RFC 1812 4.3.2.7, RFC 1122
 * 3.2.2)? Not about an ICMP error, a non-first fragment, a packet to a
 * multicast or broadcast address, or from an address that names no host.
 */
export function icmpErrorAllowed(pkt: Packet): boolean {
  const { bytes, l3, l4, end } = pkt;
  const src = ipv4Src(bytes, l3);
  if (isMulticastOrBroadcast(ipv4Dst(bytes, l3)) || src === 0 || isMulticastOrBroadcast(src)) return false;
  if (ipv4FragOffset(bytes, l3) !== 0) return false;
  return !(ipv4Protocol(bytes, l3) === IpProtocol.Icmp && end > l4 && isIcmpError(bytes[l4]!));
}
