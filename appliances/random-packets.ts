import type { Ir, IrExpr, IrStatement } from '../compiler/ir.ts';
import type { PacketSpec } from '../runtime/packet-spec.ts';

/*
 * Random packets biased towards the constants a config mentions (and their
 * neighbours), for `nacl bench --random N`: a policy is exercised where its
 * rules actually decide, not only on packets no rule matches.
 */

/** A small deterministic PRNG (mulberry32), so runs are repeatable. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Constants {
  addresses: number[];
  /** The Ifaces' own addresses: destinations that reach the input chains. */
  ifaceAddresses: number[];
  ports: number[];
  icmpTypes: number[];
  ttls: number[];
}

/** Calls `visit` for every value or range a condition of the config compares a field with. */
export function forEachComparedRange(ir: Ir, visit: (field: string, lo: number, hi: number) => void): void {
  const expr = (e: IrExpr): void => {
    if (e.kind === 'compare') visit(e.field, e.value, e.value);
    else if (e.kind === 'in') e.ranges.forEach(([lo, hi]) => visit(e.field, lo, hi));
    else if (e.kind === 'and' || e.kind === 'or') (expr(e.left), expr(e.right));
    else if (e.kind === 'not') expr(e.operand);
  };
  const stmt = (s: IrStatement): void => {
    if (s.kind === 'if') (expr(s.condition), s.then.forEach(stmt), s.else?.forEach(stmt));
    else if (s.kind === 'block') s.body.forEach(stmt);
  };
  ir.functions.forEach((f) => f.body.forEach(stmt));
}

function constantsOf(ir: Ir): Constants {
  const c: Constants = { addresses: [], ifaceAddresses: [], ports: [], icmpTypes: [], ttls: [] };
  const add = (field: string, lo: number, hi: number) => {
    const list = field.endsWith('addr') ? c.addresses : field.endsWith('port') ? c.ports : field === 'icmp.type' ? c.icmpTypes : field === 'ip.ttl' ? c.ttls : null;
    if (!list) return;
    for (const v of [lo, hi, lo - 1, hi + 1, lo + Math.floor((hi - lo) / 2)]) if (v >= 0) list.push(v >>> 0);
  };
  forEachComparedRange(ir, add);
  for (const i of ir.ifaces) if (i.address) c.ifaceAddresses.push(ipNumber(i.address));
  c.addresses.push(...c.ifaceAddresses);
  return c;
}

function ipNumber(text: string): number {
  return text.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}

export function randomSpecs(ir: Ir, count: number, seed = 1): PacketSpec[] {
  const rnd = prng(seed);
  const c = constantsOf(ir);
  const pick = (list: number[], max: number) => (list.length > 0 && rnd() < 0.7 ? list[Math.floor(rnd() * list.length)]! % (max + 1) : Math.floor(rnd() * (max + 1)));
  const protocols = [6, 6, 17, 17, 1];
  const specs: PacketSpec[] = [];
  for (let i = 0; i < count; i++) {
    const protocol = protocols[Math.floor(rnd() * protocols.length)]!;
    specs.push({
      protocol,
      protocolName: protocol === 6 ? 'tcp' : protocol === 17 ? 'udp' : 'icmp',
      src: pick(c.addresses, 0xffffffff) >>> 0,
      // A quarter to the appliance itself, so input chains see traffic too.
      dst: (c.ifaceAddresses.length > 0 && rnd() < 0.25 ? pick(c.ifaceAddresses, 0xffffffff) : pick(c.addresses, 0xffffffff)) >>> 0,
      sport: protocol === 1 ? 0 : 1024 + Math.floor(rnd() * 60000),
      dport: protocol === 1 ? 0 : pick(c.ports, 65535),
      ttl: c.ttls.length && rnd() < 0.3 ? pick(c.ttls, 255) : 64,
      flags: protocol === 6 ? (rnd() < 0.5 ? 0x02 : 0x10) : 0,
      icmpType: protocol === 1 ? pick(c.icmpTypes.length ? c.icmpTypes : [8, 0], 255) : 8,
      icmpCode: 0,
      len: 0,
      id: i & 0xffff,
      vlan: null,
      ct: undefined,
    });
  }
  return specs;
}
