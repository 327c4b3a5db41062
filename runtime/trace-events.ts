/*
 * What the appliance reports about one packet when a tracer is attached
 * (`nacl trace`, `nacl test`, the demo). Plain data: the CLI renders it.
 */

export interface Addresses {
  readonly src: string;
  readonly sport: number;
  readonly dst: string;
  readonly dport: number;
}

export type TraceEvent =
  | { readonly kind: 'receive'; readonly iface: string; readonly packet: Addresses; readonly ttl: number; readonly ctState: string }
  | { readonly kind: 'hook'; readonly iface: string; readonly hook: string }
  | { readonly kind: 'function'; readonly iface: string; readonly hook: string; readonly name: string; readonly verdict: 'accept' | 'drop'; readonly rule: string | null }
  | { readonly kind: 'builtin'; readonly iface: string; readonly hook: string; readonly step: string; readonly before: Addresses; readonly after: Addresses }
  | { readonly kind: 'ttl'; readonly iface: string; readonly before: number; readonly after: number }
  | { readonly kind: 'route'; readonly destination: string; readonly route: string | null; readonly egress: string | null; readonly nexthop: string | null }
  | { readonly kind: 'deliver'; readonly iface: string; readonly what: string }
  | { readonly kind: 'transmit'; readonly iface: string; readonly nexthop: string; readonly packet: Addresses }
  | { readonly kind: 'icmp'; readonly iface: string; readonly what: string }
  | { readonly kind: 'drop'; readonly iface: string; readonly reason: string; readonly rule: string | null };

export type Tracer = (event: TraceEvent) => void;
