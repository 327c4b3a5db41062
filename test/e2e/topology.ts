import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ip, Netns, testIfname } from '../helpers/netns.ts';
import { nacl } from '../helpers/cli.ts';
import { ROOT } from '../helpers/examples.ts';

/*
 * Real-network topologies for end-to-end tests: the appliance runs as a real
 * `nacl boot` process with TAP NICs; each TAP is moved into a network
 * namespace of the test's own, where it is that host's NIC, with the
 * host's address and routes. Nothing is configured in the root namespace;
 * teardown kills the appliance (its TAPs vanish with it) and deletes the
 * namespaces, whatever happened.
 */

export interface HostSpec {
  /** The appliance NIC (Iface index) this host is cabled to. */
  readonly nic: number;
  /** CIDR notation; empty for a host that only sends raw frames. */
  readonly address: string;
  readonly gateway?: string;
  /** A Linux VLAN sub-interface (`ip link add ... type vlan id N`) carries the address. */
  readonly vlan?: number;
}

export interface Host {
  readonly ns: Netns;
  readonly tap: string;
  /** The interface the address is on (the TAP, or its VLAN sub-interface). */
  readonly dev: string;
  readonly address: string;
}

export class Topology {
  readonly dir = mkdtempSync(join(tmpdir(), 'nacl-e2e-'));
  readonly hosts: Host[] = [];
  readonly output: string[] = [];
  readonly metricsPort = 20000 + Math.floor(Math.random() * 20000);
  private child: ChildProcess | null = null;

  /**
   * Builds the config into an image and boots it with one TAP per NIC,
   * except the NICs `drivers` gives another driver spec (no TAP name then);
   * `flags` go to `nacl boot` as they are.
   */
  async boot(config: string, nicCount: number, drivers: Readonly<Record<number, string>> = {}, flags: readonly string[] = []): Promise<string[]> {
    writeFileSync(join(this.dir, 'appliance.nacl'), config);
    const image = join(this.dir, 'appliance.nimg');
    const built = nacl(['build', join(this.dir, 'appliance.nacl'), '-o', image]);
    if (built.status !== 0) throw new Error(`build failed: ${built.stderr}`);
    const taps = Array.from({ length: nicCount }, (_, i) => (drivers[i] === undefined ? testIfname() : ''));
    const args = [join(ROOT, 'dist', 'nacl.js'), 'boot', image, '--pcap-out', this.dir, '--metrics', `127.0.0.1:${this.metricsPort}`];
    taps.forEach((tap, i) => args.push('--nic', `${i}=${drivers[i] ?? `tap:${tap}`}`));
    args.push(...flags);
    this.child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => this.output.push(...String(d).split('\n').filter(Boolean)));
    this.child.stderr!.on('data', (d) => this.output.push(...String(d).split('\n').filter(Boolean)));
    for (let i = 0; i < 200 && !this.output.some((l) => l.startsWith('ready:')); i++) {
      if (this.child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!this.output.some((l) => l.startsWith('ready:'))) throw new Error(`the appliance did not get ready:\n${this.output.join('\n')}`);
    return taps;
  }

  /** Moves a TAP into a new namespace and configures the host there. */
  attach(tap: string, spec: HostSpec): Host {
    const ns = new Netns();
    // Registered before anything can fail, so teardown always removes it.
    const host = { ns, tap, dev: tap, address: spec.address.split('/')[0]! };
    this.hosts.push(host);
    ip('link', 'set', tap, 'netns', ns.name);
    ns.ip('link', 'set', 'lo', 'up');
    ns.ip('link', 'set', tap, 'up');
    let dev = tap;
    if (spec.vlan !== undefined) {
      dev = `${tap.slice(0, 10)}.${spec.vlan}`;
      ns.ip('link', 'add', 'link', tap, 'name', dev, 'type', 'vlan', 'id', String(spec.vlan));
      ns.ip('link', 'set', dev, 'up');
    }
    if (spec.address) ns.ip('addr', 'add', spec.address, 'dev', dev);
    if (spec.gateway) ns.ip('route', 'add', 'default', 'via', spec.gateway);
    const configured = { ...host, dev };
    this.hosts[this.hosts.indexOf(host)] = configured;
    return configured;
  }

    /** Counters of the running appliance, from its metrics endpoint. */
  async counters(): Promise<Record<string, number>> {
    const url = `http://127.0.0.1:${this.metricsPort}/metrics`;
    // A kept-alive connection the appliance closed while a synchronous command blocked the test's
    // event loop is only found closed when reused: that fails once, and a new connection does not.
    const text = await (await fetch(url).catch(() => fetch(url))).text();
    const out: Record<string, number> = {};
    for (const m of text.matchAll(/^nacl_counter\{name="([^"]+)"\} (\d+)$/gm)) out[m[1]!] = Number(m[2]);
    return out;
  }

  /** Polls the metrics endpoint until counter `name` reads `value`; throws after `ms` with the appliance's output. */
  async waitForCounter(name: string, value: number, ms = 20_000): Promise<void> {
    const deadline = Date.now() + ms;
    let counters = await this.counters();
    while (counters[name] !== value) {
      if (Date.now() > deadline) throw new Error(`${name} is ${counters[name]}, not ${value}, after ${ms} ms:\n${this.output.join('\n')}`);
      await new Promise((r) => setTimeout(r, 200));
      counters = await this.counters();
    }
  }

  /** Stops the appliance (SIGTERM, so the pcaps are flushed) and removes every namespace. */
  async teardown(): Promise<void> {
    if (this.child && this.child.exitCode === null) {
      const exited = new Promise((r) => this.child!.once('exit', r));
      this.child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.child.exitCode === null) this.child.kill('SIGKILL');
    }
    for (const h of this.hosts) {
      try {
        h.ns.delete();
      } catch {
        // already gone
      }
    }
  }
}

/** Whether this kernel can make 802.1Q VLAN devices (some VM kernels lack the 8021q module). */
export function kernelHasVlans(): boolean {
  const ns = new Netns();
  try {
    ns.ip('link', 'add', 'name', 'probe', 'type', 'dummy');
    ns.ip('link', 'add', 'link', 'probe', 'name', 'probe.5', 'type', 'vlan', 'id', '5');
    return true;
  } catch {
    return false;
  } finally {
    ns.delete();
  }
}

/**
 * A shell script's output in the host's namespace, stdout and stderr, whether
 * or not it failed. A script still running after `timeout` ms is killed, and
 * the output says so, so that an assertion on it shows why it is short.
 */
export function shOutput(h: Host, script: string, timeout = 10_000): string {
  try {
    return h.ns.sh(`${script} 2>&1`, timeout);
  } catch (err) {
    const { stdout, stderr, signal } = err as { stdout?: string; stderr?: string; signal?: string };
    const killed = signal ? `[killed by ${signal} after ${timeout} ms]` : '';
    return String(stdout ?? '') + String(stderr ?? '') + killed;
  }
}

/** Polls `check` every 100 ms until it holds; throws after `ms`, with `detail()` in the message. */
export async function waitFor(check: () => boolean, ms = 5000, detail: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting ${detail()}`);
}
