import type { BenchResult } from './bench.ts';
import type { Ir } from '../compiler/ir.ts';
import type { PacketSpec } from '../runtime/packet-spec.ts';
import { UsageError } from '../cli/io.ts';

/** `--mode dataplane` boots the appliance on memory NICs; it arrives with the runtime core. */
export async function benchDataplane(_ir: Ir, _iface: string, _specs: PacketSpec[], _seconds: number, _flows: number): Promise<BenchResult> {
  throw new UsageError('--mode dataplane is not available yet: the runtime core is not built');
}
