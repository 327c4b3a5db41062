import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.ts';
import { toDot, toMermaid } from '../../compiler/graph.ts';
import { examples } from '../helpers/examples.ts';
import { hasTool, requireTool } from '../helpers/tools.ts';

const withDot = hasTool('dot') || process.env['CI'] === 'true';

describe('nacl graph', () => {
  for (const example of examples()) {
    const ir = compileSource(example.text, example.name).ir!;

    it.runIf(withDot)(`${example.name}: graphviz dot accepts the DOT output`, () => {
      if (!requireTool('dot')) return;
      const r = spawnSync('dot', ['-Tsvg'], { input: toDot(ir), encoding: 'utf8' });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('<svg');
    });

    it(`${example.name}: has the recorded Mermaid output`, () => {
      expect(toMermaid(ir)).toMatchSnapshot();
    });
  }

  it('shows every Iface with its address, VLAN and chains, and every route', () => {
    const text = 'Iface e { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nIface v { index: 0, vlan: 7, address: 10.7.0.1, netmask: 255.255.255.0 }\nFilter::IP f { accept }\nGateway g { r: { net: 0.0.0.0, netmask: 0.0.0.0, iface: e, nexthop: 10.0.0.254, cost: 5 } }';
    const dot = toDot(compileSource(text, 't.nacl').ir!);
    expect(dot).toContain('Iface e\\l10.0.0.1/24\\linput: f');
    expect(dot).toContain('Iface v (VLAN 7)');
    expect(dot).toContain('"nic0" -> "if_v" [label="802.1Q 7"]');
    expect(dot).toContain('"router" -> "if_e" [label="r: 0.0.0.0/0 via 10.0.0.254 cost 5"]');
  });

  it('shows the load balancer sides and pool', () => {
    const lb = examples().find((e) => e.name === 'lb.nacl')!;
    const m = toMermaid(compileSource(lb.text, lb.name).ir!);
    expect(m).toContain('if_outside -->|"clients :80"| lb');
    expect(m).toContain('if_inside -.->|"pool 1"| node1');
  });
});
