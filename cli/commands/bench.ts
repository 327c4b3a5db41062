import { benchFilter, type BenchResult } from '../../appliances/bench.ts';
import { CT_STATE } from '../../compiler/ir.ts';
import { randomSpecs } from '../../appliances/random-packets.ts';
import { buildDatagram, parsePacketSpec, type PacketSpec } from '../../runtime/packet-spec.ts';
import { parseFormat, UsageError } from '../io.ts';
import { loadConfig } from '../load.ts';

export interface BenchOptions {
  iface: string;
  packet?: string[];
  random?: string;
  seconds: string;
  interpreter?: boolean;
  mode: string;
  flows?: string;
  format: string;
}

/** `nacl bench FILE --iface NAME ...` (cli.md). */
export async function runBench(file: string, options: BenchOptions): Promise<number> {
  const format = parseFormat(options.format, ['text', 'json'] as const);
  const mode = parseFormat(options.mode, ['filter', 'dataplane'] as const, 'mode');
  const seconds = Number(options.seconds);
  if (!(seconds > 0 && seconds <= 3600)) throw new UsageError(`--seconds must be a number of seconds between 0 and 3600, not '${options.seconds}'`);
  if (mode === 'dataplane' && options.interpreter) {
    throw new UsageError('--interpreter applies to --mode filter only: the dataplane runs the image, which holds compiled code');
  }
  if (mode === 'filter' && options.flows !== undefined) throw new UsageError('--flows applies to --mode dataplane only');
  const compiled = loadConfig(file, { quietWarnings: true });
  if (!compiled) return 1;
  const ir = compiled.ir!;
  if (!ir.ifaces.some((i) => i.name === options.iface)) {
    throw new UsageError(`no Iface named ${options.iface} in ${file} (Ifaces: ${ir.ifaces.map((i) => i.name).join(', ') || 'none'})`);
  }
  const specs: PacketSpec[] = [];
  for (const text of options.packet ?? []) {
    const parsed = parsePacketSpec(text);
    if (!parsed.ok) throw new UsageError(`--packet "${text}": ${parsed.message}`);
    specs.push(parsed.spec);
  }
  const random = options.random === undefined ? (specs.length ? 0 : 1000) : Number(options.random);
  if (!Number.isInteger(random) || random < 0) throw new UsageError(`--random must be a whole number, not '${options.random}'`);
  specs.push(...randomSpecs(ir, random));
  if (specs.length === 0) throw new UsageError('no packets to measure: give --packet SPEC, or --random N with N of at least 1');
  let result: BenchResult;
  if (mode === 'dataplane' && specs.some((s) => s.ct !== undefined)) {
    throw new UsageError('ct= applies to --mode filter only: the dataplane tracks real flows, so its packets are in whatever state conntrack gives them');
  }
  if (mode === 'dataplane') {
    const { benchDataplane } = await import('../../appliances/bench-dataplane.ts');
    const { runtimeBundle } = await import('../runtime-bundle.ts');
    const flows = options.flows === undefined ? 1 : Number(options.flows);
    if (!Number.isInteger(flows) || flows < 1) throw new UsageError(`--flows must be a positive whole number, not '${options.flows}'`);
    result = await benchDataplane(ir, options.iface, specs, seconds, flows, runtimeBundle());
  } else {
    // ct=invalid means no conntrack entry: what every function drops.
    const cts = specs.map((s) => (s.ct === undefined ? CT_STATE.new : s.ct === 'invalid' ? -1 : CT_STATE[s.ct]));
    result = benchFilter(ir, options.iface, specs.map(buildDatagram), seconds, options.interpreter ? 'interpreter' : 'compiled', cts);
  }
  if (format === 'json') {
    process.stdout.write(JSON.stringify(result, null, 2) + '\n');
  } else {
    const n = (x: number, d = 0) => x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
    process.stdout.write(
      [
        `nacl bench ${file} --iface ${options.iface}: mode ${result.mode}, ${result.engine}, ${result.distinctPackets} distinct packets`,
        `${'packets'.padStart(12)} ${'seconds'.padStart(8)} ${'packets/s'.padStart(14)} ${'ns/packet'.padStart(10)}  verdicts`,
        `${n(result.packets).padStart(12)} ${n(result.seconds, 2).padStart(8)} ${n(result.packetsPerSecond).padStart(14)} ${n(result.nsPerPacket, 1).padStart(10)}  ${result.verdicts.accept} accept, ${result.verdicts.drop} drop`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}
