import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.ts';
import { program } from '../helpers/nacl-arbitrary.ts';

/*
 * The compiler never throws on user input: every problem is a diagnostic.
 * compileSource turns an exception into E900, so these properties assert
 * that no E900 ever appears, on random programs built from the grammar and
 * on programs built from the language's own vocabulary.
 */

const names = fc.constantFrom('eth0', 'eth1', 'lan', 'wan', 'gw', 'lb', 'ct', 'f', 'g', 'n', 'm', 's', 'http', 'new', 'drop');
const words = fc.constantFrom(
  'index', 'vlan', 'config', 'address', 'netmask', 'gateway', 'dns', 'masquerade', 'prerouting', 'input', 'output', 'postrouting',
  'send_queue_limit', 'buffer_limit', 'net', 'host', 'nexthop', 'iface', 'cost', 'forward', 'send_time_exceeded', 'layer', 'clients',
  'servers', 'port', 'pool', 'algorithm', 'limit', 'timeout', 'established', 'tcp', 'interval', 'data', 'r1',
);
const scalar = fc.oneof(
  fc.constantFrom('0', '1', '80', '4095', '10.0.0.1', '255.255.255.0', '0.0.0.0', '10.0.0.0/24', '1-5', 'true', 'false', '"x"', 'dhcp', 'tcp', 'round_robin', 'cpu', 'lb'),
  names,
  fc.tuple(names, words).map(([a, b]) => `${a}.${b}`),
);
const value: fc.Arbitrary<string> = fc.letrec<{ v: string }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(fc.tuple(words, tie('v')), { minLength: 1, maxLength: 4 }).map((ps) => `{ ${ps.map(([k, v]) => `${k}: ${v}`).join(', ')} }`),
    fc.array(tie('v'), { minLength: 1, maxLength: 3 }).map((xs) => `[${xs.join(', ')}]`),
  ),
})).v;
const field = fc.constantFrom('ip.saddr', 'ip.ttl', 'tcp.dport', 'udp.sport', 'icmp.type', 'ct.state', 'tcp.flags', 'ip.protocol');
const op = fc.constantFrom('==', '!=', '<', '>=', 'in');
const statement: fc.Arbitrary<string> = fc.letrec<{ s: string }>((tie) => ({
  s: fc.oneof(
    { depthSize: 'small' },
    fc.constantFrom('accept', 'drop', 'log("x", ip.saddr)', 'syslog(INFO, "x")', 'dnat(10.0.0.1, 80)', 'snat(10.0.0.2)', 'f', 'g()', 'n'),
    fc.tuple(field, op, value, fc.array(tie('s'), { minLength: 1, maxLength: 3 })).map(([f, o, v, b]) => `if (${f} ${o} ${v}) { ${b.join(' ')} }`),
    fc.tuple(fc.constantFrom('Filter', 'Nat'), fc.constantFrom('IP', 'TCP', 'UDP', 'ICMP'), fc.array(tie('s'), { minLength: 1, maxLength: 3 })).map(
      ([t, st, b]) => `${t}::${st} { ${b.join(' ')} }`,
    ),
  ),
})).s;
const element = fc.oneof(
  fc.tuple(fc.constantFrom('Iface', 'Gateway', 'Load_balancer', 'Conntrack', 'Syslog', 'Timer'), names, value).map(([t, n, v]) => `${t} ${n} ${v}`),
  fc.tuple(names, value).map(([n, v]) => `${n}: ${v}`),
  fc.tuple(names, fc.array(words, { minLength: 1, maxLength: 3 }), value).map(([n, ws, v]) => `${n}.${ws.join('.')}: ${v}`),
  fc.tuple(fc.constantFrom('Filter', 'Nat'), fc.constantFrom('IP', 'TCP', 'UDP', 'ICMP'), names, fc.array(statement, { minLength: 1, maxLength: 4 })).map(
    ([t, st, n, b]) => `${t}::${st} ${n} { ${b.join(' ')} }`,
  ),
);
const config = fc.array(element, { maxLength: 10 }).map((els) => els.join('\n'));

function noInternalError(text: string): void {
  const { diagnostics, ir } = compileSource(text, 'p.nacl');
  expect(diagnostics.filter((d) => d.code === 'E900')).toEqual([]);
  if (!diagnostics.some((d) => d.severity === 'error')) expect(ir).not.toBeNull();
}

describe('compiler robustness', () => {
  it('never fails internally on configs built from the language vocabulary', () => {
    fc.assert(fc.property(config, noInternalError), { numRuns: 1500 });
  });

  it('never fails internally on random programs from the grammar', () => {
    fc.assert(fc.property(program, noInternalError), { numRuns: 500 });
  });
});
