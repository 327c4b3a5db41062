import { expect } from 'vitest';
import { generateModule, type CodegenOptions } from '../../compiler/codegen/emit.ts';
import type { GeneratedModule, GeneratedRuntime, PacketView } from '../../compiler/codegen/runtime-api.ts';
import type { Ir } from '../../compiler/ir.ts';
import { interpretModule } from '../../appliances/filter-interpreter.ts';
import { loadGenerated } from '../../runtime/load-generated.ts';
import type { RandomPacket } from './random-packets.ts';

/** A runtime that records what a function did, for comparing two implementations. */
export class RecordingRuntime implements GeneratedRuntime {
  readonly logEnabled = true;
  ct = 1;
  events: string[] = [];
  ctState(): number {
    return this.ct;
  }
  log(_s: unknown, text: string): void {
    this.events.push(`log ${JSON.stringify(text)}`);
  }
  syslog(_s: unknown, severity: number, text: string): void {
    this.events.push(`syslog ${severity} ${JSON.stringify(text)}`);
  }
  /** What nat() answers: false stands for a translation the NAT engine refused. */
  natResult = true;
  nat(kind: string, _p: PacketView, _ct: number, address: number, port: number): boolean {
    this.events.push(`${kind} ${address} ${port}`);
    return this.natResult;
  }
}

export interface Pair {
  generated: GeneratedModule;
  interpreted: GeneratedModule;
  genRt: RecordingRuntime;
  intRt: RecordingRuntime;
}

export function pair(ir: Ir, options: CodegenOptions = {}): Pair {
  const genRt = new RecordingRuntime();
  const intRt = new RecordingRuntime();
  return { generated: loadGenerated(generateModule(ir, options), genRt), interpreted: interpretModule(ir, intRt), genRt, intRt };
}

function ruleName(m: GeneratedModule, k: number): string {
  return k >= 0 ? m.rules[k]! : k === -2 ? '(no conntrack entry)' : '(end)';
}

/** Runs one packet through every attached function and every segment of both and requires the same outcome. */
export function sameOutcome(ir: Ir, p: Pair, packet: RandomPacket): void {
  const view: PacketView = { bytes: packet.bytes, l3: 0, l4: 20, end: packet.bytes.length };
  for (const f of ir.functions.filter((x) => x.attached)) {
    p.genRt.events = [];
    p.intRt.events = [];
    p.genRt.ct = p.intRt.ct = packet.ctState;
    p.genRt.natResult = p.intRt.natResult = packet.natResult;
    const gs = { rule: 99, step: 0 };
    const is = { rule: 99, step: 0 };
    const gv = p.generated.functions[f.name]!(view, gs, 0);
    const iv = p.interpreted.functions[f.name]!(view, is, 0);
    expect({ function: f.name, verdict: gv, rule: ruleName(p.generated, gs.rule), events: p.genRt.events }).toEqual({
      function: f.name,
      verdict: iv,
      rule: ruleName(p.interpreted, is.rule),
      events: p.intRt.events,
    });
  }
  for (let k = 0; k < p.generated.segments.length; k++) {
    p.genRt.events = [];
    p.intRt.events = [];
    p.genRt.natResult = p.intRt.natResult = packet.natResult;
    const gs = { rule: 99, step: 0 };
    const is = { rule: 99, step: 0 };
    const gHits = hitsByRule(p.generated);
    const iHits = hitsByRule(p.interpreted);
    const gv = p.generated.run(k, view, gs, 0);
    const iv = p.interpreted.run(k, view, is, 0);
    const outcome = (m: GeneratedModule, v: number, s: { rule: number; step: number }, events: string[], before: Record<string, number>) => ({
      segment: m.segments[k],
      verdict: v,
      rule: ruleName(m, s.rule),
      step: s.step,
      events,
      counted: countedSince(m, before),
    });
    expect(outcome(p.generated, gv, gs, p.genRt.events, gHits)).toEqual(outcome(p.interpreted, iv, is, p.intRt.events, iHits));
  }
}

function hitsByRule(m: GeneratedModule): Record<string, number> {
  const out: Record<string, number> = {};
  m.hits.forEach((n, k) => {
    if (n > 0) out[m.rules[k]!] = n;
  });
  return out;
}

/** The rules `run` counted itself (accepts in the middle of a segment) since `before`. */
function countedSince(m: GeneratedModule, before: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [rule, n] of Object.entries(hitsByRule(m))) if (n !== (before[rule] ?? 0)) out[rule] = n - (before[rule] ?? 0);
  return out;
}
