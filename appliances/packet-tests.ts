import { Ajv2020 } from 'ajv/dist/2020.js';
import { isMap, isSeq, parseDocument, type Node as YamlNode } from 'yaml';
import { diagnostic, sortDiagnostics, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';
import { schemaProblems } from '../compiler/diagnostics/schema-errors.ts';
import { problemNode } from '../compiler/yaml-nodes.ts';
import type { Ir } from '../compiler/ir.ts';
import { LineMap, type Span } from '../grammar/span.ts';
import { parsePacketSpec } from '../runtime/packet-spec.ts';
import testsSchema from '../schemas/tests.schema.json' with { type: 'json' };
import { Tracer, type TraceResult } from './trace-run.ts';

/*
 * `nacl test FILE TESTS.yaml`: packet expectations for CI (cli.md, "Test
 * file"). The file is checked against schemas/tests.schema.json; problems
 * are diagnostics (E120, E122, E123) at YAML lines. Each test traces its packet and compares.
 */

export interface PacketTest {
  readonly name: string;
  readonly iface: string;
  readonly packet: string;
  readonly expect: Expectation;
  readonly line: number;
}

export interface Expectation {
  readonly verdict: 'accept' | 'drop';
  readonly dnat?: string;
  readonly snat?: string;
  readonly egress?: string;
  readonly delivered?: boolean;
  readonly rule?: string;
}

export interface TestFile {
  readonly config: string | undefined;
  readonly tests: PacketTest[];
}

let validate: ReturnType<Ajv2020['compile']> | undefined;

export type TestFileResult = { ok: true; value: TestFile } | { ok: false; diagnostics: Diagnostic[]; lines: LineMap };

/** Reads a tests file: its YAML, its shape (schemas/tests.schema.json) and each packet SPEC, every problem a diagnostic at its YAML line. */
export function parseTestFile(text: string, file: string): TestFileResult {
  const lines = new LineMap(file, text);
  const span = (node: YamlNode | undefined | null) => {
    const [start, end] = node?.range ?? [0, 0];
    return lines.span(start, Math.max(end, start + 1));
  };
  const fail = (diagnostics: Diagnostic[]): TestFileResult => ({ ok: false, diagnostics, lines });
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return fail(doc.errors.map((e) => diagnostic('E120', lines.span(e.pos[0], Math.max(e.pos[1], e.pos[0] + 1)), `invalid YAML: ${e.message.split('\n')[0]}`)));
  }
  validate ??= new Ajv2020({ allErrors: true, strict: false, verbose: true }).compile(testsSchema);
  const data = doc.toJS() as { config?: string; tests?: Record<string, unknown>[] };
  if (!validate(data ?? {})) {
    return fail(
      sortDiagnostics(schemaProblems(validate.errors ?? [], data ?? {}).map((p) => {
        const node = problemNode(doc, p.path, p.key);
        const where = p.path.length ? p.path.join('.') : 'the file';
        return diagnostic('E122', span(node), `${where}: ${p.message}`, { help: HELP });
      })),
    );
  }
  const tests: PacketTest[] = [];
  const diagnostics: Diagnostic[] = [];
  const seq = doc.get('tests', true);
  (data.tests ?? []).forEach((t, i) => {
    const node = isSeq(seq) ? (seq.items[i] as YamlNode) : undefined;
    const line = lines.position(node?.range?.[0] ?? 0).line;
    const expect = typeof t['expect'] === 'string' ? { verdict: t['expect'] as 'accept' | 'drop' } : (t['expect'] as Expectation);
    const spec = parsePacketSpec(String(t['packet']));
    if (!spec.ok) {
      const packetNode = isMap(node) ? (node.get('packet', true) as YamlNode | undefined) : undefined;
      diagnostics.push(diagnostic('E123', span(packetNode ?? node), `packet: ${spec.message}`, { help: 'a packet SPEC is PROTO SRC[:PORT] -> DST[:PORT] [key=value ...], e.g. tcp 10.0.0.5:40000 -> 10.0.0.1:80' }));
    }
    tests.push({ name: String(t['name']), iface: String(t['iface']), packet: String(t['packet']), expect, line });
  });
  if (diagnostics.length) return fail(diagnostics);
  return { ok: true, value: { config: data.config, tests } };
}

const HELP = 'a test is { name, iface, packet, expect: accept | drop | { verdict, dnat, snat, egress, delivered, rule } } (schemas/tests.schema.json)';

export interface TestOutcome {
  readonly test: PacketTest;
  readonly passed: boolean;
  readonly failures: string[];
  readonly trace: TraceResult;
}

export function runPacketTests(ir: Ir, tests: readonly PacketTest[]): TestOutcome[] {
  const tracer = new Tracer(ir);
  return tests.map((test) => {
    const failures: string[] = [];
    if (!ir.ifaces.some((i) => i.name === test.iface)) {
      failures.push(`no Iface named ${test.iface} (Ifaces: ${ir.ifaces.map((i) => i.name).join(', ')})`);
      return { test, passed: false, failures, trace: emptyTrace(test) };
    }
    const spec = parsePacketSpec(test.packet);
    if (!spec.ok) throw new Error(spec.message);
    const trace = tracer.run(test.iface, spec.spec);
    const e = test.expect;
    if (trace.verdict !== e.verdict) failures.push(`expected ${e.verdict}, got ${trace.verdict} (${trace.reason}${trace.rule ? `; rule ${trace.rule}` : ''})`);
    const socket = (a: string, p: number, withPort: boolean) => (withPort ? `${a}:${p}` : a);
    if (e.dnat !== undefined) {
      const got = socket(trace.final.dst, trace.final.dport, e.dnat.includes(':'));
      const was = socket(trace.original.dst, trace.original.dport, e.dnat.includes(':'));
      if (got !== e.dnat) failures.push(`expected dnat to ${e.dnat}, got ${got === was ? 'no translation' : got}`);
    }
    if (e.snat !== undefined) {
      const got = socket(trace.final.src, trace.final.sport, e.snat.includes(':'));
      const was = socket(trace.original.src, trace.original.sport, e.snat.includes(':'));
      if (got !== e.snat) failures.push(`expected snat to ${e.snat}, got ${got === was ? 'no translation' : got}`);
    }
    if (e.egress !== undefined && trace.egress !== e.egress) failures.push(`expected egress ${e.egress}, got ${trace.egress ?? 'none (not forwarded)'}`);
    if (e.delivered !== undefined && trace.delivered !== e.delivered) failures.push(`expected delivered: ${e.delivered}, got ${trace.delivered}`);
    if (e.rule !== undefined && trace.rule !== e.rule) failures.push(`expected deciding rule ${e.rule}, got ${trace.rule ?? 'none'}`);
    return { test, passed: failures.length === 0, failures, trace };
  });
}

function emptyTrace(test: PacketTest): TraceResult {
  const none = { src: '', sport: 0, dst: '', dport: 0 };
  return { packet: test.packet, iface: test.iface, steps: [], verdict: 'drop', reason: '', rule: null, egress: null, delivered: false, original: none, final: none, responses: [] };
}

/** Rule ids no test reached (evaluated or executed). */
export function uncoveredRules(ir: Ir, outcomes: readonly TestOutcome[]): string[] {
  const reached = new Set<string>();
  for (const o of outcomes) for (const s of o.trace.steps) if ('rule' in s && typeof s.rule === 'string' && (s.kind === 'condition' || s.kind === 'statement' || s.kind === 'guard')) reached.add(s.rule);
  return Object.keys(ir.rules).filter((id) => !reached.has(id));
}

/** JUnit XML, as CI systems read it. */
export function toJUnit(file: string, outcomes: readonly TestOutcome[], seconds: number): string {
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');
  const failures = outcomes.filter((o) => !o.passed).length;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="nacl test" tests="${outcomes.length}" failures="${failures}" errors="0" time="${seconds.toFixed(3)}">`,
    `  <testsuite name="${esc(file)}" tests="${outcomes.length}" failures="${failures}" errors="0" skipped="0" time="${seconds.toFixed(3)}">`,
  ];
  for (const o of outcomes) {
    lines.push(`    <testcase classname="${esc(file)}" name="${esc(o.test.name)}" time="0">`);
    if (!o.passed) lines.push(`      <failure message="${esc(o.failures[0] ?? 'failed')}" type="expectation">${esc(`${o.test.packet} on ${o.test.iface}\n${o.failures.join('\n')}`)}</failure>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>', '');
  return lines.join('\n');
}

export type { Span };
