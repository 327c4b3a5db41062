import { describe, expect, it } from 'vitest';
import { DhcpClient, type DhcpAction } from '../../runtime/dhcp-client.ts';
import { DhcpMessageType, DhcpRepr, dhcpRequestRepr, type DhcpRepr as Dhcp } from '../../runtime/wire/dhcp.ts';
import { ip } from './build.ts';

const MAC = Uint8Array.of(2, 0, 0, 0, 0, 7);

function client(): DhcpClient {
  let xid = 0x100;
  return new DhcpClient({ mac: MAC, xid: () => xid++ });
}

function sent(actions: readonly DhcpAction[]): Dhcp[] {
  return actions.filter((a) => a.kind === 'send').map((a) => DhcpRepr.parse(a.message) as Dhcp);
}

function reply(to: Dhcp, type: number, fields: Partial<Dhcp> = {}): Uint8Array {
  const r = dhcpRequestRepr(type, to.xid, MAC);
  return DhcpRepr.emit({ ...r, op: 2, yiaddr: ip('10.1.0.9'), serverId: ip('10.1.0.1'), subnetMask: ip('255.255.0.0'), routers: [ip('10.1.0.254')], leaseTime: 600, ...fields });
}

/** Runs DISCOVER / OFFER / REQUEST / ACK and returns the ACK's actions. */
function bind(c: DhcpClient, offer: Partial<Dhcp> = {}, ack: Partial<Dhcp> = {}): DhcpAction[] {
  const discover = sent(c.start(0))[0]!;
  const request = sent(c.receive(reply(discover, DhcpMessageType.Offer, offer), 10))[0]!;
  return c.receive(reply(request, DhcpMessageType.Ack, ack), 20);
}

describe('the DHCP client', () => {
  it('configures what the ACK says, falling back to the OFFER for options the ACK lacks', () => {
    const actions = bind(client(), { dnsServers: [ip('10.1.0.53')] }, { routers: [], subnetMask: ip('255.255.255.0') });
    expect(actions).toEqual([
      { kind: 'configure', lease: { address: ip('10.1.0.9'), prefix: 24, gateway: ip('10.1.0.254'), dns: ip('10.1.0.53'), server: ip('10.1.0.1'), leaseTime: 600 } },
    ]);
  });

  it('takes the server as the router and the router as the DNS server when the offer names neither', () => {
    const actions = bind(client(), { routers: [] }, { routers: [] });
    expect(actions[0]).toMatchObject({ kind: 'configure', lease: { gateway: ip('10.1.0.1'), dns: ip('10.1.0.1') } });
  });

  it('ignores an offer with neither a router nor a server identifier', () => {
    const c = client();
    const discover = sent(c.start(0))[0]!;
    expect(c.receive(reply(discover, DhcpMessageType.Offer, { routers: [], serverId: null }), 10)).toEqual([]);
    expect(c.state).toBe('selecting');
  });

  it('ignores an offer of an address no host may have (0/8, loopback, multicast, broadcast)', () => {
    const c = client();
    const discover = sent(c.start(0))[0]!;
    for (const bad of ['0.0.0.0', '127.0.0.1', '224.0.0.5', '255.255.255.255']) {
      expect(c.receive(reply(discover, DhcpMessageType.Offer, { yiaddr: ip(bad) }), 10)).toEqual([]);
    }
    expect(c.state).toBe('selecting');
  });

  it('ignores replies for another transaction or another client, and malformed ones', () => {
    const c = client();
    const discover = sent(c.start(0))[0]!;
    expect(c.receive(reply({ ...discover, xid: discover.xid + 1 }, DhcpMessageType.Offer), 10)).toEqual([]);
    expect(c.receive(DhcpRepr.emit({ ...DhcpRepr.parse(reply(discover, DhcpMessageType.Offer)) as Dhcp, chaddr: Uint8Array.of(2, 0, 0, 0, 0, 8) }), 10)).toEqual([]);
    expect(c.receive(new Uint8Array(100), 10)).toEqual([]);
    expect(c.counters).toMatchObject({ ignored: 2, malformed: 1, offers: 0 });
  });

  it('starts over with a new transaction when the server refuses the request (NAK)', () => {
    const c = client();
    const discover = sent(c.start(0))[0]!;
    const request = sent(c.receive(reply(discover, DhcpMessageType.Offer), 10))[0]!;
    const again = sent(c.receive(reply(request, DhcpMessageType.Nak), 20));
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ messageType: DhcpMessageType.Discover });
    expect(again[0]!.xid).not.toBe(discover.xid);
  });

  it('unconfigures before starting over when a NAK answers a renewal', () => {
    const c = client();
    bind(c);
    const renewal = sent(c.tick(300_020))[0]!;
    expect(renewal).toMatchObject({ messageType: DhcpMessageType.Request, ciaddr: ip('10.1.0.9') });
    const actions = c.receive(reply(renewal, DhcpMessageType.Nak), 300_030);
    expect(actions.map((a) => a.kind)).toEqual(['unconfigure', 'send']);
  });

  it('never renews a lease granted forever', () => {
    const c = client();
    bind(c, {}, { leaseTime: 0xffffffff });
    expect(c.tick(10 * 365 * 86_400_000)).toEqual([]);
    expect(c.state).toBe('bound');
  });

  it('keeps looking for a server after its lease ran out, backing off to one DISCOVER a minute, and binds when one answers', () => {
    const c = client();
    bind(c, {}, { leaseTime: 120 });
    const expired = c.tick(20 + 120_000);
    expect(expired[0]).toEqual({ kind: 'unconfigure' });
    // The server stays away for an hour: the client never gives up.
    const discovers: number[] = [];
    const timeouts: { t: number; a: DhcpAction }[] = [];
    let last: Dhcp | undefined;
    for (let t = 120_020 + 1000; t < 120_020 + 3_600_000; t += 1000) {
      const actions = c.tick(t);
      for (const a of actions) if (a.kind === 'timeout') timeouts.push({ t, a });
      for (const m of sent(actions)) {
        discovers.push(t);
        last = m;
      }
    }
    expect(c.state).toBe('selecting');
    // Once, 10 s in: a dhcp-with-fallback Iface applies its static values then, and the asking goes on.
    expect(timeouts).toEqual([{ t: 120_020 + 10_000, a: { kind: 'timeout', retrying: true } }]);
    const gaps = discovers.slice(1).map((t, i) => t - discovers[i]!);
    expect(gaps.slice(0, 6)).toEqual([1000, 2000, 4000, 8000, 16000, 32000]);
    expect(Math.max(...gaps)).toBe(64000);
    // The server is back: the next exchange binds again.
    const request = sent(c.receive(reply(last!, DhcpMessageType.Offer), 3_720_000))[0]!;
    expect(c.receive(reply(request, DhcpMessageType.Ack), 3_720_010)).toEqual([{ kind: 'configure', lease: expect.objectContaining({ address: ip('10.1.0.9') }) }]);
  });

  it('still gives up after 10 s at boot when no server answers (upstream)', () => {
    const c = client();
    c.start(0);
    const actions = Array.from({ length: 11 }, (_, i) => c.tick((i + 1) * 1000)).flat();
    expect(actions.filter((a) => a.kind === 'send')).toHaveLength(9);
    expect(actions.at(-1)).toEqual({ kind: 'timeout', retrying: false });
  });
});
