import { describe, expect, it } from 'vitest';
import { parseDriverSpec } from '../../../runtime/drivers/spec.ts';

function spec(text: string) {
  const r = parseDriverSpec(text);
  if (!r.ok) throw new Error(`expected '${text}' to parse: ${r.message}`);
  return r.spec;
}

function problem(text: string): string {
  const r = parseDriverSpec(text);
  if (r.ok) throw new Error(`expected '${text}' to be refused`);
  return r.message;
}

describe('parseDriverSpec', () => {
  it('reads a tap spec as the interface name', () => {
    expect(spec('tap:tap0')).toEqual({ driver: 'tap', ifname: 'tap0' });
  });

  it('reads a udp spec as local port, remote host and remote port', () => {
    expect(spec('udp:5555,127.0.0.1:5556')).toEqual({ driver: 'udp', localPort: 5555, remoteHost: '127.0.0.1', remotePort: 5556 });
    expect(spec('udp:1,vm.example:65535')).toEqual({ driver: 'udp', localPort: 1, remoteHost: 'vm.example', remotePort: 65535 });
  });

  it('reads a bracketed IPv6 address as the udp remote host', () => {
    expect(spec('udp:5555,[::1]:5556')).toEqual({ driver: 'udp', localPort: 5555, remoteHost: '::1', remotePort: 5556 });
  });

  it('reads a memory spec as the wire name', () => {
    expect(spec('memory:lan')).toEqual({ driver: 'memory', name: 'lan' });
  });

  it('reads a pcap spec with and without an output file', () => {
    expect(spec('pcap:in.pcap')).toEqual({ driver: 'pcap', input: 'in.pcap' });
    expect(spec('pcap:in.pcap,out.pcap')).toEqual({ driver: 'pcap', input: 'in.pcap', output: 'out.pcap' });
  });

  it('splits a pcap spec at the first comma so the output path may hold commas', () => {
    expect(spec('pcap:a.pcap,b,c.pcap')).toEqual({ driver: 'pcap', input: 'a.pcap', output: 'b,c.pcap' });
  });

  it('refuses a spec without a driver and lists the forms', () => {
    expect(problem('tap0')).toContain('expected tap:IFNAME, udp:LOCALPORT,HOST:PORT, memory:NAME or pcap:IN[,OUT]');
  });

  it('refuses an unknown driver by name', () => {
    expect(problem('vde:/tmp/sw')).toContain("unknown driver 'vde'");
  });

  it('refuses interface names Linux would refuse', () => {
    expect(problem('tap:')).toContain('empty');
    expect(problem('tap:a-name-of-16-chr')).toContain('at most 15');
    expect(problem('tap:..')).toContain('not a valid interface name');
    expect(problem('tap:a/b')).toContain("'/'");
    expect(problem('tap:a b')).toContain('whitespace');
  });

  it('accepts a 15-byte interface name', () => {
    expect(spec('tap:abcdefghijklmno')).toEqual({ driver: 'tap', ifname: 'abcdefghijklmno' });
  });

  it('refuses udp specs with missing or out-of-range ports', () => {
    expect(problem('udp:5555')).toContain('is not udp:LOCALPORT,HOST:PORT');
    expect(problem('udp:0,127.0.0.1:5556')).toContain("local port '0'");
    expect(problem('udp:x,127.0.0.1:5556')).toContain("local port 'x'");
    expect(problem('udp:5555,127.0.0.1:65536')).toContain("remote port '65536'");
    expect(problem('udp:5555,127.0.0.1:')).toContain("remote port ''");
    expect(problem('udp:5555,127.0.0.1')).toContain('is not HOST:PORT');
  });

  it('asks for brackets around an IPv6 udp host', () => {
    expect(problem('udp:5555,::1:5556')).toContain('[ADDR]:PORT');
  });

  it('refuses empty memory and pcap arguments', () => {
    expect(problem('memory:')).toContain('needs a name');
    expect(problem('pcap:')).toContain('input capture file is missing');
    expect(problem('pcap:in.pcap,')).toContain('output file after the comma is empty');
  });
});
