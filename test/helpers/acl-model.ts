import { prng } from '../../appliances/random-packets.ts';
import type { PacketSpec } from '../../runtime/packet-spec.ts';

/*
 * A random policy as a plain model - first match wins, then a default - and
 * its two renderings: NaCl (a forward Filter, or a prerouting Nat function
 * of port forwards) and nftables (a forward chain, or a dstnat chain). The
 * model decides each packet itself, so a test can hold the appliance and
 * Linux to the same, independently computed, answer. Members of a set never
 * overlap (nftables refuses overlapping intervals in an anonymous set), and
 * every source the packets use lies in SOURCES, which the receiving host
 * drops before it could answer.
 */

export type Proto = 'tcp' | 'udp' | 'icmp';
const PROTOCOL: Record<Proto, number> = { tcp: 6, udp: 17, icmp: 1 };

/** An inclusive interval of addresses or ports. */
type Interval = readonly [number, number];

/** A port forward: the new destination address, and port (TCP and UDP rules only; else kept). */
export interface Dnat {
  readonly dnat: number;
  readonly port?: number;
}

/** A source translation to an address; the port is kept unless another flow holds the tuple. */
export interface Snat {
  readonly snat: number;
}

export interface AclRule {
  /** Only packets of this protocol (a nested TCP/UDP/ICMP function); null: any. */
  readonly proto: Proto | null;
  readonly saddr?: { readonly negated: boolean; readonly members: readonly Interval[] };
  /** TCP or UDP rules only. */
  readonly dport?: readonly Interval[];
  /** TCP or UDP rules only: `sport < N`. */
  readonly sportBelow?: number;
  /** `ip.ttl > N`, as the hook sees it: the forward chain after the router's decrement. */
  readonly ttlAbove?: number;
  /** ICMP rules only. */
  readonly icmpTypes?: readonly number[];
  readonly action: 'accept' | 'drop' | Dnat | Snat;
}

export interface AclPolicy {
  readonly seed: number;
  /**
   * forward: a Filter on the Gateway's forward chain; prerouting: a Nat
   * function of dnat rules on the receiving Iface; postrouting: one of snat
   * rules on the sending Iface.
   */
  readonly hook: 'forward' | 'prerouting' | 'postrouting';
  readonly rules: readonly AclRule[];
  /** After the last rule; a Nat function falls off its end: accept, unchanged. */
  readonly otherwise: 'accept' | 'drop';
  /** The far side's Iface masquerades: everything leaving it gets its address (and a port of the router's choice). */
  readonly masquerade?: boolean;
}

/** Sources of the random packets: 10.100.0.0/20, sixteen /24 "slots". */
export const SOURCES = { net: '10.100.0.0/16', base: (10 << 24) | (100 << 16), slots: 16 };
/** ICMP queries Linux conntrack takes as new flows (echo and timestamp requests). */
export const QUERY_TYPES = [8, 13] as const;

const dotted = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;

/** `count` distinct slots of `of`, in random order. */
function slots(rnd: () => number, count: number, of: number): number[] {
  const all = Array.from({ length: of }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const between = (rnd: () => number, lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));

/** Source members, each in a /24 slot of its own: the whole /24, one host, or a range. */
function addressMembers(rnd: () => number): Interval[] {
  return slots(rnd, between(rnd, 1, 3), SOURCES.slots).map((slot) => {
    const base = (SOURCES.base | (slot << 8)) >>> 0;
    const kind = rnd();
    if (kind < 0.4) return [base, base + 255] as const;
    if (kind < 0.7) {
      const host = base + between(rnd, 1, 254);
      return [host, host] as const;
    }
    const lo = base + between(rnd, 1, 120);
    return [lo, lo + between(rnd, 1, 100)] as const;
  });
}

/** Port members, each in a block of 1000 ports of its own: one port or a range. */
function portMembers(rnd: () => number): Interval[] {
  return slots(rnd, between(rnd, 1, 3), 60)
    .map((block) => {
      const lo = 1000 * (block + 1) + between(rnd, 0, 900);
      return rnd() < 0.5 ? ([lo, lo] as const) : ([lo, lo + between(rnd, 1, 99)] as const);
    })
    .sort((a, b) => a[0] - b[0]);
}

/**
 * The conditions of a random rule; the caller picks its action. A `sourced`
 * rule always tests for sources in SOURCES, so it never matches the test's
 * own traffic from real addresses (a Nat function has no `accept` to let
 * that pass first).
 */
function randomConditions(rnd: () => number, protos: readonly (Proto | null)[], sourced = false): Omit<AclRule, 'action'> | undefined {
  const proto = pick(rnd, protos);
  const rule: { -readonly [K in keyof AclRule]?: AclRule[K] } = { proto };
  if (sourced || rnd() < 0.7) rule.saddr = { negated: !sourced && rnd() < 0.2, members: addressMembers(rnd) };
  if (rnd() < 0.25) rule.ttlAbove = between(rnd, 20, 120);
  if (proto === 'tcp' || proto === 'udp') {
    if (rnd() < 0.7) rule.dport = portMembers(rnd);
    if (rnd() < 0.25) rule.sportBelow = between(rnd, 1024, 40000);
  }
  if (proto === 'icmp' && rnd() < 0.6) rule.icmpTypes = [pick(rnd, QUERY_TYPES)];
  // A rule for any protocol needs a condition: a bare action would end the function.
  if (proto === null && rule.saddr === undefined && rule.ttlAbove === undefined) return undefined;
  return rule as Omit<AclRule, 'action'>;
}

/** A firewall for a Gateway's forward chain: accept and drop rules, then a default verdict. */
export function randomPolicy(seed: number, ruleCount = 12): AclPolicy {
  const rnd = prng(seed);
  const rules: AclRule[] = [];
  while (rules.length < ruleCount) {
    const conditions = randomConditions(rnd, [null, 'tcp', 'tcp', 'udp', 'udp', 'icmp']);
    if (conditions) rules.push({ ...conditions, action: rnd() < 0.5 ? 'accept' : 'drop' });
  }
  return { seed, hook: 'forward', rules, otherwise: rnd() < 0.5 ? 'accept' : 'drop' };
}

/**
 * Port forwards for an Iface's prerouting chain: each rule sends what it
 * matches to one of `targets`, a TCP or UDP rule usually to a new port too.
 */
export function randomDnatPolicy(seed: number, targets: readonly number[], ruleCount = 8): AclPolicy {
  const rnd = prng(seed);
  const rules: AclRule[] = [];
  while (rules.length < ruleCount) {
    const conditions = randomConditions(rnd, [null, 'tcp', 'tcp', 'udp', 'udp', 'icmp'], true);
    if (!conditions) continue;
    const ported = (conditions.proto === 'tcp' || conditions.proto === 'udp') && rnd() < 0.7;
    rules.push({ ...conditions, action: { dnat: pick(rnd, targets), ...(ported ? { port: between(rnd, 1, 65535) } : {}) } });
  }
  return { seed, hook: 'prerouting', rules, otherwise: 'accept' };
}

/** Source translations for an Iface's postrouting chain: each rule gives what it matches one of `addresses`. */
export function randomSnatPolicy(seed: number, addresses: readonly number[], ruleCount = 8): AclPolicy {
  const rnd = prng(seed);
  const rules: AclRule[] = [];
  while (rules.length < ruleCount) {
    const conditions = randomConditions(rnd, [null, 'tcp', 'tcp', 'udp', 'udp', 'icmp'], true);
    if (conditions) rules.push({ ...conditions, action: { snat: pick(rnd, addresses) } });
  }
  return { seed, hook: 'postrouting', rules, otherwise: 'accept' };
}

/** A packet as the model, the appliance and Linux see it; `id` tells arrivals apart. */
export interface AclPacket {
  readonly proto: Proto;
  readonly src: number;
  readonly sport: number;
  readonly dport: number;
  /** As sent; the forward chain sees ttl - 1. */
  readonly ttl: number;
  readonly icmpType: number;
  readonly id: number;
}

const inSet = (x: number, members: readonly Interval[]) => members.some(([lo, hi]) => x >= lo && x <= hi);

function matches(rule: AclRule, p: AclPacket, hook: AclPolicy['hook']): boolean {
  // A router decrements the TTL before its forward hook (the appliance as Linux does), so postrouting sees it too.
  const ttl = hook === 'prerouting' ? p.ttl : p.ttl - 1;
  if (rule.proto !== null && rule.proto !== p.proto) return false;
  if (rule.saddr && inSet(p.src, rule.saddr.members) === rule.saddr.negated) return false;
  if (rule.ttlAbove !== undefined && !(ttl > rule.ttlAbove)) return false;
  if (rule.dport && !inSet(p.dport, rule.dport)) return false;
  if (rule.sportBelow !== undefined && !(p.sport < rule.sportBelow)) return false;
  if (rule.icmpTypes && !rule.icmpTypes.includes(p.icmpType)) return false;
  return true;
}

/** The policy's action: the first rule's that matches, else the default. */
export function decide(policy: AclPolicy, p: AclPacket): AclRule['action'] {
  for (const rule of policy.rules) if (matches(rule, p, policy.hook)) return rule.action;
  return policy.otherwise;
}

/** Random packets to `dst`, biased to the policy's boundaries (each interval's ends and their neighbours). */
export function randomAclPackets(policy: AclPolicy, count: number, seed: number): AclPacket[] {
  const rnd = prng(seed);
  const addresses = policy.rules.flatMap((r) => r.saddr?.members ?? []).flatMap(([lo, hi]) => [lo - 1, lo, hi, hi + 1, (lo + hi) >>> 1]);
  const ports = policy.rules.flatMap((r) => [...(r.dport ?? []), ...(r.sportBelow ? [[r.sportBelow, r.sportBelow] as const] : [])]).flatMap(([lo, hi]) => [lo - 1, lo, hi, hi + 1]);
  const ttls = policy.rules.flatMap((r) => (r.ttlAbove === undefined ? [] : [r.ttlAbove, r.ttlAbove + 1, r.ttlAbove + 2]));
  const lowest = SOURCES.base + 1;
  const highest = (SOURCES.base | ((SOURCES.slots - 1) << 8) | 254) >>> 0;
  const biased = (xs: number[], lo: number, hi: number) => Math.min(hi, Math.max(lo, xs.length > 0 && rnd() < 0.75 ? pick(rnd, xs) : between(rnd, lo, hi)));
  const random = (): Omit<AclPacket, 'id'> => ({
    proto: pick(rnd, ['tcp', 'tcp', 'udp', 'udp', 'icmp'] as const),
    src: biased(addresses, lowest, highest),
    sport: biased(ports, 1, 65535),
    dport: biased(ports, 1, 65535),
    // At least 2: the router must forward it, not answer Time Exceeded.
    ttl: biased(ttls, 2, 255),
    icmpType: pick(rnd, QUERY_TYPES),
  });
  // Half the packets are made to match one rule each (which an earlier rule
  // may still decide): random ones alone leave narrow rules unexercised.
  const inside = ([lo, hi]: Interval) => between(rnd, lo, hi);
  const witness = (rule: AclRule): Omit<AclPacket, 'id'> => {
    const p: { -readonly [K in keyof AclPacket]?: AclPacket[K] } & Omit<AclPacket, 'id'> = { ...random(), ...(rule.proto === null ? {} : { proto: rule.proto }) };
    if (rule.saddr && !rule.saddr.negated) p.src = Math.min(highest, Math.max(lowest, inside(pick(rnd, rule.saddr.members))));
    if (rule.ttlAbove !== undefined) p.ttl = rule.ttlAbove + between(rnd, 2, 3);
    if (rule.dport) p.dport = inside(pick(rnd, rule.dport));
    if (rule.sportBelow !== undefined) p.sport = between(rnd, Math.max(1, rule.sportBelow - 3), rule.sportBelow - 1);
    if (rule.icmpTypes) p.icmpType = pick(rnd, rule.icmpTypes);
    return p;
  };
  return Array.from({ length: count }, (_, i) => ({ ...(i % 2 === 0 || policy.rules.length === 0 ? random() : witness(policy.rules[(i >> 1) % policy.rules.length]!)), id: i + 1 }));
}

/** How many packets each rule decided (index = rule; the last entry: the default verdict). */
export function decidedBy(policy: AclPolicy, packets: readonly AclPacket[]): number[] {
  const counts = new Array<number>(policy.rules.length + 1).fill(0);
  for (const p of packets) {
    const k = policy.rules.findIndex((r) => matches(r, p, policy.hook));
    counts[k === -1 ? policy.rules.length : k]!++;
  }
  return counts;
}

/** The packet as a SPEC (cli.md), for building its datagram and for reports. */
export function packetSpec(p: AclPacket, dst: number): PacketSpec {
  return {
    protocol: PROTOCOL[p.proto],
    protocolName: p.proto,
    src: p.src,
    dst,
    sport: p.proto === 'icmp' ? 0 : p.sport,
    dport: p.proto === 'icmp' ? 0 : p.dport,
    ttl: p.ttl,
    // A SYN: Linux conntrack takes it for a new connection.
    flags: p.proto === 'tcp' ? 0x02 : 0,
    icmpType: p.icmpType,
    icmpCode: 0,
    len: 0,
    id: p.id,
    vlan: null,
    ct: undefined,
  };
}

const naclMember = ([lo, hi]: Interval, address: boolean): string => {
  const text = address ? dotted : String;
  if (lo === hi) return text(lo);
  if (address && (hi - lo) === 255 && (lo & 255) === 0) return `${dotted(lo)}/24`;
  return `${text(lo)}-${text(hi)}`;
};

/** The rule's condition in NaCl, or '' when it has none. */
function naclCondition(rule: AclRule): string {
  const terms: string[] = [];
  if (rule.saddr) terms.push(`${rule.saddr.negated ? 'not ' : ''}ip.saddr in [${rule.saddr.members.map((m) => naclMember(m, true)).join(', ')}]`);
  if (rule.ttlAbove !== undefined) terms.push(`ip.ttl > ${rule.ttlAbove}`);
  if (rule.dport) terms.push(`${rule.proto}.dport in [${rule.dport.map((m) => naclMember(m, false)).join(', ')}]`);
  if (rule.sportBelow !== undefined) terms.push(`${rule.proto}.sport < ${rule.sportBelow}`);
  if (rule.icmpTypes) terms.push(`icmp.type in [${rule.icmpTypes.join(', ')}]`);
  return terms.join(' and ');
}

const naclAction = (action: AclRule['action']): string =>
  typeof action === 'string'
    ? action
    : 'snat' in action
      ? `snat(${dotted(action.snat)})`
      : `dnat(${dotted(action.dnat)}${action.port === undefined ? '' : `, ${action.port}`})`;

/**
 * The policy as a NaCl function (Filter::IP for forward, Nat::IP for
 * prerouting), preceded by `preamble` statements (rules outside the model,
 * such as what lets a test's own probes through).
 */
export function naclFunction(policy: AclPolicy, name: string, preamble: readonly string[] = []): string {
  const type = policy.hook === 'forward' ? 'Filter' : 'Nat';
  const lines = [`${type}::IP ${name} {`, ...preamble.map((s) => `  ${s}`)];
  for (const rule of policy.rules) {
    const condition = naclCondition(rule);
    const action = naclAction(rule.action);
    const body = condition === '' ? action : `if (${condition}) { ${action} }`;
    lines.push(rule.proto === null ? `  ${body}` : `  ${type}::${rule.proto.toUpperCase()} { ${body} }`);
  }
  if (policy.hook === 'forward') lines.push(`  ${policy.otherwise}`);
  lines.push('}');
  return lines.join('\n');
}

const nftMember = ([lo, hi]: Interval, address: boolean): string => {
  const text = address ? dotted : String;
  return lo === hi ? text(lo) : `${text(lo)}-${text(hi)}`;
};

const nftAction = (action: AclRule['action']): string =>
  typeof action === 'string'
    ? action
    : 'snat' in action
      ? `snat to ${dotted(action.snat)}`
      : `dnat to ${dotted(action.dnat)}${action.port === undefined ? '' : `:${action.port}`}`;

/** The policy as nftables rules for a forward or a dstnat chain, after `preamble` rules. */
export function nftRules(policy: AclPolicy, preamble: readonly string[] = []): string {
  const lines = [...preamble];
  for (const rule of policy.rules) {
    const terms: string[] = [];
    if (rule.proto !== null) terms.push(`ip protocol ${rule.proto}`);
    if (rule.saddr) terms.push(`ip saddr ${rule.saddr.negated ? '!= ' : ''}{ ${rule.saddr.members.map((m) => nftMember(m, true)).join(', ')} }`);
    if (rule.ttlAbove !== undefined) terms.push(`ip ttl > ${rule.ttlAbove}`);
    if (rule.dport) terms.push(`${rule.proto} dport { ${rule.dport.map((m) => nftMember(m, false)).join(', ')} }`);
    if (rule.sportBelow !== undefined) terms.push(`${rule.proto} sport < ${rule.sportBelow}`);
    if (rule.icmpTypes) terms.push(`icmp type { ${rule.icmpTypes.join(', ')} }`);
    lines.push([...terms, nftAction(rule.action)].join(' '));
  }
  if (policy.hook === 'forward') lines.push(policy.otherwise);
  return lines.join('\n');
}

/**
 * A whole nftables table for a Linux router holding the policy: its chain
 * for the policy's hook (a forward policy after `forwardPreamble`), and a
 * masquerade on b_side when the policy masquerades.
 */
export function nftTable(policy: AclPolicy, forwardPreamble: readonly string[] = []): string {
  const rules = (preamble: readonly string[]) =>
    nftRules(policy, preamble)
      .split('\n')
      .map((l) => `    ${l}`)
      .join('\n');
  const chain = {
    forward: `  chain forward {\n    type filter hook forward priority filter; policy accept;\n${rules(forwardPreamble)}\n  }`,
    prerouting: `  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n${rules([])}\n  }`,
    postrouting: `  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n${rules([])}\n  }`,
  }[policy.hook];
  const masquerade = policy.masquerade ? `  chain hide_sources {\n    type nat hook postrouting priority srcnat; policy accept;\n    oifname "b_side" masquerade\n  }\n` : '';
  return `table ip nacl_differential {\n${chain}\n${masquerade}}\n`;
}

/** The hosts on either side of the router: A sends, B receives (also on B_EXTRA, targets of port forwards). */
export const HOST_A = '10.91.1.5';
export const HOST_B = '10.91.2.5';
export const HOST_B_EXTRA = ['10.91.2.6', '10.91.2.7'] as const;

/**
 * A router between 10.91.1.0/24 (Iface a_side, 10.91.1.1) and 10.91.2.0/24
 * (b_side, 10.91.2.1): a forward policy guards its Gateway's forward
 * chain, a prerouting one is a_side's port forwards, a postrouting one
 * b_side's source translations. `preamble` statements go first; `extra`
 * adds Gateway routes and other elements.
 */
export function routerConfig(policy: AclPolicy, preamble: readonly string[] = [], extra: { routes?: readonly string[]; elements?: string } = {}): string {
  const attach = (hook: AclPolicy['hook']) => (policy.hook === hook ? `, ${hook}: policy` : '');
  const routes = (extra.routes ?? []).map((r) => `,\n  ${r}`).join('');
  return `
Iface a_side { index: 0, address: 10.91.1.1, netmask: 255.255.255.0${attach('prerouting')} }
Iface b_side { index: 1, address: 10.91.2.1, netmask: 255.255.255.0${attach('postrouting')}${policy.masquerade ? ', masquerade: true' : ''} }
Gateway gw {
${policy.hook === 'forward' ? '  forward: policy,\n' : ''}  a_net: { net: 10.91.1.0, netmask: 255.255.255.0, iface: a_side },
  b_net: { net: 10.91.2.0, netmask: 255.255.255.0, iface: b_side }${routes}
}
${naclFunction(policy, 'policy', preamble)}
${extra.elements ?? ''}`;
}

/**
 * The packets without a repeated flow: a NAT decides a flow's first packet,
 * and the model decides each. ICMP queries of both types from one source
 * count as one flow (they share the identifier; trackers differ on whether
 * the type is part of the flow).
 */
export function firstOfEachFlow(packets: readonly AclPacket[]): AclPacket[] {
  const seen = new Set<string>();
  return packets.filter((p) => {
    const key = p.proto === 'icmp' ? `icmp ${p.src}` : `${p.proto} ${p.src} ${p.sport} ${p.dport}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** The packet in a test failure message. */
export function describePacket(p: AclPacket): string {
  const l4 = p.proto === 'icmp' ? `type ${p.icmpType}` : `${p.sport} -> ${p.dport}`;
  return `#${p.id} ${p.proto} from ${dotted(p.src)} ${l4} ttl ${p.ttl}`;
}
