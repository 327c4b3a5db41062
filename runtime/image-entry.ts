import type { GeneratedModule, GeneratedRuntime, TraceSink } from '../compiler/codegen/runtime-api.ts';
import type { Ir } from '../compiler/ir.ts';
import { Appliance, type ApplianceEnv } from './appliance.ts';

/*
 * The entry point of the runtime bundled into every image. The tender runs
 * the bundle in a vm context of its own (it defines `NaclRuntime` there),
 * evaluates the image's generated code in the same context, and calls boot
 * with what it hands the appliance: NICs, a clock, a log sink.
 */

const NO_TRACE: TraceSink = { enter() {}, condition: (_r, _f, x) => x, guard: (_r, _p, x) => x, statement() {} };

export interface BootedAppliance {
  readonly ready: boolean;
  stop(): void;
  statistics(): Record<string, number>;
  ruleHits(): Record<string, number>;
}

export function boot(ir: Ir, factory: (rt: GeneratedRuntime, trace: TraceSink) => GeneratedModule, env: ApplianceEnv): BootedAppliance {
  const appliance = new Appliance(ir, env);
  appliance.setFunctions(factory(appliance.rt, NO_TRACE));
  appliance.start();
  return {
    ready: appliance.ready,
    stop: () => appliance.stop(),
    statistics: () => appliance.statistics(),
    ruleHits: () => Object.fromEntries(appliance.ruleIds.map((id, i) => [id, appliance.ruleHits[i]!])),
  };
}
