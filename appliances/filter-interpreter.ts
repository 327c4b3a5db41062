import type { FunctionState, GeneratedFunction, GeneratedModule, GeneratedRuntime, PacketView } from '../compiler/codegen/runtime-api.ts';
import { segmentsOf } from '../compiler/codegen/segments.ts';
import { compareNumbers } from '../compiler/functions.ts';
import type { Ir, IrExpr, IrField, IrFunction, IrLogArg, IrStatement, Protocol } from '../compiler/ir.ts';
import * as ip from '../runtime/wire/ipv4.ts';
import * as tcp from '../runtime/wire/tcp.ts';
import * as udp from '../runtime/wire/udp.ts';
import * as icmp from '../runtime/wire/icmpv4.ts';

/*
 * The reference interpreter: the IR's functions executed by walking the tree,
 * kept simple on purpose. It is the oracle generated code is tested against
 * (same verdict, same deciding rule, same log output, same NAT calls) and
 * what `nacl bench --interpreter` measures. Fields are read with the wire
 * module's getters, independently of the code generator's inline reads.
 */

const PROTOCOL: Record<Exclude<Protocol, 'ip'>, number> = { tcp: 6, udp: 17, icmp: 1 };

/** Statement outcomes: keep going, or the function's verdict. */
type Outcome = { verdict: 0 | 1; rule: string } | null;

export function interpretModule(ir: Ir, host: GeneratedRuntime): GeneratedModule {
  const functions = new Map(ir.functions.map((f) => [f.name, f]));
  const rules: string[] = [];
  const index = new Map<string, number>();
  const ruleNumber = (id: string) => {
    let k = index.get(id);
    if (k === undefined) {
      k = rules.length;
      rules.push(id);
      index.set(id, k);
    }
    return k;
  };
  const out: Record<string, GeneratedFunction> = {};
  for (const f of ir.functions.filter((x) => x.attached)) {
    out[f.name] = (p, s, ct) => {
      if (ct < 0) {
        s.rule = -2;
        return 0;
      }
      if (f.subtype !== 'ip' && ip.ipv4Protocol(p.bytes, p.l3) !== PROTOCOL[f.subtype]) {
        s.rule = -1;
        return 1;
      }
      const result = run(f.body, { p, ct, host, functions, state: s });
      if (result) {
        s.rule = ruleNumber(result.rule);
        return result.verdict;
      }
      s.rule = -1;
      return 1;
    };
  }
  const segments = segmentsOf(ir);
  const members = segments.map((names) => names.map((name) => out[name]!));
  // Rule numbers are given as rules first decide, at most one per rule of the IR.
  const hits = new Int32Array(Object.keys(ir.rules).length);
  const module = {
    functions: out,
    rules,
    segments,
    hits,
    run(k: number, p: PacketView, s: FunctionState, ct: number): number {
      const fns = members[k]!;
      for (let j = 0; j < fns.length; j++) {
        s.step = j;
        if (fns[j]!(p, s, ct) === 0) return 0;
        if (j < fns.length - 1 && s.rule >= 0) hits[s.rule]!++;
      }
      return 1;
    },
  };
  return module;
}

interface Env {
  readonly p: PacketView;
  readonly ct: number;
  readonly host: GeneratedRuntime;
  readonly functions: ReadonlyMap<string, IrFunction>;
  readonly state: FunctionState;
}

function run(statements: readonly IrStatement[], env: Env): Outcome {
  for (const s of statements) {
    const outcome = step(s, env);
    if (outcome) return outcome;
  }
  return null;
}

function step(s: IrStatement, env: Env): Outcome {
  switch (s.kind) {
    case 'verdict':
      return { verdict: s.verdict === 'accept' ? 1 : 0, rule: s.rule };
    case 'log':
      if (env.host.logEnabled) env.host.log(env.state, text(s.args, env));
      return null;
    case 'syslog':
      if (env.host.logEnabled) env.host.syslog(env.state, s.severity, text(s.args, env));
      return null;
    case 'nat':
      return { verdict: env.host.nat(s.action, env.p, env.ct, s.address === null ? -1 : ip.parseIpv4Address(s.address) ?? -1, s.port ?? -1) === false ? 0 : 1, rule: s.rule };
    case 'if':
      if (evaluate(s.condition, env)) return run(s.then, env);
      return s.else ? run(s.else, env) : null;
    case 'block':
      if (s.guard !== null && ip.ipv4Protocol(env.p.bytes, env.p.l3) !== PROTOCOL[s.guard as Exclude<Protocol, 'ip'>]) return null;
      return run(s.body, env);
    case 'call': {
      if (s.guard !== null && ip.ipv4Protocol(env.p.bytes, env.p.l3) !== PROTOCOL[s.guard as Exclude<Protocol, 'ip'>]) return null;
      const callee = env.functions.get(s.function);
      return callee ? run(callee.body, env) : null;
    }
  }
}

function text(args: readonly IrLogArg[], env: Env): string {
  return args
    .map((a) => (a.kind === 'text' ? a.text : a.field === 'ip.saddr' || a.field === 'ip.daddr' ? ip.formatIpv4Address(field(a.field, env)) : String(field(a.field, env))))
    .join('');
}

function evaluate(e: IrExpr, env: Env): boolean {
  switch (e.kind) {
    case 'const':
      return e.value;
    case 'and':
      return evaluate(e.left, env) && evaluate(e.right, env);
    case 'or':
      return evaluate(e.left, env) || evaluate(e.right, env);
    case 'not':
      return !evaluate(e.operand, env);
    case 'compare':
      return compareNumbers(e.op, field(e.field, env), e.value);
    case 'compare-fields':
      return compareNumbers(e.op, field(e.left, env), field(e.right, env));
    case 'in': {
      const v = field(e.field, env);
      return e.ranges.some(([lo, hi]) => v >= lo && v <= hi);
    }
  }
}

function field(f: IrField, env: Env): number {
  const { bytes: b, l3: o, l4: l } = env.p;
  switch (f) {
    case 'ip.version':
      return ip.ipv4Version(b, o);
    case 'ip.hdrlength':
      return ip.ipv4HeaderLen(b, o);
    case 'ip.dscp':
      return ip.ipv4Dscp(b, o);
    case 'ip.ecn':
      return ip.ipv4Ecn(b, o);
    case 'ip.length':
      return ip.ipv4TotalLen(b, o);
    case 'ip.id':
      return ip.ipv4Ident(b, o);
    case 'ip.frag-off':
      return ip.ipv4FragOffset(b, o) / 8;
    case 'ip.ttl':
      return ip.ipv4Ttl(b, o);
    case 'ip.protocol':
      return ip.ipv4Protocol(b, o);
    case 'ip.checksum':
      return ip.ipv4Checksum(b, o);
    case 'ip.saddr':
      return ip.ipv4Src(b, o);
    case 'ip.daddr':
      return ip.ipv4Dst(b, o);
    case 'tcp.sport':
      return tcp.tcpSrcPort(b, l);
    case 'tcp.dport':
      return tcp.tcpDstPort(b, l);
    case 'tcp.sequence':
      return tcp.tcpSeq(b, l);
    case 'tcp.ackseq':
      return tcp.tcpAck(b, l);
    case 'tcp.doff':
      return tcp.tcpHeaderLen(b, l) / 4;
    case 'tcp.reserved':
      return tcp.tcpReserved(b, l);
    case 'tcp.flags':
      return tcp.tcpFlags(b, l);
    case 'tcp.window':
      return tcp.tcpWindow(b, l);
    case 'tcp.checksum':
      return tcp.tcpChecksum(b, l);
    case 'tcp.urgptr':
      return tcp.tcpUrgent(b, l);
    case 'udp.sport':
      return udp.udpSrcPort(b, l);
    case 'udp.dport':
      return udp.udpDstPort(b, l);
    case 'udp.length':
      return udp.udpLength(b, l);
    case 'udp.checksum':
      return udp.udpChecksum(b, l);
    case 'icmp.type':
      return icmp.icmpv4Type(b, l);
    case 'ct.state':
      return env.host.ctState(env.ct);
  }
}
