import { functionRuns } from '../compiler/codegen/segments.ts';
import type { Ir } from '../compiler/ir.ts';

/*
 * The user functions a packet arriving on an Iface meets, in order, as far as
 * the chains alone decide it (nacl-language.md 8.2): prerouting, then input
 * when it is for the Iface, else the Gateway's forward chain when the Iface
 * forwards. Grouped as the appliance runs them: each run of consecutive
 * functions in a chain is one segment (compiler/codegen/segments.ts). Used by
 * `nacl bench --mode filter`, which measures the compiled chains without the
 * rest of the data path.
 */
export function filterPath(ir: Ir, ifaceName: string, destination: number): string[][] | undefined {
  const iface = ir.ifaces.find((i) => i.name === ifaceName);
  if (!iface) return undefined;
  const path = functionRuns(iface.chains.prerouting);
  const address = iface.address ? ipNumber(iface.address) : -1;
  const broadcast = iface.address && iface.prefixLength !== null ? (address | (~(iface.prefixLength === 0 ? 0 : (0xffffffff << (32 - iface.prefixLength)) >>> 0) >>> 0)) >>> 0 : -1;
  if (destination === address || destination === broadcast || destination === 0xffffffff) path.push(...functionRuns(iface.chains.input));
  else if (iface.forwarding && ir.gateway) path.push(...functionRuns(ir.gateway.forward.map((name) => ({ kind: 'function', function: name }))));
  return path;
}

function ipNumber(text: string): number {
  return text.split('.').reduce((n, o) => n * 256 + Number(o), 0) >>> 0;
}
