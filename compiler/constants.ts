import type { IrField, Protocol } from './ir.ts';
import { CT_STATE, ICMP_TYPES } from './ir.ts';

/** What a packet field holds, which decides what it may be compared with (nacl-language.md 7.7). */
export type FieldType = 'ipv4' | 'port' | 'protocol' | 'icmp-type' | 'tcp-flags' | 'ct-state' | 'integer';

export interface FieldInfo {
  readonly field: IrField;
  readonly type: FieldType;
  /** Largest value the field can hold. */
  readonly max: number;
  /** Which protocol context the field needs (`ip` and `ct` work everywhere). */
  readonly protocol: Protocol;
}

function f(field: IrField, type: FieldType, bits: number, protocol: Protocol): FieldInfo {
  return { field, type, max: bits >= 32 ? 0xffffffff : 2 ** bits - 1, protocol };
}

export const FIELDS: ReadonlyMap<string, FieldInfo> = new Map(
  [
    f('ip.version', 'integer', 4, 'ip'),
    f('ip.hdrlength', 'integer', 6, 'ip'),
    f('ip.dscp', 'integer', 6, 'ip'),
    f('ip.ecn', 'integer', 2, 'ip'),
    f('ip.length', 'integer', 16, 'ip'),
    f('ip.id', 'integer', 16, 'ip'),
    f('ip.frag-off', 'integer', 13, 'ip'),
    f('ip.ttl', 'integer', 8, 'ip'),
    f('ip.protocol', 'protocol', 8, 'ip'),
    f('ip.checksum', 'integer', 16, 'ip'),
    f('ip.saddr', 'ipv4', 32, 'ip'),
    f('ip.daddr', 'ipv4', 32, 'ip'),
    f('tcp.sport', 'port', 16, 'tcp'),
    f('tcp.dport', 'port', 16, 'tcp'),
    f('tcp.sequence', 'integer', 32, 'tcp'),
    f('tcp.ackseq', 'integer', 32, 'tcp'),
    f('tcp.doff', 'integer', 4, 'tcp'),
    f('tcp.reserved', 'integer', 4, 'tcp'),
    f('tcp.flags', 'tcp-flags', 9, 'tcp'),
    f('tcp.window', 'integer', 16, 'tcp'),
    f('tcp.checksum', 'integer', 16, 'tcp'),
    f('tcp.urgptr', 'integer', 16, 'tcp'),
    f('udp.sport', 'port', 16, 'udp'),
    f('udp.dport', 'port', 16, 'udp'),
    f('udp.length', 'integer', 16, 'udp'),
    f('udp.checksum', 'integer', 16, 'udp'),
    f('icmp.type', 'icmp-type', 8, 'icmp'),
    f('ct.state', 'ct-state', 2, 'ip'),
  ].map((info) => [info.field, info]),
);

export const PROTOCOL_OBJECTS = new Set(['ip', 'tcp', 'udp', 'icmp', 'ct']);

export type ConstantGroup = 'port' | 'protocol' | 'icmp-type' | 'ct-state' | 'tcp-flags' | 'lb-algorithm' | 'unsupported';

export interface ConstantInfo {
  readonly name: string;
  readonly group: ConstantGroup;
  readonly value: number;
}

function c(group: ConstantGroup, entries: Record<string, number>): ConstantInfo[] {
  return Object.entries(entries).map(([name, value]) => ({ name, group, value }));
}

/** Predefined constants (4.2), looked up case-insensitively, only when no element has the name. */
export const CONSTANTS: ReadonlyMap<string, ConstantInfo> = new Map(
  [
    ...c('port', { ssh: 22, dns: 53, http: 80, https: 443 }),
    ...c('protocol', { icmp: 1, tcp: 6, udp: 17, ip: 4 }),
    ...c('icmp-type', ICMP_TYPES),
    ...c('ct-state', CT_STATE),
    ...c('tcp-flags', { fin: 0x01, syn: 0x02, rst: 0x04, psh: 0x08, ack: 0x10, urg: 0x20, ece: 0x40, cwr: 0x80, ns: 0x100 }),
    ...c('lb-algorithm', { round_robin: 0, least_connections: 1, source_hash: 2 }),
    ...c('unsupported', { iif: 0, oif: 0, iifname: 0, oifname: 0 }),
  ].map((info) => [info.name, info]),
);

/** Which constant group a field type accepts. */
export const CONSTANT_GROUP_OF: Readonly<Partial<Record<FieldType, ConstantGroup>>> = {
  port: 'port',
  protocol: 'protocol',
  'icmp-type': 'icmp-type',
  'ct-state': 'ct-state',
  'tcp-flags': 'tcp-flags',
};

export const SYSLOG_SEVERITIES = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'] as const;

export const ACTIONS = new Set(['accept', 'drop', 'log', 'syslog', 'dnat', 'snat']);

/** Element type names, lower-case (case-insensitive in source). */
export const TYPED_ELEMENTS = new Set(['iface', 'gateway', 'load_balancer', 'conntrack', 'syslog', 'timer']);
export const FUNCTION_TYPES = new Set(['filter', 'nat']);
export const SUBTYPES = new Set(['ip', 'tcp', 'udp', 'icmp']);
