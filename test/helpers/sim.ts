import { generateModule } from '../../compiler/codegen/emit.ts';
import { compileSource } from '../../compiler/compile.ts';
import type { Appliance, ApplianceHost } from '../../runtime/appliance.ts';
import { createAppliance } from '../../runtime/boot.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { attach, MemoryNetwork, type MemoryNic } from '../../runtime/drivers/memory.ts';
import { buildDatagram, parsePacketSpec } from '../../runtime/packet-spec.ts';
import { SimHost } from '../../runtime/sim-host.ts';
import type { SyslogSettings } from '../../runtime/syslog-message.ts';
import { ethernet } from './raw-frames.ts';

/**
 * A simulated network around an appliance: one memory switch per appliance
 * NIC, hosts plugged into the switches, a manual clock, and `settle()` to
 * deliver every frame in flight.
 */
export class Sim {
  readonly clock = new ManualClock();
  readonly net = new MemoryNetwork({ clock: () => this.clock.now() });
  readonly appliance: Appliance;
  readonly logs: string[] = [];
  readonly nics = new Map<string, MemoryNic>();
  private readonly hosts: SimHost[] = [];

  constructor(config: string, nicCount = 2, mtus: readonly number[] = [], env: { host?: ApplianceHost; syslog?: SyslogSettings } = {}) {
    const compiled = compileSource(config, 'sim.nacl');
    const errors = compiled.diagnostics.filter((d) => d.severity === 'error');
    if (!compiled.ir) throw new Error(errors.map((d) => `${d.code} ${d.span.startLine}: ${d.message}`).join('\n'));
    for (let i = 0; i < nicCount; i++) {
      const nic = this.net.createNic({ name: `appliance.nic${i}`, mac: this.applianceMac(i), mtu: mtus[i] ?? 1500 });
      attach(nic, this.net.switch(`seg${i}`));
      this.nics.set(String(i), nic);
    }
    this.appliance = createAppliance(compiled.ir, generateModule(compiled.ir), {
      nics: this.nics,
      clock: this.clock,
      log: (line) => this.logs.push(line),
      random: () => 0.5,
      ...env,
    });
    this.appliance.start();
    this.settle();
  }

  host(name: string, segment: number, address: string, prefix: number, gateway?: string): SimHost {
    const nic = this.net.createNic({ name, mac: Uint8Array.of(0x02, 0, 0, 0, 0xb0 + segment, this.hosts.length) });
    attach(nic, this.net.switch(`seg${segment}`));
    const host = new SimHost({ name, address, prefix, ...(gateway ? { gateway } : {}), nic, clock: this.clock });
    this.hosts.push(host);
    this.settle();
    return host;
  }

  /** The MAC of the appliance's NIC `i`. */
  applianceMac(i = 0): Uint8Array {
    return Uint8Array.of(0x02, 0, 0, 0, 0xa0, i);
  }

  /**
   * A bare NIC on segment `segment`, for hand-built frames no simulated host
   * would send (odd tags, unknown EtherTypes, broken headers): `send` frames
   * a payload from it to `dst` and delivers it.
   */
  rawNic(segment = 0): { readonly mac: Uint8Array; send(dst: Uint8Array, etherType: number, payload: Uint8Array): void } {
    const mac = Uint8Array.of(0x02, 0, 0, 0, 0xc0, 9 + segment);
    const nic = this.net.createNic({ name: `raw${segment}`, mac });
    attach(nic, this.net.switch(`seg${segment}`));
    return {
      mac,
      send: (dst, etherType, payload) => {
        nic.send([ethernet(dst, mac, etherType, payload)]);
        this.settle();
      },
    };
  }

  /** Delivers frames until the network is quiet, letting `ms` of time pass in 100 ms steps. */
  settle(ms = 0): void {
    this.net.flush();
    for (let t = 0; t < ms; t += 100) {
      this.clock.advance(100, () => this.net.flush());
      this.net.flush();
    }
  }
}

/** The IPv4 datagram a packet SPEC describes (`nacl trace` syntax). */
export function datagramOf(spec: string): Uint8Array {
  const parsed = parsePacketSpec(spec);
  if (!parsed.ok) throw new Error(parsed.message);
  return buildDatagram(parsed.spec);
}

