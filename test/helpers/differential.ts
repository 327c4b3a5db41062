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
  nat(kind: string, _p: PacketView, _ct: number, address: number, port: number): void {
    this.events.push(`${kind} ${address} ${port}`);
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

/** Runs one packet through every attached function of both and requires the same outcome. */
export function sameOutcome(ir: Ir, p: Pair, packet: RandomPacket): void {
  const view: PacketView = { bytes: packet.bytes, l3: 0, l4: 20, end: packet.bytes.length };
  for (const f of ir.functions.filter((x) => x.attached)) {
    p.genRt.events = [];
    p.intRt.events = [];
    p.genRt.ct = p.intRt.ct = packet.ctState;
    const gs = { rule: 99 };
    const is = { rule: 99 };
    const gv = p.generated.functions[f.name]!(view, gs, 0);
    const iv = p.interpreted.functions[f.name]!(view, is, 0);
    expect({ function: f.name, verdict: gv, rule: ruleName(p.generated, gs.rule), events: p.genRt.events }).toEqual({
      function: f.name,
      verdict: iv,
      rule: ruleName(p.interpreted, is.rule),
      events: p.intRt.events,
    });
  }
}
