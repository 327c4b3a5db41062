import type { Ir } from '../ir.ts';

/*
 * Segments: the units a chain runs its user functions in. A chain's steps are
 * user functions and built-in NAT steps; each maximal run of consecutive user
 * functions is one segment, entered through one call, `run(segment, ...)`.
 *
 * Why: the runtime's chain loop calls whatever function each step holds, so
 * with several functions that call site is polymorphic and V8 inlines none of
 * them (a few nanoseconds per call, more than a small function's body). One
 * entry point with a switch of direct calls is monomorphic, and the calls
 * inside it are inlined.
 *
 * Segment k < (number of attached functions) is the k-th attached function
 * alone, so a traced run can still report each function; the runs of two or
 * more functions the chains hold follow, each once.
 */

type Steps = readonly { readonly kind: string; readonly function?: string }[];

/** The maximal runs of consecutive user functions in a chain's steps. */
export function functionRuns(steps: Steps): string[][] {
  const runs: string[][] = [];
  let run: string[] = [];
  for (const s of steps) {
    if (s.kind === 'function') run.push(s.function!);
    else if (run.length > 0) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** Every chain of the IR: the Ifaces' four hooks and the Gateway's forward chain. */
export function chainsOf(ir: Ir): Steps[] {
  const chains: Steps[] = [];
  for (const iface of ir.ifaces) chains.push(iface.chains.prerouting, iface.chains.input, iface.chains.output, iface.chains.postrouting);
  if (ir.gateway) chains.push(ir.gateway.forward.map((name) => ({ kind: 'function', function: name })));
  return chains;
}

/** The segments of a module, in the order described above. */
export function segmentsOf(ir: Ir): string[][] {
  const segments = ir.functions.filter((f) => f.attached).map((f) => [f.name]);
  const seen = new Set(segments.map(segmentKey));
  for (const chain of chainsOf(ir)) {
    for (const run of functionRuns(chain)) {
      const key = segmentKey(run);
      if (run.length < 2 || seen.has(key)) continue;
      seen.add(key);
      segments.push(run);
    }
  }
  return segments;
}

/** A map key for a run of function names (names never hold a newline). */
export function segmentKey(names: readonly string[]): string {
  return names.join('\n');
}
