/**
 * The driver part of `nacl boot --nic N=DRIVER:ARGS` (cli.md, "Run side"),
 * parsed into a typed value. Only syntax is checked here; whether the device,
 * file or port is usable is for the driver to say when it opens.
 */
export type DriverSpec =
  | { readonly driver: 'tap'; readonly ifname: string }
  | { readonly driver: 'udp'; readonly localPort: number; readonly remoteHost: string; readonly remotePort: number }
  | { readonly driver: 'memory'; readonly name: string }
  | { readonly driver: 'pcap'; readonly input: string; readonly output?: string };

export type DriverSpecResult = { readonly ok: true; readonly spec: DriverSpec } | { readonly ok: false; readonly message: string };

const USAGE = 'expected tap:IFNAME, udp:LOCALPORT,HOST:PORT, memory:NAME or pcap:IN[,OUT]';

export function parseDriverSpec(text: string): DriverSpecResult {
  const colon = text.indexOf(':');
  if (colon < 0) return fail(`'${text}' names no driver: ${USAGE}`);
  const driver = text.slice(0, colon);
  const args = text.slice(colon + 1);
  switch (driver) {
    case 'tap': {
      const problem = ifnameProblem(args);
      return problem === undefined ? ok({ driver, ifname: args }) : fail(`tap: ${problem}`);
    }
    case 'udp':
      return parseUdp(args);
    case 'memory':
      return args === '' ? fail('memory: the wire needs a name (memory:NAME)') : ok({ driver, name: args });
    case 'pcap': {
      // Split at the first comma: an input path cannot contain one, an output path can.
      const comma = args.indexOf(',');
      const input = comma < 0 ? args : args.slice(0, comma);
      if (input === '') return fail('pcap: the input capture file is missing (pcap:IN[,OUT])');
      if (comma < 0) return ok({ driver, input });
      const output = args.slice(comma + 1);
      if (output === '') return fail('pcap: the output file after the comma is empty (pcap:IN[,OUT])');
      return ok({ driver, input, output });
    }
    default:
      return fail(`unknown driver '${driver}': ${USAGE}`);
  }
}

/**
 * Why Linux would refuse `name` as an interface name, or undefined if it
 * would not: the rules of dev_valid_name() in net/core/dev.c. A "%d" in the
 * name is a template the kernel fills in.
 */
export function ifnameProblem(name: string): string | undefined {
  const bytes = Buffer.byteLength(name);
  if (bytes === 0) return 'the interface name is empty';
  if (bytes > 15) return `interface name '${name}' is ${bytes} bytes long; Linux allows at most 15`;
  if (name === '.' || name === '..') return `'${name}' is not a valid interface name`;
  if (/[/:\s\0]/.test(name)) return `interface name '${name}' contains '/', ':', a NUL or whitespace, which Linux refuses`;
  return undefined;
}

function parseUdp(args: string): DriverSpecResult {
  const form = 'udp:LOCALPORT,HOST:PORT';
  const comma = args.indexOf(',');
  if (comma < 0) return fail(`udp: '${args}' is not ${form}`);
  const localPort = parsePort(args.slice(0, comma));
  if (localPort === undefined) return fail(`udp: local port '${args.slice(0, comma)}' is not a number from 1 to 65535`);
  const remote = args.slice(comma + 1);
  // An IPv6 literal is bracketed, as in URLs and QEMU's own syntax: [::1]:5555.
  const m = /^\[([^\]]+)\]:([^:]*)$/.exec(remote) ?? /^([^:[\]]+):([^:]*)$/.exec(remote);
  if (m === null) return fail(`udp: '${remote}' is not HOST:PORT (write an IPv6 address as [ADDR]:PORT)`);
  const remoteHost = m[1]!;
  if (/\s/.test(remoteHost)) return fail(`udp: host '${remoteHost}' contains whitespace`);
  const remotePort = parsePort(m[2]!);
  if (remotePort === undefined) return fail(`udp: remote port '${m[2]}' is not a number from 1 to 65535`);
  return ok({ driver: 'udp', localPort, remoteHost, remotePort });
}

function parsePort(text: string): number | undefined {
  if (!/^[0-9]{1,5}$/.test(text)) return undefined;
  const port = Number(text);
  return port >= 1 && port <= 65535 ? port : undefined;
}

function ok(spec: DriverSpec): DriverSpecResult {
  return { ok: true, spec };
}

function fail(message: string): DriverSpecResult {
  return { ok: false, message };
}
