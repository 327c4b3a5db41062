import { Command, CommanderError, Option } from 'commander';
import { COMPILER_VERSION } from '../compiler/version.ts';
import { UsageError } from './io.ts';

/*
 * The `nacl` command (cli.md). Thin: each subcommand parses its flags and
 * calls the library; the modules behind a subcommand are loaded only when it
 * runs, so `nacl check` does not pay for the runtime.
 */

type Action = (...args: never[]) => number | Promise<number>;

function run(load: () => Promise<Action>) {
  return async (...args: unknown[]) => {
    const action = await load();
    process.exitCode = await (action as (...a: unknown[]) => number | Promise<number>)(...args);
  };
}

const program = new Command('nacl')
  .description('Compile and run network appliances described in the NaCl language')
  .version(COMPILER_VERSION, '-V, --version')
  .showHelpAfterError('(run nacl help for usage)')
  .exitOverride();

program
  .command('check')
  .description('parse and fully validate configs (.nacl, or the YAML form in .yaml/.yml); print every diagnostic')
  .argument('<file...>', 'config files')
  .addOption(new Option('--format <format>', 'diagnostic output: text (stderr), json or sarif (stdout)').default('text'))
  .action(run(async () => (await import('./commands/check.ts')).runCheck));

program
  .command('fmt')
  .description('print the canonical formatting of each file')
  .argument('<file...>', 'config files')
  .option('--write', 'rewrite the files in place')
  .option('--check', 'print nothing; exit 1 if any file is not formatted')
  .action(run(async () => (await import('./commands/fmt.ts')).runFmt));

program
  .command('build')
  .description('compile a config to an appliance image and print its summary')
  .argument('<file>', 'config file')
  .option('-o, --output <image>', 'image file to write (default ./<basename>.nimg)')
  .addOption(new Option('--emit <what>', 'print instead of writing an image: ir (the IR as JSON) or js (the generated filter code)'))
  .action(run(async () => (await import('./commands/build.ts')).runBuild));

program
  .command('graph')
  .description('print the topology: NICs, Ifaces, VLANs, chains, routes, load balancer')
  .argument('<file>', 'config file')
  .addOption(new Option('--format <format>', 'dot (graphviz) or mermaid').default('dot'))
  .action(run(async () => (await import('./commands/graph.ts')).runGraph));

program
  .command('convert')
  .description('print a .nacl file in the YAML form (function bodies stay NaCl text)')
  .argument('<file>', 'config file')
  .addOption(new Option('--to <form>', 'target form: yaml').default('yaml'))
  .action(run(async () => (await import('./commands/convert.ts')).runConvert));

const collect = (value: string, previous: string[] = []) => [...previous, value];

program
  .command('bench')
  .description('measure how fast the compiled policy decides, in packets/s and ns/packet')
  .argument('<file>', 'config file')
  .requiredOption('--iface <name>', 'the Iface the packets arrive on')
  .option('--packet <spec>', 'a packet to send (repeatable), e.g. "tcp 1.2.3.4:1000 -> 10.0.0.1:80"', collect)
  .option('--random <n>', 'also N random packets biased to the config\'s constants (default 1000 when no --packet)')
  .option('--seconds <s>', 'how long to measure', '3')
  .option('--interpreter', 'run the reference interpreter instead of the compiled code')
  .addOption(new Option('--mode <mode>', 'filter: the compiled chains the destination selects, before any NAT (a port forward\'s forward chain is timed by dataplane); dataplane: the image booted as nacl boot runs it, 64-byte frames from one in-process NIC to another').default('filter'))
  .option('--flows <n>', 'dataplane: spread the packets over N flows')
  .addOption(new Option('--format <format>', 'text or json').default('text'))
  .action(run(async () => (await import('./commands/bench.ts')).runBench));

program
  .command('trace')
  .description('run one packet through the compiled pipeline (no NIC) and show every hook, rule, translation and the verdict')
  .argument('<file>', 'config file')
  .requiredOption('--iface <name>', 'the Iface the packet arrives on')
  .requiredOption('--packet <spec>', 'e.g. "tcp 10.0.0.5:40000 -> 10.0.0.45:80 flags=S" (keys: ttl flags type code len id vlan ct)')
  .addOption(new Option('--format <format>', 'text or json').default('text'))
  .action(run(async () => (await import('./commands/trace.ts')).runTrace));

program
  .command('test')
  .description('check packet expectations (a YAML test file) against a config; exit 1 if any fails')
  .argument('<file>', 'the config (or the tests file, when it names its config)')
  .argument('[tests]', 'the tests file (YAML)')
  .addOption(new Option('--format <format>', 'text, json or junit').default('text'))
  .option('--coverage', 'list the rules no test reached')
  .action(run(async () => (await import('./commands/test.ts')).runTest));

program
  .command('inspect')
  .description("print an image's manifest and summary")
  .argument('<image>', 'image file (.nimg)')
  .addOption(new Option('--format <format>', 'text or json').default('text'))
  .action(run(async () => (await import('./commands/inspect.ts')).runInspect));

const bootOptions = (cmd: Command) =>
  cmd
    .option('--nic <N=DRIVER:ARGS>', 'attach NIC N (the Iface index, or its MAC): tap:IFNAME, udp:LPORT,HOST:PORT, memory:NAME, pcap:IN[,OUT] (repeatable)', collect)
    .addOption(new Option('--log-format <format>', 'text or json').default('text'))
    .option('--metrics <host:port>', 'serve Prometheus metrics over HTTP at http://HOST:PORT/metrics (on the host, not the appliance NICs)')
    .option('--pcap-out <dir>', 'record every NIC to DIR/nicN.pcap')
    .option('--mac <N=MAC>', 'give NIC N this MAC instead of the one derived from the image (repeatable; for several appliances of one image on one link)', collect)
    .addOption(new Option('--syslog-facility <facility>', 'facility of syslog(...) messages: a name (kern, user, daemon, local0-local7, ...) or 0-23').default('user'))
    .addOption(new Option('--syslog-format <format>', 'framing of syslog(...) datagrams: rfc5424 or rfc3164 (BSD)').default('rfc5424'))
    .addOption(new Option('--lb-idle-timeout <seconds>', 'reset a load-balancer session (RST both ways) after SECONDS without progress (no byte in, none acknowledged); 0 = never').default('0'));

bootOptions(
  program
    .command('boot')
    .description('boot an image on NICs; prints a ready line, stops on SIGINT/SIGTERM')
    .argument('<image>', 'image file (.nimg)'),
).action(run(async () => (await import('./commands/boot.ts')).runBoot));

bootOptions(
  program
    .command('run')
    .description('build a config in memory and boot it (as build + boot)')
    .argument('<file>', 'config file'),
).action(run(async () => (await import('./commands/run.ts')).runRun));

program
  .command('demo')
  .description('boot the demo appliance (examples/demo.nacl) on a simulated network, send traffic, show what happened (npm run demo)')
  .argument('[file]', 'the config to demonstrate (default examples/demo.nacl; it needs the wan/lan/dmz layout)')
  .action(run(async () => (await import('./commands/demo.ts')).runDemoCommand));

// A reader that stops early (`nacl fmt ... | head`) closes the pipe: stop
// quietly, as a tool that SIGPIPE ends does, not with a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

async function main(): Promise<void> {
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other commander error is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`nacl: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`nacl: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 70;
  }
}

await main();
