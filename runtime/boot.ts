import type { Ir } from '../compiler/ir.ts';
import { Appliance, type ApplianceEnv, type ApplianceOptions } from './appliance.ts';
import { loadGenerated } from './load-generated.ts';
import type { TraceSink } from '../compiler/codegen/runtime-api.ts';

/** An appliance with its generated functions loaded (in a context of their own) and installed. */
export function createAppliance(ir: Ir, code: string, env: ApplianceEnv, options: ApplianceOptions = {}, sink?: TraceSink): Appliance {
  const appliance = new Appliance(ir, env, options);
  appliance.setFunctions(loadGenerated(code, appliance.rt, sink));
  return appliance;
}
