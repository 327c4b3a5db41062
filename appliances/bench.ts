import vm from 'node:vm';
import { generateModule } from '../compiler/codegen/emit.ts';
import type { FunctionState, GeneratedModule, GeneratedRuntime, PacketView, TraceSink } from '../compiler/codegen/runtime-api.ts';
import { segmentKey } from '../compiler/codegen/segments.ts';
import { CT_STATE, type Ir } from '../compiler/ir.ts';
import { interpretModule } from './filter-interpreter.ts';
import { filterPath } from './filter-path.ts';

/*
 * `nacl bench --mode filter`: how fast the compiled chains decide, on the
 * given packets, in this process. `--interpreter` runs the reference
 * interpreter instead, for comparison.
 */

export interface BenchResult {
  readonly mode: 'filter' | 'dataplane';
  readonly engine: 'compiled' | 'interpreter' | 'image';
  readonly packets: number;
  readonly seconds: number;
  readonly packetsPerSecond: number;
  readonly nsPerPacket: number;
  readonly distinctPackets: number;
  readonly verdicts: { readonly accept: number; readonly drop: number };
}

/**
 * A runtime whose logging goes nowhere: benchmarks measure deciding, not
 * printing. The conntrack "handle" the loop passes is the state itself
 * (1 = new unless a packet SPEC says `ct=`; -1 = no entry).
 */
const QUIET = '({ logEnabled: false, ctState: (ct) => ct, log() {}, syslog() {}, nat() {} })';
const NO_TRACE = '({ enter() {}, condition: (_r, _f, x) => x, guard: (_r, _p, x) => x, statement() {} })';

/*
 * The timing loop, as source: it runs in the context that holds the engine,
 * as the appliance runs its generated code next to the runtime. Calling
 * into a vm context from outside costs several nanoseconds per call, which
 * would otherwise be charged to the generated code alone. It reads no
 * globals, so it costs the same in either context.
 */
const LOOP = `(function (run, paths, views, state, seconds, now, cts) {
  let accept = 0, drop = 0;
  const runOne = (i) => {
    const path = paths[i], view = views[i];
    for (let k = 0; k < path.length; k++) {
      state.rule = -1;
      state.step = 0;
      if (run(path[k], view, state, CT) === 0) { drop++; return; }
    }
    accept++;
  };
  // Warm up so the optimising compiler has seen the code before timing starts.
  const n = views.length;
  const warm = n * 10 < 1000 ? 1000 : n * 10 > 20000 ? 20000 : n * 10;
  for (let i = 0; i < warm; i++) runOne(i % n);
  accept = 0;
  drop = 0;
  const limit = seconds * 1e9;
  const start = now();
  // A wrapping index, not i % n: an integer division per packet would be a
  // good part of what a small policy costs.
  let elapsed = 0, count = 0, next = 0;
  while (elapsed < limit) {
    for (let j = 0; j < 4096; j++) {
      runOne(next);
      if (++next === n) next = 0;
    }
    count += 4096;
    elapsed = now() - start;
  }
  return { count, elapsed, accept, drop };
})`;

type Loop = (
  run: GeneratedModule['run'],
  paths: number[][],
  views: PacketView[],
  state: FunctionState,
  seconds: number,
  now: () => number,
  cts: Int32Array | null,
) => { count: number; elapsed: number; accept: number; drop: number };

/**
 * The loop's source: the conntrack state is a constant unless some packet
 * says otherwise, so the common case pays no load per packet for it.
 */
const loopSource = (perPacketCt: boolean) => LOOP.replace('CT', perPacketCt ? 'cts[i]' : '1');

/** The engine's functions and the timing loop, in the same context. */
function prepare(ir: Ir, engine: 'compiled' | 'interpreter', perPacketCt: boolean): { module: GeneratedModule; loop: Loop } {
  const LOOP = loopSource(perPacketCt);
  if (engine === 'interpreter') {
    return { module: interpretModule(ir, vm.runInThisContext(QUIET) as GeneratedRuntime), loop: vm.runInThisContext(LOOP) as Loop };
  }
  const context = vm.createContext(Object.create(null), { name: 'nacl-bench', codeGeneration: { strings: false, wasm: false } });
  const factory = vm.runInContext(generateModule(ir), context, { filename: 'nacl-generated.js' }) as (rt: GeneratedRuntime, t: TraceSink) => GeneratedModule;
  const module = factory(vm.runInContext(QUIET, context) as GeneratedRuntime, vm.runInContext(NO_TRACE, context) as TraceSink);
  return { module, loop: vm.runInContext(LOOP, context) as Loop };
}

/** `cts`: each packet's conntrack state (CT_STATE, -1 for none); all `new` when absent. */
export function benchFilter(ir: Ir, iface: string, datagrams: readonly Uint8Array[], seconds: number, engine: 'compiled' | 'interpreter', cts?: readonly number[]): BenchResult {
  const perPacketCt = cts !== undefined && cts.some((c) => c !== CT_STATE.new);
  const { module, loop } = prepare(ir, engine, perPacketCt);
  const views: PacketView[] = datagrams.map((bytes) => ({ bytes, l3: 0, l4: (bytes[0]! & 15) * 4, end: bytes.length }));
  const segments = new Map(module.segments.map((names, k) => [segmentKey(names), k]));
  const paths: number[][] = datagrams.map((d) => {
    const dst = ((d[16]! << 24) | (d[17]! << 16) | (d[18]! << 8) | d[19]!) >>> 0;
    return (filterPath(ir, iface, dst) ?? []).map((run) => segments.get(segmentKey(run))!);
  });
  const { count, elapsed, accept, drop } = loop(module.run, paths, views, { rule: -1, step: 0 }, seconds, () => Number(process.hrtime.bigint()), perPacketCt ? Int32Array.from(cts!) : null);
  const secondsTaken = elapsed / 1e9;
  return {
    mode: 'filter',
    engine,
    packets: count,
    seconds: secondsTaken,
    packetsPerSecond: count / secondsTaken,
    nsPerPacket: elapsed / count,
    distinctPackets: views.length,
    verdicts: { accept, drop },
  };
}
