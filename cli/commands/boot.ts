import { readImage, type LoadedImage } from '../../compiler/image.ts';
import { parseDriverSpec, type DriverSpec } from '../../runtime/drivers/spec.ts';
import { bootImage, TenderError } from '../../runtime/tender.ts';
import { FACILITY_NAMES, parseFacility, type SyslogSettings } from '../../runtime/syslog-message.ts';
import { parseMac } from '../../runtime/wire/ethernet.ts';
import { parseFormat, readBytes, UsageError } from '../io.ts';

export interface BootOptions {
  nic?: string[];
  logFormat: string;
  metrics?: string;
  pcapOut?: string;
  syslogFacility: string;
  syslogFormat: string;
  mac?: string[];
  lbIdleTimeout: string;
}

/**
 * Options of the form N=VALUE, at most one per NIC key N (lower-cased):
 * `parse` turns each value into what the tender takes, or throws a
 * UsageError that says what is wrong with it.
 */
function perNic<T>(flag: string, form: string, list: readonly string[], parse: (key: string, value: string, text: string) => T): Map<string, T> {
  const out = new Map<string, T>();
  for (const text of list) {
    const eq = text.indexOf('=');
    if (eq <= 0) throw new UsageError(`${flag} ${text}: expected ${form}`);
    const key = text.slice(0, eq).toLowerCase();
    const value = parse(key, text.slice(eq + 1), text);
    if (out.has(key)) throw new UsageError(`${flag} ${key} is given twice`);
    out.set(key, value);
  }
  return out;
}

const MAC_COLONS = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** `--mac N=MAC`: a unicast MAC per NIC key. */
function macSpecs(list: readonly string[]): Map<string, Uint8Array> {
  return perNic('--mac', 'N=MAC, e.g. 0=02:00:5e:10:00:01', list, (_key, value, text) => {
    const mac = value.toLowerCase();
    if (!MAC_COLONS.test(mac)) throw new UsageError(`--mac ${text}: expected N=MAC, e.g. 0=02:00:5e:10:00:01`);
    const bytes = parseMac(mac)!;
    if (bytes[0]! & 1) throw new UsageError(`--mac ${text}: ${mac} is a multicast address; a NIC needs a unicast one`);
    return bytes;
  });
}

function syslogSettings(options: BootOptions): SyslogSettings {
  const facility = parseFacility(options.syslogFacility);
  if (facility === null) throw new UsageError(`--syslog-facility ${options.syslogFacility}: expected a facility name (${FACILITY_NAMES.join(', ')}) or a number 0-23`);
  return { facility, framing: parseFormat(options.syslogFormat, ['rfc5424', 'rfc3164'] as const, 'syslog format') };
}

/** `--lb-idle-timeout SECONDS` in ms; 0 for none. */
function lbIdleTimeout(text: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(text) ? Number(text) : NaN;
  if (!Number.isFinite(seconds) || seconds > 86_400 * 365) throw new UsageError(`--lb-idle-timeout ${text}: expected seconds, e.g. 300 (0 for none)`);
  return Math.round(seconds * 1000);
}

function nicSpecs(list: readonly string[]): Map<string, DriverSpec> {
  return perNic('--nic', 'N=DRIVER:ARGS, e.g. 0=tap:nacl0', list, (key, value, text) => {
    if (!/^\d+$/.test(key) && !MAC_COLONS.test(key)) throw new UsageError(`--nic ${text}: N must be an Iface index or a MAC address`);
    const spec = parseDriverSpec(value);
    if (!spec.ok) throw new UsageError(`--nic ${text}: ${spec.message}`);
    return spec.spec;
  });
}

/** Boots a loaded image and runs until SIGINT/SIGTERM. Kept free of the compiler so boot starts fast. */
export async function start(image: LoadedImage, label: string, options: BootOptions): Promise<number> {
  const logFormat = parseFormat(options.logFormat, ['text', 'json'] as const);
  const syslog = syslogSettings(options);
  let running;
  try {
    running = await bootImage(image, {
      nics: nicSpecs(options.nic ?? []),
      logFormat,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.pcapOut ? { pcapOut: options.pcapOut } : {}),
      write: (line) => process.stdout.write(line + '\n'),
      label,
      syslog,
      macs: macSpecs(options.mac ?? []),
      lbIdleTimeout: lbIdleTimeout(options.lbIdleTimeout ?? '0'),
    });
  } catch (err) {
    if (err instanceof TenderError) throw new UsageError(err.message);
    throw err;
  }
  // Runs until SIGINT or SIGTERM; then stops cleanly. The interval keeps the
  // process alive when every NIC is in-process.
  const keepAlive = setInterval(() => {}, 1 << 30);
  return await new Promise<number>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      clearInterval(keepAlive);
      running.stop().then(
        () => resolve(0),
        () => resolve(1),
      );
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}

/** `nacl boot IMAGE --nic N=DRIVER:ARGS ...` (cli.md). */
export async function runBoot(file: string, options: BootOptions): Promise<number> {
  const loaded = readImage(readBytes(file));
  if (!loaded.ok) throw new UsageError(`${file}: ${loaded.message}`);
  return start(loaded.image, file, options);
}

