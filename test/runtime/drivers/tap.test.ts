import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { formatMac } from '../../../runtime/drivers/mac.ts';
import { openTap, type TapNic } from '../../../runtime/drivers/tap.ts';
import { ROOT } from '../../helpers/examples.ts';
import { describeRealNetwork, ip, Netns, testIfname } from '../../helpers/netns.ts';
import { arpReply, arpRequest, BROADCAST, icmpEchoRequest, ipv4, readArp, readIpv4 } from '../../helpers/raw-frames.ts';

// The kernel's side of the link lives in the test's namespace; the driver is
// a host on it with its own MAC and address (never anything on the host's
// own network: the device is moved out of the root namespace before it is
// given an address or brought up).
const KERNEL_IP = '10.199.0.1';
const APPLIANCE_IP = '10.199.0.2';
const NOBODY_IP = '10.199.0.3';
const APPLIANCE_MAC = new Uint8Array([0x02, 0x4e, 0x41, 0x43, 0x4c, 0x01]);
const WAIT = { timeout: 3000, interval: 10 };
const ADDON = join(ROOT, 'build', 'Release', 'nacl_tap.node');

/** Sends `count` UDP datagrams from inside the namespace; returns once the kernel took them all. */
function udpFromNamespace(ns: Netns, count: number, host: string, port: number): void {
  const script = `
    const s = require('node:dgram').createSocket('udp4');
    const [count, host, port] = process.argv.slice(1);
    let left = +count;
    for (let i = 0; i < +count; i++) s.send(Buffer.from('nacl ' + i), +port, host, () => { if (--left === 0) s.close(); });`;
  ns.exec(process.execPath, ['-e', script, String(count), host, String(port)]);
}

describe('tap NIC without privileges', () => {
  it('refuses a name longer than 15 bytes with a clear message', () => {
    expect(() => openTap('a-name-of-16-chr')).toThrow(/16 bytes long; Linux allows at most 15/);
  });

  it('refuses a name with a slash', () => {
    expect(() => openTap('a/b')).toThrow(/contains '\/'/);
  });
});

describeRealNetwork('tap NIC attached to a kernel in a network namespace', () => {
  let ns: Netns | undefined;
  let tap: TapNic | undefined;
  const name = testIfname();
  /** Every frame received, with the number of the batch it came in. */
  const seen: { batch: number; frame: Uint8Array }[] = [];
  const batchSizes: number[] = [];
  const sent: Uint8Array[] = [];

  function nic(): TapNic {
    if (tap === undefined) throw new Error('setup failed');
    return tap;
  }

  function send(frame: Uint8Array): void {
    sent.push(frame);
    nic().send([frame]);
  }

  async function waitFor<T>(what: string, find: (frame: Uint8Array) => T | undefined): Promise<T> {
    return vi.waitFor(() => {
      for (const { frame } of seen) {
        const found = find(frame);
        if (found !== undefined) return found;
      }
      throw new Error(`no frame received: ${what}`);
    }, WAIT);
  }

  function cleanup(): void {
    tap?.close();
    tap = undefined;
    ns?.delete();
    ns = undefined;
  }

  beforeAll(() => {
    try {
      ns = new Netns();
      tap = openTap(name, { mac: APPLIANCE_MAC, up: false });
      // The fd stays attached while the device moves to the namespace.
      ip('link', 'set', name, 'netns', ns.name);
      ns.sh(`echo 1 > /proc/sys/net/ipv6/conf/${name}/disable_ipv6 2>/dev/null || true`);
      ns.ip('addr', 'add', `${KERNEL_IP}/24`, 'dev', name);
      ns.ip('link', 'set', name, 'up');
      // A fixed neighbour, so the kernel sends to the appliance without asking
      // first even while this process is blocked and cannot answer ARP.
      ns.ip('neigh', 'replace', APPLIANCE_IP, 'lladdr', formatMac(APPLIANCE_MAC), 'dev', name, 'nud', 'permanent');
      let batch = 0;
      tap.onReceive((frames) => {
        batch++;
        batchSizes.push(frames.length);
        for (const f of frames) {
          seen.push({ batch, frame: Uint8Array.from(f) });
          // Answer for the appliance's address, as a host on the link would.
          const arp = readArp(f);
          if (arp?.op === 1 && arp.targetIp === APPLIANCE_IP) {
            send(arpReply(APPLIANCE_MAC, ipv4(APPLIANCE_IP), arp.senderMac, ipv4(arp.senderIp)));
          }
        }
      });
    } catch (e) {
      cleanup();
      throw e;
    }
  });

  afterAll(cleanup);

  it('reports the device MTU and the MAC of the kernel side apart from its own', () => {
    expect(nic().mtu).toBe(1500);
    expect(nic().mac).toEqual(APPLIANCE_MAC);
    expect(nic().kernelMac).toHaveLength(6);
    expect(nic().kernelMac).not.toEqual(APPLIANCE_MAC);
    expect(nic().created).toBe(true);
    expect(ns!.ip('link', 'show', name)).toContain(formatMac(nic().kernelMac));
  });

  it('delivers the kernel ARP reply to an ARP request it sends', async () => {
    send(arpRequest(APPLIANCE_MAC, ipv4(APPLIANCE_IP), ipv4(KERNEL_IP)));
    const reply = await waitFor('ARP reply', (f) => {
      const arp = readArp(f);
      return arp?.op === 2 && arp.senderIp === KERNEL_IP ? arp : undefined;
    });
    expect(reply).toMatchObject({
      dst: APPLIANCE_MAC,
      src: nic().kernelMac,
      senderMac: nic().kernelMac,
      targetMac: APPLIANCE_MAC,
      targetIp: APPLIANCE_IP,
    });
  });

  it('delivers the kernel echo reply to an ICMP echo request it sends, payload intact', async () => {
    const data = Uint8Array.from({ length: 56 }, (_, i) => (i * 13) & 0xff);
    send(icmpEchoRequest(APPLIANCE_MAC, nic().kernelMac, ipv4(APPLIANCE_IP), ipv4(KERNEL_IP), 0x4e41, 7, data));
    const reply = await waitFor('ICMP echo reply', (f) => {
      const ip4 = readIpv4(f);
      return ip4?.protocol === 1 && ip4.payload[0] === 0 && ip4.srcIp === KERNEL_IP ? ip4 : undefined;
    });
    expect(reply.dst).toEqual(APPLIANCE_MAC);
    expect(reply.dstIp).toBe(APPLIANCE_IP);
    expect(Array.from(reply.payload.subarray(4, 8))).toEqual([0x4e, 0x41, 0, 7]);
    expect(reply.payload.subarray(8)).toEqual(data);
  });

  it('receives the ARP requests the kernel broadcasts for an address nobody has', async () => {
    udpFromNamespace(ns!, 1, NOBODY_IP, 9);
    const request = await waitFor('ARP request', (f) => {
      const arp = readArp(f);
      return arp?.op === 1 && arp.targetIp === NOBODY_IP ? arp : undefined;
    });
    expect(request).toMatchObject({ dst: BROADCAST, src: nic().kernelMac, senderIp: KERNEL_IP });
  });

  it('delivers the frames that queued up while the event loop was busy in one batch', async () => {
    // execFileSync blocks this process, so all 20 frames wait in the device's queue.
    udpFromNamespace(ns!, 20, APPLIANCE_IP, 4001);
    const udp = () => seen.filter(({ frame }) => isUdpTo(frame, 4001));
    await vi.waitFor(() => expect(udp()).toHaveLength(20), WAIT);
    expect(new Set(udp().map((s) => s.batch)).size).toBe(1);
  });

  it('reads at most 64 frames per batch and the rest on the next loop turn', async () => {
    const before = batchSizes.length;
    udpFromNamespace(ns!, 100, APPLIANCE_IP, 4002);
    await vi.waitFor(() => expect(seen.filter(({ frame }) => isUdpTo(frame, 4002))).toHaveLength(100), WAIT);
    const sizes = batchSizes.slice(before);
    expect(Math.max(...sizes)).toBe(64);
    expect(sizes.length).toBeGreaterThanOrEqual(2);
  });

  it('counts the frames and bytes it sent and received', () => {
    const c = nic().counters;
    expect(c.tx_frames).toBe(sent.length);
    expect(c.tx_bytes).toBe(sent.reduce((n, f) => n + f.length, 0));
    expect(c.rx_frames).toBe(seen.length);
    expect(c.rx_bytes).toBe(seen.reduce((n, s) => n + s.frame.length, 0));
    expect(c.rx_batches).toBe(batchSizes.length);
    expect(c).toMatchObject({ tx_dropped: 0, tx_errors: 0, rx_errors: 0 });
  });

  it('counts a frame shorter than an Ethernet header as a send error', () => {
    const before = nic().counters.tx_errors;
    nic().send([new Uint8Array(10)]);
    expect(nic().counters.tx_errors).toBe(before + 1);
  });
});

describeRealNetwork('tap NIC lifecycle in the root namespace (devices stay down, without addresses)', () => {
  const cleanups: (() => void)[] = [];
  afterAll(() => {
    for (const c of cleanups.reverse()) {
      try {
        c();
      } catch {
        // Already gone: the test itself removed it.
      }
    }
  });

  function open(name: string): TapNic {
    const tap = openTap(name, { up: false });
    cleanups.push(() => tap.close());
    return tap;
  }

  const exists = (name: string) => spawnSync('ip', ['link', 'show', name], { stdio: 'ignore' }).status === 0;

  it('removes the device it created when it closes', () => {
    const name = testIfname();
    const tap = open(name);
    expect(tap.created).toBe(true);
    expect(exists(name)).toBe(true);
    tap.close();
    expect(exists(name)).toBe(false);
  });

  it('leaves a device made beforehand in place when it closes', () => {
    const name = testIfname();
    ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
    cleanups.push(() => ip('link', 'delete', name));
    const tap = open(name);
    expect(tap.created).toBe(false);
    tap.close();
    expect(exists(name)).toBe(true);
  });

  it('deletes even a device made beforehand when opened with persist: false', () => {
    const name = testIfname();
    ip('tuntap', 'add', 'dev', name, 'mode', 'tap');
    cleanups.push(() => ip('link', 'delete', name));
    openTap(name, { up: false, persist: false }).close();
    expect(exists(name)).toBe(false);
  });

  it('says the device is busy when it is opened twice', () => {
    const name = testIfname();
    open(name);
    let error: (Error & { code?: string }) | undefined;
    try {
      open(name);
    } catch (e) {
      error = e as Error;
    }
    expect(error?.message).toBe(`TAP device ${name} is busy: another file descriptor has it open`);
    expect(error?.code).toBe('EBUSY');
  });

  it('records the error and stops receiving when the device is deleted under it', async () => {
    const name = testIfname();
    const tap = open(name);
    tap.onReceive(() => {});
    ip('link', 'delete', name);
    await vi.waitFor(() => expect(tap.counters.rx_errors).toBe(1), WAIT);
    expect(tap.error).toMatch(new RegExp(`^receiving from ${name} stopped: `));
    expect(exists(name)).toBe(false);
  });

  it('refuses to attach to an interface that is not a TAP device', () => {
    expect(() => open('lo')).toThrow(/cannot attach to lo as a TAP device/);
  });

  it('brings the link up by default', () => {
    // Inside a namespace of its own: an up link in the root namespace would
    // start IPv6 autoconfiguration on the host.
    const ns = new Netns();
    try {
      const name = testIfname();
      const script = `
        const tap = require(${JSON.stringify(ADDON)}).open(${JSON.stringify(name)}, -1, true);
        process.stdout.write(require('node:child_process').execFileSync('ip', ['link', 'show', tap.name], { encoding: 'utf8' }));`;
      expect(ns.exec(process.execPath, ['-e', script])).toMatch(/<[^>]*\bUP\b[^>]*>/);
    } finally {
      ns.delete();
    }
  });

  it('explains that opening a TAP device needs root or CAP_NET_ADMIN', () => {
    // Root without CAP_NET_ADMIN: setpriv drops it from the bounding set, so
    // the node it starts never has it.
    const script = `
      try { require(${JSON.stringify(ADDON)}).open(${JSON.stringify(testIfname())}, -1, false); }
      catch (e) { process.stdout.write(e.code + ': ' + e.message); }`;
    const out = execFileSync('setpriv', ['--bounding-set=-net_admin', '--', process.execPath, '-e', script], { encoding: 'utf8' });
    expect(out).toMatch(/^EPERM: opening a TAP device needs root or CAP_NET_ADMIN/);
  });

  it('explains that /dev/net/tun is missing', () => {
    // An empty /dev/net in a private mount namespace hides the real one from the child only.
    const script = `
      try { require(${JSON.stringify(ADDON)}).open(${JSON.stringify(testIfname())}, -1, false); }
      catch (e) { process.stdout.write(e.code + ': ' + e.message); }`;
    const out = execFileSync(
      'unshare',
      ['--mount', '--', 'sh', '-c', 'mount -t tmpfs none /dev/net && exec "$0" -e "$1"', process.execPath, script],
      { encoding: 'utf8' },
    );
    expect(out).toMatch(/^ENOENT: no \/dev\/net\/tun: load the tun module/);
  });
});

function isUdpTo(frame: Uint8Array, port: number): boolean {
  const ip4 = readIpv4(frame);
  return ip4?.protocol === 17 && ((ip4.payload[2]! << 8) | ip4.payload[3]!) === port;
}
