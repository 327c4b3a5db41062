import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.ts';
import { examples } from '../helpers/examples.ts';
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

/** Whether offset `at` is code, not inside a string or after a comment marker on its line. */
function isCode(text: string, at: number): boolean {
  const line = text.slice(text.lastIndexOf('\n', at - 1) + 1, at);
  return (line.split('"').length - 1) % 2 === 0 && !line.includes('#') && !line.includes('//');
}

describe('a bad literal among good code', () => {
  // Every IPv4 address and CIDR of every example, with one octet pushed past 255 or the prefix past 32.
  const sites = examples().flatMap(({ name, text }) =>
    [...text.matchAll(/(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?(?![\w.])/g)]
      .filter((m) => isCode(text, m.index!))
      .map((m) => ({ name, text, at: m.index!, literal: m[0] })),
  );
  // Where and what, not the message: an overlap warning may name another Iface once one subnet is unknown.
  const key = (d: { code: string; span: { startLine: number; startColumn: number } }) => `${d.code} ${d.span.startLine}:${d.span.startColumn}`;

  it('is reported with every other diagnostic of the file, and causes no other one', () => {
    expect(sites.length).toBeGreaterThan(50);
    fc.assert(
      fc.property(fc.constantFrom(...sites), fc.integer({ min: 0, max: 4 }), fc.integer({ min: 256, max: 999 }), ({ name, text, at, literal }, part, big) => {
        const parts = literal.split(/([./])/);
        // parts: a . b . c . d [/ p]; part 4 is the prefix when there is one.
        const index = part === 4 && parts.length > 7 ? 8 : Math.min(part, 3) * 2;
        parts[index] = index === 8 ? String(33 + (big % 60)) : String(big);
        const bad = text.slice(0, at) + parts.join('') + text.slice(at + literal.length);
        const before = new Set(compileSource(text, name).diagnostics.map(key));
        const after = compileSource(bad, name).diagnostics;
        expect(after.filter((d) => d.code === 'E900')).toEqual([]);
        const literalErrors = after.filter((d) => d.code === 'E405' || d.code === 'E406');
        expect(literalErrors).toHaveLength(1);
        // Nothing else is new: the bad value is skipped, not checked into follow-on errors.
        expect(after.filter((d) => !literalErrors.includes(d)).map(key).filter((k) => !before.has(k))).toEqual([]);
      }),
      { numRuns: 400 },
    );
  });
});


describe('limits on depth', () => {
  const IFACE = 'Iface e { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\n';
  const nested = (n: number) => {
    let body = 'accept';
    for (let i = 0; i < n; i++) body = `if (ip.ttl > ${i % 200}) { ${body} }`;
    return `${IFACE}Filter::IP f { ${body} drop }\n`;
  };
  const codes = (text: string) => compileSource(text, 'deep.nacl').diagnostics.map((d) => d.code);

  it('compiles nesting up to the limit', () => {
    expect(codes(nested(98))).toEqual([]);
    expect(codes(`${IFACE}Filter::IP f { if (${Array(999).fill('ip.ttl == 1').join(' or ')}) { drop } accept }\n`)).toEqual([]);
  });

  it('refuses deeper nesting and longer conditions with E113, before any stage could exhaust the stack', () => {
    expect(codes(nested(150))).toEqual(['E113']);
    expect(codes(`x: ${'['.repeat(5000)}1${']'.repeat(5000)}\n`)).toEqual(['E113']);
    expect(codes(`${IFACE}Filter::IP f { if (${Array(20000).fill('ip.ttl == 1').join(' or ')}) { drop } accept }\n`)).toEqual(['E113']);
  });

  it('reports a chain of values thousands of names deep as E113, not as an internal error', () => {
    const chain = Array.from({ length: 5000 }, (_, i) => `v${i}: v${i + 1}`).join('\n');
    expect(codes(`${IFACE.replace(', input: f', '')}${chain}\nv5000: 80\n`)).toEqual(['E113']);
  });
});

describe('values in messages', () => {
  const messages = (text: string) => compileSource(text, 'm.nacl').diagnostics.map((d) => d.message);

  it('are quoted as written, not as the number or word they became', () => {
    expect(messages('Syslog s { address: 10.0.0.1, port: 514.0 }')).toEqual([expect.stringContaining('not the decimal 514.0')]);
    expect(messages('Iface e { index: 99999999999999999999999 }')).toEqual([expect.stringContaining('not 99999999999999999999999')]);
    const lb = 'Iface e { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nLoad_balancer lb { layer: tcp, clients: { iface: e, port: 80 }, servers: { iface: e, algorithm: toString, pool: [{ address: 10.0.0.5, port: 80 }] } }';
    expect(messages(lb)).toEqual([expect.stringContaining('Invalid algorithm toString.')]);
  });
});

describe('chains of calls', () => {
  const chain = (n: number) =>
    'Iface e { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f0 }\n' +
    Array.from({ length: n }, (_, i) => (i + 1 < n ? `Filter::IP f${i} { f${i + 1} accept }` : `Filter::IP f${i} { if (ip.ttl == 1) { drop } accept }`)).join('\n');

  it('compiles and generates code for a chain of 100 calls', async () => {
    const { generateModule } = await import('../../compiler/codegen/emit.ts');
    const { ir, diagnostics } = compileSource(chain(100), 'c.nacl');
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(generateModule(ir!).length).toBeGreaterThan(0);
  });

  it('refuses a deeper chain with one E113 at its head, before code generation could exhaust the stack', () => {
    for (const n of [150, 1600]) {
      const errors = compileSource(chain(n), 'c.nacl').diagnostics.filter((d) => d.severity === 'error');
      expect(errors.map((d) => `${d.code} ${d.span.startLine}`)).toEqual(['E113 2']);
      expect(errors[0]!.message).toContain(`f0 starts a chain of ${n} function calls`);
    }
  });
});
