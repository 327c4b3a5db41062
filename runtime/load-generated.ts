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
  // Each service is its own host function, called with fixed arguments: a
  // single dispatcher with rest parameters allocated an array per call, on
  // every packet that tests ct.state.
  const bridge = vm.runInContext(
    `(function (ctState, log, syslog, nat, logEnabled) {
      return {
        logEnabled,
        ctState: (ct) => ctState(ct),
        log: (s, text) => { log(s, text); },
        syslog: (s, severity, text) => { syslog(s, severity, text); },
        nat: (kind, p, ct, address, port) => nat(kind, p, ct, address, port),
      };
    })`,
    context,
  ) as (
    ctState: GeneratedRuntime['ctState'],
    log: GeneratedRuntime['log'],
    syslog: GeneratedRuntime['syslog'],
    nat: GeneratedRuntime['nat'],
    logEnabled: boolean,
  ) => GeneratedRuntime;
  const sandboxRt = bridge(
    (ct) => rt.ctState(ct),
    (s, text) => rt.log(s, text),
    (s, severity, text) => rt.syslog(s, severity, text),
    (kind, p, ct, address, port) => rt.nat(kind, p, ct, address, port),
    rt.logEnabled,
  );
  const factory = vm.runInContext(source, context, { filename: 'nacl-generated.js' }) as (rt: GeneratedRuntime, t: TraceSink) => GeneratedModule;
  return factory(sandboxRt, trace);
}
