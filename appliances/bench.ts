import { generateModule } from '../compiler/codegen/emit.ts';
import type { GeneratedFunction, GeneratedModule, GeneratedRuntime, PacketView } from '../compiler/codegen/runtime-api.ts';
import type { Ir } from '../compiler/ir.ts';
import { loadGenerated } from '../runtime/load-generated.ts';
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

/** A runtime whose logging goes nowhere: benchmarks measure deciding, not printing. */
const QUIET: GeneratedRuntime = {
  logEnabled: false,
  ctState: () => 1,
  log: () => {},
  syslog: () => {},
  nat: () => {},
};

export function prepareFilter(ir: Ir, engine: 'compiled' | 'interpreter'): GeneratedModule {
  return engine === 'compiled' ? loadGenerated(generateModule(ir), QUIET) : interpretModule(ir, QUIET);
}

export function benchFilter(ir: Ir, iface: string, datagrams: readonly Uint8Array[], seconds: number, engine: 'compiled' | 'interpreter'): BenchResult {
  const module = prepareFilter(ir, engine);
  const views: PacketView[] = datagrams.map((bytes) => ({ bytes, l3: 0, l4: (bytes[0]! & 15) * 4, end: bytes.length }));
  const paths: GeneratedFunction[][] = datagrams.map((d) => {
    const dst = ((d[16]! << 24) | (d[17]! << 16) | (d[18]! << 8) | d[19]!) >>> 0;
    return (filterPath(ir, iface, dst) ?? []).map((name) => module.functions[name]!).filter(Boolean);
  });
  const state = { rule: -1 };
  let accept = 0;
  let drop = 0;
  const runOne = (i: number) => {
    const path = paths[i]!;
    const view = views[i]!;
    for (let k = 0; k < path.length; k++) {
      if (path[k]!(view, state, 0) === 0) {
        drop++;
        return;
      }
    }
    accept++;
  };
  // Warm up so the optimising compiler has seen the code before timing starts.
  const warm = Math.min(20000, Math.max(1000, views.length * 10));
  for (let i = 0; i < warm; i++) runOne(i % views.length);
  accept = 0;
  drop = 0;
  const limit = seconds * 1e9;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  let count = 0;
  while (elapsed < limit) {
    for (let j = 0; j < 4096; j++) runOne((count + j) % views.length);
    count += 4096;
    elapsed = Number(process.hrtime.bigint() - start);
  }
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
