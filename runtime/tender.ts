import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import vm from 'node:vm';
import type { GeneratedModule, GeneratedRuntime, TraceSink } from '../compiler/codegen/runtime-api.ts';
import type { LoadedImage } from '../compiler/image.ts';
import type { ApplianceEnv } from './appliance.ts';
import { systemClock } from './clock.ts';
import { openMemoryNic } from './drivers/memory.ts';
import type { Nic } from './drivers/nic.ts';
import { openPcapNic, PcapWriter, recordNic } from './drivers/pcap.ts';
import { StackSampler } from './stack-sampler.ts';
import { parseMac } from './wire/ethernet.ts';
import type { SyslogSettings } from './syslog-message.ts';
import type { DriverSpec } from './drivers/spec.ts';
import type { BootedAppliance } from './image-entry.ts';

/*
 * The tender (architecture.md): the host program that boots an image. It
 * opens the NICs the command line names, gives the appliance a clock and a
 * log sink, and runs the image's runtime and generated code in a vm context
 * that holds nothing else - no require, no process, no fs.
 */

export interface TenderOptions {
  /** Driver per NIC key (Iface index, or MAC for MAC-indexed Ifaces). */
  readonly nics: ReadonlyMap<string, DriverSpec>;
  readonly logFormat: 'text' | 'json';
  readonly pcapOut?: string;
  /** HOST:PORT for Prometheus metrics over HTTP, served by the tender. */
  readonly metrics?: string;
  readonly write: (line: string) => void;
  /** Label of the image in log lines. */
  readonly label: string;
  /** Facility and framing of syslog(...) messages; user and RFC 5424 when absent. */
  readonly syslog?: SyslogSettings;
  /** MACs the operator gives NICs, instead of the ones derived from the image. */
  readonly macs?: ReadonlyMap<string, Uint8Array>;
  /** ms without progress after which a load-balancer session is reset (--lb-idle-timeout); none when absent. */
  readonly lbIdleTimeout?: number;
}

export interface RunningAppliance {
  readonly appliance: BootedAppliance;
  readonly nics: ReadonlyMap<string, Nic>;
  readonly metricsAddress: string | null;
  stop(): Promise<void>;
}

export class TenderError extends Error {}

/** A NIC's MAC: the Iface's MAC index, else derived from the image hash and the NIC number. */
export function nicMac(image: LoadedImage, key: string): Uint8Array {
  if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(key)) return parseMac(key)!;
  const h = createHash('sha256').update(`${image.manifest.contentSha256}/${key}`).digest();
  return Uint8Array.of(0x02, h[0]!, h[1]!, h[2]!, h[3]!, h[4]!);
}

async function openDriver(spec: DriverSpec, mac: Uint8Array, key: string): Promise<Nic> {
  switch (spec.driver) {
    case 'memory':
      return openMemoryNic(spec.name, { name: `nic${key}`, mac });
    case 'tap': {
      const { openTap } = await import('./drivers/tap.ts');
      return openTap(spec.ifname, { mac });
    }
    case 'udp': {
      const { openUdpNic } = await import('./drivers/udp.ts');
      return openUdpNic(spec.localPort, spec.remoteHost, spec.remotePort, { mac });
    }
    case 'pcap':
      return openPcapNic({ input: spec.input, ...(spec.output ? { output: spec.output } : {}), mac });
  }
}

/** The parts of an image the appliance runs: its runtime bundle, generated code and IR. */
export type ImageParts = Pick<LoadedImage, 'runtime' | 'code' | 'ir'>;

/**
 * Runs an image's runtime and generated code in a vm context of their own
 * and boots the appliance on `env`: the one way an image's code is run,
 * by `nacl boot` and by `nacl bench --mode dataplane` alike.
 */
export function instantiateImage(image: ImageParts, env: ApplianceEnv, label: string): BootedAppliance {
  const context = vm.createContext(Object.create(null), { name: `nacl:${label}`, codeGeneration: { strings: false, wasm: false } });
  vm.runInContext(image.runtime, context, { filename: 'nacl-runtime.js' });
  const runtime = vm.runInContext('NaclRuntime', context) as { boot: (ir: unknown, factory: unknown, env: ApplianceEnv) => BootedAppliance };
  const factory = vm.runInContext(image.code, context, { filename: 'nacl-generated.js' }) as (rt: GeneratedRuntime, t: TraceSink) => GeneratedModule;
  const ir = vm.runInContext(`(${JSON.stringify(image.ir)})`, context);
  return runtime.boot(ir, factory, env);
}

export async function bootImage(image: LoadedImage, options: TenderOptions): Promise<RunningAppliance> {
  const started = performance.now();
  const required = image.manifest.nics.map((n) => ({ key: n.index !== null ? String(n.index) : n.mac!, ifaces: n.ifaces }));
  for (const r of required) {
    if (!options.nics.has(r.key)) {
      throw new TenderError(`the image needs NIC ${r.key} (Iface ${r.ifaces.join(', ')}): add --nic ${r.key}=DRIVER:ARGS (tap:IFNAME, udp:LPORT,HOST:PORT, memory:NAME, pcap:IN[,OUT])`);
    }
  }
  for (const key of options.nics.keys()) {
    if (!required.some((r) => r.key === key)) throw new TenderError(`--nic ${key}: the image has no Iface on NIC ${key} (it needs ${required.map((r) => r.key).join(', ') || 'none'})`);
  }
  for (const key of options.macs?.keys() ?? []) {
    if (!options.nics.has(key)) throw new TenderError(`--mac ${key}: no --nic ${key} to give it to`);
  }

  // The metrics port first: one already in use fails the boot before a NIC is opened.
  let appliance: BootedAppliance | undefined;
  const metrics = options.metrics ? await listenMetrics(options.metrics, () => appliance) : null;
  const nics = new Map<string, Nic>();
  const writers: PcapWriter[] = [];
  // What a failed boot must give back, or its open handles keep the process alive.
  const release = async () => {
    for (const nic of nics.values()) await nic.close();
    for (const w of writers) await w.close();
    if (metrics) await new Promise((r) => metrics.server.close(() => r(undefined)));
  };
  try {
    for (const [key, spec] of options.nics) {
      const nic = await openDriver(spec, options.macs?.get(key) ?? nicMac(image, key), key);
      nics.set(key, nic);
      if (options.pcapOut) {
        const writer = await PcapWriter.open(join(options.pcapOut, `nic${key.replace(/:/g, '')}.pcap`));
        writers.push(writer);
        nics.set(key, recordNic(nic, writer));
      }
    }
  } catch (err) {
    await release();
    throw err instanceof TenderError ? err : new TenderError((err as Error).message);
  }

  const emit = (level: string, message: string, fields: Record<string, unknown> = {}) => {
    if (options.logFormat === 'json') options.write(JSON.stringify({ time: new Date().toISOString(), level, msg: message, ...fields }));
    else options.write(message);
  };
  let sampler: StackSampler | undefined;
  const env: ApplianceEnv = {
    nics,
    clock: systemClock(),
    log: (line) => emit('info', line),
    random: Math.random,
    ...(options.syslog ? { syslog: options.syslog } : {}),
    ...(options.lbIdleTimeout ? { lbIdleTimeout: options.lbIdleTimeout } : {}),
    host: {
      memory: () => {
        const m = process.memoryUsage();
        return { used: m.heapUsed, total: m.heapTotal };
      },
      cpuMicros: () => {
        const c = process.cpuUsage();
        return c.user + c.system;
      },
      startStackSampling: () => {
        sampler ??= StackSampler.start();
        return sampler !== undefined;
      },
      stackSamples: () => sampler?.take() ?? { total: 0, functions: [] },
    },
  };

  let booted: BootedAppliance;
  try {
    booted = instantiateImage(image, env, options.label);
  } catch (err) {
    sampler?.stop();
    await release();
    throw err;
  }
  appliance = booted;
  const server = metrics?.server ?? null;
  const metricsAddress = metrics?.address ?? null;

  const bootMs = performance.now() - started;
  const nicList = [...options.nics].map(([k, s]) => `${k}=${describeSpec(s)}`);
  // A fallback address is not configured at boot: DHCP comes first.
  const summary = image.manifest.summary.ifaces.map((i) => `${i.name} ${i.config === 'dhcp-with-fallback' ? `dhcp (fallback ${i.address})` : (i.address ?? i.config)}`);
  emit('info', `ready: ${options.label} (${image.sha256.slice(0, 12)}) nics ${nicList.join(' ')}; ${summary.join(', ')}${metricsAddress ? `; metrics on http://${metricsAddress}/metrics` : ''}`, {
    event: 'ready',
    image: options.label,
    sha256: image.sha256,
    nics: Object.fromEntries(options.nics),
    ifaces: image.manifest.summary.ifaces,
    bootMs: Math.round(bootMs * 100) / 100,
    ...(metricsAddress ? { metrics: metricsAddress } : {}),
  });

  let stopped = false;
  return {
    appliance: booted,
    nics,
    metricsAddress,
    async stop() {
      if (stopped) return;
      stopped = true;
      booted.stop();
      sampler?.stop();
      for (const nic of nics.values()) await nic.close();
      for (const w of writers) await w.close();
      if (server) await new Promise((r) => server!.close(() => r(undefined)));
      emit('info', `stopped: ${options.label}`, { event: 'stopped' });
    },
  };
}

function describeSpec(s: DriverSpec): string {
  switch (s.driver) {
    case 'memory':
      return `memory:${s.name}`;
    case 'tap':
      return `tap:${s.ifname}`;
    case 'udp':
      return `udp:${s.localPort},${s.remoteHost}:${s.remotePort}`;
    case 'pcap':
      return `pcap:${s.input}${s.output ? ',' + s.output : ''}`;
  }
}

/** Serves /metrics for whatever appliance `current` gives (none yet: 503). */
async function listenMetrics(text: string, current: () => BootedAppliance | undefined): Promise<{ server: Server; address: string }> {
  const [host, port] = splitHostPort(text);
  const server = createServer((req, res) => {
    if (req.url !== '/metrics') {
      res.writeHead(404).end('not found: try /metrics\n');
      return;
    }
    const appliance = current();
    if (!appliance) res.writeHead(503).end('booting\n');
    else res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(prometheus(appliance));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TenderError(`--metrics ${text}: ${code === 'EADDRINUSE' ? 'the port is in use' : code === 'EADDRNOTAVAIL' ? 'no such local address' : (err as Error).message}`);
  }
  const address = server.address();
  return { server, address: typeof address === 'object' && address ? `${address.address}:${address.port}` : text };
}

function splitHostPort(text: string): [string, number] {
  const at = text.lastIndexOf(':');
  const port = Number(text.slice(at + 1));
  if (at < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new TenderError(`--metrics ${text}: expected HOST:PORT`);
  return [text.slice(0, at).replace(/^\[|\]$/g, '') || '127.0.0.1', port];
}

/** Prometheus text exposition of the appliance's counters and rule hits. */
export function prometheus(appliance: BootedAppliance): string {
  const esc = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
  const lines = ['# HELP nacl_counter Appliance counters by name (packets, drops by reason, conntrack, NAT).', '# TYPE nacl_counter counter'];
  for (const [name, value] of Object.entries(appliance.statistics())) lines.push(`nacl_counter{name="${esc(name)}"} ${value}`);
  lines.push('# HELP nacl_rule_hits_total Packets each rule decided.', '# TYPE nacl_rule_hits_total counter');
  for (const [rule, value] of Object.entries(appliance.ruleHits())) lines.push(`nacl_rule_hits_total{rule="${esc(rule)}"} ${value}`);
  return lines.join('\n') + '\n';
}
