import vm from 'node:vm';
import type { GeneratedModule, GeneratedRuntime, TraceSink } from '../compiler/codegen/runtime-api.ts';

/*
 * Instantiates generated filter code in a context of its own (node:vm) that
 * holds nothing: no require, process, fs or timers. The runtime services it
 * may call are handed over as functions created inside that context, so the
 * host's functions are never reachable as properties. (node:vm is isolation
 * for mistakes, not a security boundary; images are checked by hash.)
 */

const NO_TRACE: TraceSink = {
  enter() {},
  condition: (_r, _f, result) => result,
  guard: (_r, _p, passed) => passed,
  statement() {},
};

export function loadGenerated(source: string, rt: GeneratedRuntime, trace: TraceSink = NO_TRACE): GeneratedModule {
  const context = vm.createContext(Object.create(null), { name: 'nacl-generated', codeGeneration: { strings: false, wasm: false } });
  const bridge = vm.runInContext(
    `(function (call, logEnabled) {
      return {
        logEnabled,
        ctState: (ct) => call(0, ct),
        log: (s, text) => { call(1, s, text); },
        syslog: (s, severity, text) => { call(2, s, severity, text); },
        nat: (kind, p, ct, address, port) => { call(3, kind, p, ct, address, port); },
      };
    })`,
    context,
  ) as (call: (...args: unknown[]) => unknown, logEnabled: boolean) => GeneratedRuntime;
  const sandboxRt = bridge((op, ...args: unknown[]) => {
    switch (op) {
      case 0:
        return rt.ctState(args[0] as number);
      case 1:
        return rt.log(args[0] as never, args[1] as string);
      case 2:
        return rt.syslog(args[0] as never, args[1] as number, args[2] as string);
      default:
        return rt.nat(args[0] as 'dnat', args[1] as never, args[2] as number, args[3] as number, args[4] as number);
    }
  }, rt.logEnabled);
  const factory = vm.runInContext(source, context, { filename: 'nacl-generated.js' }) as (rt: GeneratedRuntime, t: TraceSink) => GeneratedModule;
  return factory(sandboxRt, trace);
}
