/*
 * A bad cable for end-to-end tests, run as a process of its own:
 *
 *   node scripts/run-ts.mjs test/helpers/lossy-link.ts TAP PORT APPLIANCE_PORT DROP CORRUPT SEED
 *
 * It opens the TAP device TAP (its kernel side becomes a test host's NIC)
 * and relays frames between it and an appliance booted with
 * `--nic N=udp:APPLIANCE_PORT,127.0.0.1:PORT`, losing a DROP share of the
 * frames each way and flipping a bit in a CORRUPT share (the fault
 * injector, seeded). It prints `ready` once both ends are open, and its
 * fault counters as one JSON line when it gets SIGTERM. A process of its
 * own, so the test's synchronous commands do not stall the relay.
 */
import { faultInjector, xorshift32 } from '../../runtime/drivers/fault-injector.ts';
import { openTap } from '../../runtime/drivers/tap.ts';
import { openUdpNic } from '../../runtime/drivers/udp.ts';

const [tapName, port, appliancePort, drop, corrupt, seed] = process.argv.slice(2);
const tap = faultInjector(openTap(tapName!), { dropRate: Number(drop), corruptRate: Number(corrupt), rng: xorshift32(Number(seed)) });
const udp = await openUdpNic(Number(port), '127.0.0.1', Number(appliancePort));
tap.onReceive((frames) => udp.send(frames));
udp.onReceive((frames) => tap.send(frames));
process.stdout.write('ready\n');
process.on('SIGTERM', async () => {
  process.stdout.write(`${JSON.stringify(tap.counters)}\n`);
  await tap.close();
  await udp.close();
  process.exit(0);
});
