import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { generateModule } from '../../compiler/codegen/emit.ts';
import { compileSource } from '../../compiler/compile.ts';
import type { Ir } from '../../compiler/ir.ts';
import { loadGenerated } from '../../runtime/load-generated.ts';
import { pair, RecordingRuntime, sameOutcome } from '../helpers/differential.ts';
import { examples } from '../helpers/examples.ts';
import { interestingValues, packets } from '../helpers/random-packets.ts';

function irOf(text: string): Ir {
  const r = compileSource(text, 'p.nacl');
  const errors = r.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length) throw new Error(errors.map((d) => `${d.code} ${d.span.startLine}:${d.span.startColumn} ${d.message}`).join('\n') + '\n' + text);
  return r.ir!;
}

describe('generated code agrees with the reference interpreter', () => {
  for (const example of examples()) {
    const ir = compileSource(example.text, example.name).ir!;
    if (!ir.functions.some((f) => f.attached)) continue;
    it(`on random packets through ${example.name}`, () => {
      const p = pair(ir);
      fc.assert(fc.property(packets(interestingValues(ir)), (pkt) => sameOutcome(ir, p, pkt)), { numRuns: 400 });
    });
  }

  const port = fc.integer({ min: 0, max: 65535 });
  const addr = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
  const cidr = fc.tuple(addr, fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`);
  const portSet = fc.oneof(
    fc.array(port, { minLength: 1, maxLength: 4 }).map((ps) => `[${ps.join(', ')}]`),
    fc.array(fc.tuple(port, port), { minLength: 1, maxLength: 30 }).map((rs) => `[${rs.map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`).join(', ')}]`),
  );
  const addrSet = fc.oneof(
    fc.array(cidr, { minLength: 1, maxLength: 5 }).map((cs) => `[${cs.join(', ')}]`),
    fc.array(cidr, { minLength: 9, maxLength: 40 }).map((cs) => `[${cs.join(', ')}]`),
    fc.array(fc.tuple(fc.nat(255), fc.nat(255)), { minLength: 300, maxLength: 320 }).map((xs) => `[${xs.map(([a, b]) => `${a}.${b}.0.0/24`).join(', ')}]`),
  );
  const ipCond = fc.oneof(
    fc.tuple(fc.constantFrom('ip.saddr', 'ip.daddr'), fc.constantFrom('==', '!=', '<', '>=')).chain(([f, op]) => addr.map((a) => `${f} ${op} ${a}`)),
    fc.tuple(fc.constantFrom('ip.saddr', 'ip.daddr'), addrSet).map(([f, s]) => `${f} in ${s}`),
    fc.tuple(fc.constantFrom('ip.ttl', 'ip.id', 'ip.dscp'), fc.constantFrom('==', '<', '>', '<=', '!='), fc.nat(63)).map(([f, op, n]) => `${f} ${op} ${n}`),
    fc.constantFrom('ct.state == established', 'ct.state != new', 'ct.state in [new, related]', 'ip.protocol == tcp', 'ip.saddr == ip.daddr'),
  );
  const l4Cond = (proto: 'tcp' | 'udp' | 'icmp') =>
    proto === 'icmp'
      ? fc.constantFrom('icmp.type == echo-request', 'icmp.type in [0, 3-5]', 'icmp.type != 11')
      : fc.oneof(
          fc.tuple(fc.constantFrom('sport', 'dport'), portSet).map(([f, s]) => `${proto}.${f} in ${s}`),
          fc.tuple(fc.constantFrom('sport', 'dport'), fc.constantFrom('==', '<', '>='), port).map(([f, op, n]) => `${proto}.${f} ${op} ${n}`),
          ...(proto === 'tcp' ? [fc.constantFrom('tcp.flags == syn', 'tcp.flags in [syn, ack]', 'tcp.window > 1000')] : []),
        );
  const combine = (c: fc.Arbitrary<string>) =>
    fc.oneof(c, fc.tuple(c, fc.constantFrom('and', 'or', '&&'), c).map(([a, op, b]) => `${a} ${op} ${b}`), c.map((x) => `not (${x})`));
  const verdict = fc.constantFrom('accept', 'drop');
  const body = (proto: 'ip' | 'tcp' | 'udp' | 'icmp', depth: number): fc.Arbitrary<string> => {
    const cond = proto === 'ip' ? combine(ipCond) : combine(fc.oneof(ipCond, l4Cond(proto)));
    const simple = fc.oneof(
      verdict,
      fc.constantFrom('log("x ", ip.saddr, "\\n")', 'syslog(INFO, "y", ip.ttl)'),
      cond.chain((c) => verdict.map((v) => `if (${c}) { ${v} }`)),
    );
    if (depth <= 0) return simple;
    return fc.oneof(
      simple,
      fc.tuple(cond, body(proto, depth - 1), fc.option(body(proto, depth - 1))).map(([c, t, e]) => `if (${c}) { ${t} }${e ? ` else { ${e} }` : ''}`),
      ...(proto === 'ip' ? [fc.constantFrom('tcp', 'udp', 'icmp').chain((p) => body(p as 'tcp', depth - 1).map((b) => `Filter::${p.toUpperCase()} { ${b} }`))] : []),
    );
  };
  // One to three functions on one chain: they run as one segment, so ACCEPT
  // going on to the next function and DROP stopping are both exercised.
  const policy = fc.array(fc.array(body('ip', 2), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 3 }).map((fns) => {
    const names = fns.map((_, i) => `f${i}`);
    const functions = fns.map((stmts, i) => `Filter::IP f${i} {\n${stmts.join('\n')}\n${i === fns.length - 1 ? 'drop' : 'accept'}\n}\n`);
    return `Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: [${names.join(', ')}] }\n${functions.join('')}`;
  });

  it('on random packets through randomly generated policies', () => {
    fc.assert(
      fc.property(policy, fc.array(packets([0, 1, 80, 443, 1024, 65535, 167772161]), { minLength: 20, maxLength: 20 }), (text, pkts) => {
        const ir = irOf(text);
        const p = pair(ir, { classifierThreshold: 3 });
        const values = interestingValues(ir);
        for (const pkt of pkts) sameOutcome(ir, p, pkt);
        fc.assert(fc.property(packets(values), (pkt) => sameOutcome(ir, p, pkt)), { numRuns: 30 });
      }),
      { numRuns: 150 },
    );
  });

  it('on long rule runs compiled to a classifier', () => {
    const rule = fc
      .tuple(fc.option(cidr), fc.option(portSet), fc.option(fc.constantFrom('ct.state == new', 'ip.ttl > 5', 'ip.protocol == tcp')), verdict)
      .map(([c, ps, extra, v]) => {
        const parts = [c && `ip.saddr in ${c}`, ps && `tcp.dport in ${ps}`, extra].filter(Boolean);
        return `if (${parts.length ? parts.join(' and ') : 'ip.ttl >= 0'}) { ${v} }`;
      });
    fc.assert(
      fc.property(fc.array(rule, { minLength: 20, maxLength: 120 }), (rules) => {
        const text = `Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nFilter::IP f { Filter::TCP {\n${rules.join('\n')}\n} drop }\n`;
        const ir = irOf(text);
        const p = pair(ir, { classifierThreshold: 16 });
        expect(generateModule(ir, { classifierThreshold: 16 })).toContain('classify(CL');
        fc.assert(fc.property(packets(interestingValues(ir)), (pkt) => sameOutcome(ir, p, { ...pkt, bytes: tcpOnly(pkt.bytes) })), { numRuns: 60 });
      }),
      { numRuns: 40 },
    );
  });
});

function tcpOnly(bytes: Uint8Array): Uint8Array {
  const b = Uint8Array.from(bytes);
  b[9] = 6;
  return b;
}

describe('generated code', () => {
  it('keeps hostile names and log strings as data: nothing in them is executed', () => {
    const hostile = 'x"); globalThis.pwned = 1; ("*/ ${1+1} \\u2028 </script> \\\\';
    const text = `Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: constructor }\nFilter::IP constructor { log("${hostile.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}") accept }\n`;
    const ir = irOf(text);
    const source = generateModule(ir);
    const rt = new RecordingRuntime();
    const m = loadGenerated(source, rt);
    const state = { rule: 0, step: 0 };
    const bytes = new Uint8Array(40);
    bytes[0] = 0x45;
    expect(m.functions['constructor']!({ bytes, l3: 0, l4: 20, end: 40 }, state, 0)).toBe(1);
    expect(rt.events).toEqual([`log ${JSON.stringify(hostile)}`]);
    expect((globalThis as Record<string, unknown>)['pwned']).toBeUndefined();
  });

  it('cannot reach require, process or the host global object', () => {
    const m = vmProbe('typeof require + typeof process + typeof globalThis.process + typeof setTimeout');
    expect(m).toBe('undefinedundefinedundefinedundefined');
  });

  it('splits very long functions so none exceeds V8 optimisation limits', () => {
    const rules = Array.from({ length: 3000 }, (_, i) => `if (ip.ttl == ${i % 256} and ip.id == ${i}) { log("r${i}") }`);
    const ir = irOf(`Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nFilter::IP f {\n${rules.join('\n')}\naccept\n}\n`);
    const source = generateModule(ir);
    // Each generated function runs from its header to the first closing brace at its indentation.
    const functions = source.split(/\n  function /).slice(1).map((f) => f.slice(0, f.indexOf('\n  }\n')));
    expect(functions.length).toBeGreaterThan(3);
    for (const f of functions) expect(f.length).toBeLessThan(40_000);
    const p = pair(ir);
    fc.assert(fc.property(packets(interestingValues(ir)), (pkt) => sameOutcome(ir, p, pkt)), { numRuns: 100 });
  });

  it('records the deciding rule and maps it to its source line', () => {
    const ir = irOf('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nFilter::IP f {\n  if (ip.ttl < 5) { drop }\n  accept\n}\n');
    const m = loadGenerated(generateModule(ir), new RecordingRuntime());
    const bytes = new Uint8Array(40);
    bytes[0] = 0x45;
    bytes[8] = 3;
    const s = { rule: 0, step: 0 };
    expect(m.functions['f']!({ bytes, l3: 0, l4: 20, end: 40 }, s, 0)).toBe(0);
    expect(ir.rules[m.rules[s.rule]!]).toMatchObject({ function: 'f', line: 3, text: 'drop' });
  });

  it('drops a packet without a conntrack entry before any rule runs (8.4)', () => {
    const ir = irOf('Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nFilter::IP f { accept }\n');
    const m = loadGenerated(generateModule(ir), new RecordingRuntime());
    const s = { rule: 0, step: 0 };
    expect(m.functions['f']!({ bytes: new Uint8Array(40), l3: 0, l4: 20, end: 40 }, s, -1)).toBe(0);
    expect(s.rule).toBe(-2);
  });
});

function vmProbe(expression: string): unknown {
  const source = `(function (rt, T) { return { functions: {}, rules: [${expression}] }; })`;
  return loadGenerated(source, new RecordingRuntime()).rules[0];
}
