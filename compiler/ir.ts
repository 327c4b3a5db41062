/*
 * The IR: plain JSON describing one appliance, the only thing codegen and
 * the runtime read (architecture.md). schemas/ir.schema.json describes it
 * completely. Addresses are dotted-quad strings (readable, diffable); the
 * numeric forms live in expressions, where they are compared.
 */

export const IR_VERSION = 1;

export type Protocol = 'ip' | 'tcp' | 'udp' | 'icmp';
export type ChainName = 'prerouting' | 'input' | 'output' | 'postrouting';
export const CHAIN_NAMES: readonly ChainName[] = ['prerouting', 'input', 'output', 'postrouting'];

export interface Ir {
  readonly irVersion: typeof IR_VERSION;
  readonly source: { readonly file: string; readonly sha256: string };
  readonly nics: readonly IrNic[];
  readonly ifaces: readonly IrIface[];
  readonly gateway: IrGateway | null;
  readonly conntrack: IrConntrack;
  readonly nat: { readonly enabled: boolean };
  readonly loadBalancer: IrLoadBalancer | null;
  readonly syslog: IrSyslog | null;
  readonly timers: readonly IrTimer[];
  readonly functions: readonly IrFunction[];
  /** Rule id -> where the rule is written. */
  readonly rules: Readonly<Record<string, IrRuleSource>>;
}

/** A physical NIC the appliance needs, by number or by MAC (from the Ifaces' `index`). */
export interface IrNic {
  readonly index: number | null;
  readonly mac: string | null;
  readonly sendQueueLimit: number | null;
  readonly bufferLimit: number | null;
}

export type IrChainStep =
  | { readonly kind: 'function'; readonly function: string }
  /** Built-in steps appended after the user's functions (nacl-language.md 8.3). */
  | { readonly kind: 'masquerade' | 'demasquerade' | 'dnat-translate' | 'snat-translate' };

export interface IrIface {
  readonly name: string;
  readonly nic: { readonly index: number } | { readonly mac: string };
  readonly vlan: number | null;
  readonly config: 'static' | 'dhcp' | 'dhcp-with-fallback';
  readonly address: string | null;
  readonly netmask: string | null;
  readonly prefixLength: number | null;
  readonly gateway: string | null;
  readonly dns: string | null;
  readonly masquerade: boolean;
  readonly sendQueueLimit: number | null;
  readonly bufferLimit: number | null;
  readonly chains: Readonly<Record<ChainName, readonly IrChainStep[]>>;
  /** Named by a Gateway route: routes packets that are not for it. */
  readonly forwarding: boolean;
  /** Tracks connections (8.5). */
  readonly conntrack: boolean;
  readonly source: IrSpan;
}

export interface IrRoute {
  readonly name: string | null;
  readonly net: string;
  readonly netmask: string;
  readonly prefixLength: number;
  readonly nexthop: string | null;
  readonly iface: string;
  readonly cost: number;
  readonly source: IrSpan;
}

export interface IrGateway {
  readonly name: string;
  readonly sendTimeExceeded: boolean;
  readonly forward: readonly string[];
  readonly routes: readonly IrRoute[];
}

export interface IrTimeouts {
  readonly tcp: number;
  readonly udp: number;
  readonly icmp: number;
}

export interface IrConntrack {
  /** A tracker exists: some function is attached, a Gateway exists, or an Iface masquerades. */
  readonly enabled: boolean;
  /** Maximum tracked connections; 0 = unlimited. */
  readonly limit: number;
  readonly reserve: number;
  readonly statefulTcp: boolean;
  readonly timeouts: {
    readonly unconfirmed: IrTimeouts;
    readonly confirmed: IrTimeouts;
    readonly established: IrTimeouts;
  };
}

export type LbAlgorithm = 'round_robin' | 'least_connections' | 'source_hash';

export interface IrLoadBalancer {
  readonly name: string;
  readonly layer: 'tcp';
  readonly clients: { readonly iface: string; readonly port: number; readonly waitQueueLimit: number; readonly sessionLimit: number };
  readonly servers: { readonly iface: string; readonly algorithm: LbAlgorithm; readonly pool: readonly { readonly address: string; readonly port: number }[] };
}

export interface IrSyslog {
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export type TimerItem = 'timestamp' | 'stats' | 'memory' | 'cpu' | 'lb' | 'stack-sampling' | 'timers';
/** Timer items print in this order whatever the order in `data` (8.10). */
export const TIMER_ITEMS: readonly TimerItem[] = ['timestamp', 'stats', 'memory', 'cpu', 'lb', 'stack-sampling', 'timers'];

export interface IrTimer {
  readonly name: string;
  readonly interval: number;
  readonly data: readonly TimerItem[];
}

export interface IrFunction {
  readonly name: string;
  readonly type: 'filter' | 'nat';
  readonly subtype: Protocol;
  /** On some chain (only attached functions run; called ones are inlined). */
  readonly attached: boolean;
  readonly body: readonly IrStatement[];
  readonly source: IrSpan;
}

export type IrField =
  | 'ip.version' | 'ip.hdrlength' | 'ip.dscp' | 'ip.ecn' | 'ip.length' | 'ip.id' | 'ip.frag-off' | 'ip.ttl'
  | 'ip.protocol' | 'ip.checksum' | 'ip.saddr' | 'ip.daddr'
  | 'tcp.sport' | 'tcp.dport' | 'tcp.sequence' | 'tcp.ackseq' | 'tcp.doff' | 'tcp.reserved' | 'tcp.flags'
  | 'tcp.window' | 'tcp.checksum' | 'tcp.urgptr'
  | 'udp.sport' | 'udp.dport' | 'udp.length' | 'udp.checksum'
  | 'icmp.type'
  | 'ct.state';

/** `ct.state` values as numbers; `invalid` means "no entry" (8.5). */
export const CT_STATE = { invalid: 0, new: 1, established: 2, related: 3 } as const;

/** The ICMP type names the language predefines (4.2); packet specs in tests use the same. */
export const ICMP_TYPES: Readonly<Record<string, number>> = {
  'echo-reply': 0,
  'destination-unreachable': 3,
  redirect: 5,
  'echo-request': 8,
  'time-exceeded': 11,
  'parameter-problem': 12,
  'timestamp-request': 13,
  'timestamp-reply': 14,
};

export type IrCompareOp = '==' | '!=' | '<' | '>' | '<=' | '>=';

export type IrExpr =
  | { readonly kind: 'const'; readonly value: boolean }
  | { readonly kind: 'and' | 'or'; readonly left: IrExpr; readonly right: IrExpr }
  | { readonly kind: 'not'; readonly operand: IrExpr }
  /** `field OP value`; a constant on the left was moved right and the operator flipped. */
  | { readonly kind: 'compare'; readonly op: IrCompareOp; readonly field: IrField; readonly value: number }
  | { readonly kind: 'compare-fields'; readonly op: IrCompareOp; readonly left: IrField; readonly right: IrField }
  /** Membership in a union of inclusive ranges, sorted and merged. */
  | { readonly kind: 'in'; readonly field: IrField; readonly ranges: readonly (readonly [number, number])[] };

export type IrLogArg = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'field'; readonly field: IrField };

export type IrStatement =
  | { readonly kind: 'verdict'; readonly verdict: 'accept' | 'drop'; readonly rule: string }
  | { readonly kind: 'log'; readonly args: readonly IrLogArg[]; readonly rule: string }
  | { readonly kind: 'syslog'; readonly severity: number; readonly args: readonly IrLogArg[]; readonly rule: string }
  | {
      readonly kind: 'nat';
      readonly action: 'dnat' | 'snat';
      readonly address: string | null;
      readonly port: number | null;
      readonly rule: string;
    }
  | { readonly kind: 'if'; readonly condition: IrExpr; readonly then: readonly IrStatement[]; readonly else: readonly IrStatement[] | null; readonly rule: string }
  /**
   * A nested function or a call. `guard` is the protocol the packet must have
   * for the body to run (nacl-language.md 7.6), null when no test is needed.
   */
  | { readonly kind: 'block'; readonly guard: Protocol | null; readonly body: readonly IrStatement[]; readonly rule: string }
  | { readonly kind: 'call'; readonly function: string; readonly guard: Protocol | null; readonly rule: string };

export interface IrSpan {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly endLine: number;
  readonly endColumn: number;
}

export interface IrRuleSource extends IrSpan {
  readonly function: string;
  /** The rule as written (formatted), e.g. `if (tcp.dport == 80)` or `drop`. */
  readonly text: string;
}
