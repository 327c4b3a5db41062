import { Tracer, type TraceResult, type TraceStep } from '../../appliances/trace-run.ts';
import { parsePacketSpec } from '../../runtime/packet-spec.ts';
import { parseFormat, UsageError } from '../io.ts';
import { loadConfig } from '../load.ts';

/** `nacl trace FILE --iface NAME --packet SPEC` (cli.md). */
export function runTrace(file: string, options: { iface: string; packet: string; format: string }): number {
  const format = parseFormat(options.format, ['text', 'json'] as const);
  const spec = parsePacketSpec(options.packet);
  if (!spec.ok) throw new UsageError(`--packet: ${spec.message}`);
  const compiled = loadConfig(file, { quietWarnings: true });
  if (!compiled) return 1;
  const ir = compiled.ir!;
  if (!ir.ifaces.some((i) => i.name === options.iface)) {
    throw new UsageError(`no Iface named ${options.iface} in ${file} (Ifaces: ${ir.ifaces.map((i) => i.name).join(', ') || 'none'})`);
  }
  const result = new Tracer(ir).run(options.iface, spec.spec);
  process.stdout.write(format === 'json' ? JSON.stringify(jsonOf(result), null, 2) + '\n' : renderTrace(result, file));
  return 0;
}

const ADDR = (a: { src: string; sport: number; dst: string; dport: number }) =>
  `${a.src}${a.sport ? ':' + a.sport : ''} -> ${a.dst}${a.dport ? ':' + a.dport : ''}`;

export function renderTrace(r: TraceResult, file: string): string {
  const out: string[] = [`packet ${r.packet} arriving on ${r.iface}`];
  let indent = '  ';
  let responses = false;
  for (const s of r.steps as TraceStep[]) {
    switch (s.kind) {
      case 'receive':
        if (responses) break;
        out.push(`${indent}ttl ${s.ttl}, conntrack state: ${s.ctState}`);
        break;
      case 'hook':
        out.push(`${s.iface} ${s.hook}:`);
        indent = '  ';
        break;
      case 'enter':
        out.push(`  function ${s.name}`);
        indent = '    ';
        break;
      case 'guard':
        out.push(`${indent}${file}:${s.line}  ${s.text}: packet is ${s.passed ? '' : 'not '}${s.protocol.toUpperCase()}${s.passed ? '' : ', skipped'}`);
        break;
      case 'condition': {
        const values = Object.entries(s.fields).map(([f, v]) => `${f}=${f.endsWith('addr') ? ip(v) : v}`).join(' ');
        out.push(`${indent}${file}:${s.line}  ${s.text}  [${values}] -> ${s.result}`);
        break;
      }
      case 'statement':
        out.push(`${indent}${file}:${s.line}  ${s.text}`);
        break;
      case 'function':
        out.push(`${indent}=> ${s.verdict.toUpperCase()}${s.rule ? '' : ' (end of function)'}`);
        indent = '  ';
        break;
      case 'builtin':
        out.push(`  ${s.step}: ${ADDR(s.before)}  =>  ${ADDR(s.after)}`);
        break;
      case 'ttl':
        out.push(`router: ttl ${s.before} -> ${s.after}`);
        break;
      case 'route':
        out.push(s.route ? `route: ${s.destination} via ${s.route} -> ${s.egress}${s.nexthop ? ` (next hop ${s.nexthop})` : ''}` : `route: no route to ${s.destination}`);
        break;
      case 'deliver':
        out.push(`deliver on ${s.iface}: ${s.what}`);
        responses = true;
        break;
      case 'transmit':
        out.push(`${responses ? 'reply: ' : ''}transmit on ${s.iface} to ${s.nexthop}: ${ADDR(s.packet)}`);
        responses = true;
        break;
      case 'icmp':
        out.push(`icmp: ${s.what}`);
        break;
      case 'drop':
        out.push(`DROP on ${s.iface}: ${s.reason}`);
        break;
    }
  }
  out.push('', `verdict: ${r.verdict.toUpperCase()} - ${r.reason}${r.rule ? ` (rule ${r.rule})` : ''}`);
  if (ADDR(r.original) !== ADDR(r.final)) out.push(`translated: ${ADDR(r.original)}  =>  ${ADDR(r.final)}`);
  return out.join('\n') + '\n';
}

function ip(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The trace as JSON: compared addresses dotted, as the text shows them. */
function jsonOf(result: TraceResult): unknown {
  return {
    ...result,
    steps: result.steps.map((s) =>
      s.kind === 'condition' ? { ...s, fields: Object.fromEntries(Object.entries(s.fields).map(([f, v]) => [f, f.endsWith('addr') ? ip(v) : v])) } : s,
    ),
  };
}

