import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.ts';
import { programToYaml } from '../../compiler/yaml-export.ts';
import { parseNacl } from '../../grammar/parse.ts';
import { examples } from '../helpers/examples.ts';

/**
 * The IR without what legitimately differs between the two forms: where
 * things are written, and the order of functions (YAML groups Filter and Nat).
 */
function meaning(ir: any): unknown {
  const stripped = JSON.parse(JSON.stringify(ir, (key, value) => (['source', 'file', 'line', 'column', 'endLine', 'endColumn', 'sha256'].includes(key) ? undefined : value)));
  stripped.functions.sort((a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name));
  return stripped;
}

function errors(text: string, file = 'c.yaml'): string[] {
  return compileSource(text, file)
    .diagnostics.filter((d) => d.severity === 'error')
    .map((d) => `${d.code} ${d.span.startLine}:${d.span.startColumn}`);
}

describe('the YAML form', () => {
  for (const example of examples()) {
    it(`${example.name} converted to YAML gives the same IR`, () => {
      const yaml = programToYaml(parseNacl(example.text, example.name).program);
      const fromYaml = compileSource(yaml, example.name.replace('.nacl', '.yaml'));
      expect(fromYaml.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(meaning(fromYaml.ir)).toEqual(meaning(compileSource(example.text, example.name).ir));
    });
  }

  it('reports a semantic error at its YAML line and column', () => {
    const yaml = ['Iface:', '  eth0:', '    index: 0', '    address: 10.0.0.1', '    netmask: 255.0.255.0', ''].join('\n');
    expect(errors(yaml)).toEqual(['E519 5:14']);
  });

  it('reports an error in a function body at its line inside the block scalar', () => {
    const yaml = ['Iface:', '  eth0: { index: 0, input: f }', 'Filter:', '  f:', '    subtype: IP', '    body: |', '      if (ip.ttl > 1) {', '          accept', '      }', '      if (tcp.dport == 80) { drop }', '      drop', ''].join('\n');
    expect(errors(yaml)).toEqual(['E701 10:11']);
  });

  it('reports a syntax error in a function body at its YAML position', () => {
    const yaml = ['Filter:', '  f:', '    subtype: IP', '    body: |', '      accept', '      if ip.ttl > 1 { drop }', ''].join('\n');
    expect(errors(yaml)).toEqual(['E104 6:10']);
  });

  it.each([
    ['a literal block with an indentation indicator', ['    body: |2', '        accept', '        if (ip.daddr == 10.0.0.999) { drop }']],
    ['a folded block', ['    body: >', '      accept', '', '      if (ip.daddr == 10.0.0.999) { drop }']],
    ['a folded block without the final break', ['    body: >-', '      accept', '      if (ip.daddr == 10.0.0.999) { drop }']],
  ])('reports an error in %s at its line and column', (_name, body) => {
    const yaml = ['Filter:', '  f:', '    subtype: IP', ...body, ''].join('\n');
    const line = body.length + 3;
    const column = body[body.length - 1]!.indexOf('10.0.0.999') + 1;
    expect(errors(yaml)).toEqual([`E405 ${line}:${column}`]);
  });

  it('reports a value that is not NaCl at its YAML position', () => {
    expect(errors('values:\n  x: 1.2.3\n')).toEqual(['E106 2:6']);
  });

  it('reports a shape error from the schema at the offending key', () => {
    expect(errors('Ifaces:\n  eth0: { index: 0 }\n')).toEqual(['E121 1:1']);
    expect(errors('Filter:\n  f:\n    subtype: ARP\n    body: drop\n')).toEqual(['E121 3:14']);
  });

  it('reports a key with an invalid name at that key, once', () => {
    expect(errors('values:\n  ok: 1\n  m.b: 2\n')).toEqual(['E121 3:3']);
  });

  it.each([' ', '# only a comment', '}', '{'])('reports a function body %j that holds no statement, without failing inside', (body) => {
    const { diagnostics } = compileSource(`Filter:\n  f:\n    subtype: IP\n    body: ${JSON.stringify(body)}\n`, 'f.yaml');
    expect(diagnostics.filter((d) => d.code === 'E900')).toEqual([]);
    expect(diagnostics.some((d) => d.severity === 'error')).toBe(true);
  });

  it('refuses a function body that closes the function and declares more, rather than dropping what follows', () => {
    const yaml = 'Filter:\n  f:\n    subtype: IP\n    body: "drop } Iface x { index: 9 } Filter::IP g { accept"\n';
    expect(errors(yaml)).toEqual(['E121 4:11']);
  });

  it('reports invalid YAML', () => {
    expect(errors('Iface:\n  eth0: { index: 0\n')[0]).toMatch(/^E120 /);
  });

  it('accepts a bare MAC address as an Iface index', () => {
    const { ir, diagnostics } = compileSource('Iface:\n  eth0: { index: c0:ff:ee:00:00:01 }\n', 'c.yaml');
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(ir?.ifaces[0]?.nic).toEqual({ mac: 'c0:ff:ee:00:00:01' });
  });
});
