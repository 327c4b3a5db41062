import type { Ir, IrChainStep, IrIface } from './ir.ts';

/*
 * `nacl graph`: the appliance's topology from its IR - NICs, the Ifaces and
 * VLANs on them with addresses, the functions on each chain, the router with
 * its routes and forward chain, and the load balancer's two sides and pool.
 */

interface Graph {
  nodes: { id: string; label: string[]; shape: 'nic' | 'iface' | 'router' | 'lb' | 'host' }[];
  edges: { from: string; to: string; label: string; dashed?: boolean }[];
}

function stepText(step: IrChainStep): string {
  return step.kind === 'function' ? step.function : `(${step.kind})`;
}

function ifaceLabel(i: IrIface): string[] {
  const lines = [`Iface ${i.name}${i.vlan !== null ? ` (VLAN ${i.vlan})` : ''}`];
  if (i.address) lines.push(`${i.address}/${i.prefixLength}`);
  if (i.config !== 'static') lines.push(`config: ${i.config}`);
  if (i.gateway) lines.push(`gateway ${i.gateway}`);
  if (i.masquerade) lines.push('masquerade');
  for (const [chain, steps] of Object.entries(i.chains)) if (steps.length) lines.push(`${chain}: ${steps.map(stepText).join(', ')}`);
  return lines;
}

function build(ir: Ir): Graph {
  const g: Graph = { nodes: [], edges: [] };
  const nicId = (nic: IrIface['nic']) => ('index' in nic ? `nic${nic.index}` : `nic_${nic.mac.replace(/:/g, '')}`);
  for (const nic of ir.nics) {
    const id = nic.index !== null ? `nic${nic.index}` : `nic_${nic.mac!.replace(/:/g, '')}`;
    const label = [nic.index !== null ? `NIC ${nic.index}` : `NIC ${nic.mac}`];
    if (nic.sendQueueLimit !== null) label.push(`send_queue_limit ${nic.sendQueueLimit}`);
    if (nic.bufferLimit !== null) label.push(`buffer_limit ${nic.bufferLimit}`);
    g.nodes.push({ id, label, shape: 'nic' });
  }
  for (const i of ir.ifaces) {
    g.nodes.push({ id: `if_${i.name}`, label: ifaceLabel(i), shape: 'iface' });
    g.edges.push({ from: nicId(i.nic), to: `if_${i.name}`, label: i.vlan !== null ? `802.1Q ${i.vlan}` : 'untagged' });
  }
  if (ir.gateway) {
    const label = [`Gateway ${ir.gateway.name}`];
    if (ir.gateway.forward.length) label.push(`forward: ${ir.gateway.forward.join(', ')}`);
    if (!ir.gateway.sendTimeExceeded) label.push('send_time_exceeded: false');
    g.nodes.push({ id: 'router', label, shape: 'router' });
    for (const r of ir.gateway.routes) {
      const via = r.nexthop ? ` via ${r.nexthop}` : '';
      const cost = r.cost !== 1 ? ` cost ${r.cost}` : '';
      g.edges.push({ from: 'router', to: `if_${r.iface}`, label: `${r.name ? r.name + ': ' : ''}${r.net}/${r.prefixLength}${via}${cost}` });
    }
  }
  if (ir.loadBalancer) {
    const lb = ir.loadBalancer;
    g.nodes.push({
      id: 'lb',
      label: [`Load_balancer ${lb.name}`, `tcp port ${lb.clients.port}`, `algorithm ${lb.servers.algorithm}`, `wait ${lb.clients.waitQueueLimit}, sessions ${lb.clients.sessionLimit}`],
      shape: 'lb',
    });
    g.edges.push({ from: `if_${lb.clients.iface}`, to: 'lb', label: `clients :${lb.clients.port}` });
    g.edges.push({ from: 'lb', to: `if_${lb.servers.iface}`, label: 'servers' });
    lb.servers.pool.forEach((n, k) => {
      g.nodes.push({ id: `node${k}`, label: [`${n.address}:${n.port}`], shape: 'host' });
      g.edges.push({ from: `if_${lb.servers.iface}`, to: `node${k}`, label: `pool ${k}`, dashed: true });
    });
  }
  return g;
}

const DOT_SHAPES = { nic: 'box3d', iface: 'box', router: 'diamond', lb: 'hexagon', host: 'ellipse' } as const;

function dotString(s: string): string {
  return '"' + s.replace(/\\/g, '\\\\').replace(/"/g, '\\"') + '"';
}

export function toDot(ir: Ir): string {
  const g = build(ir);
  const out = ['digraph nacl {', '  rankdir=LR;', '  node [fontname="Helvetica", fontsize=10];', '  edge [fontname="Helvetica", fontsize=9];'];
  for (const n of g.nodes) {
    const label = n.label.map((l) => l.replace(/\\/g, '\\\\').replace(/"/g, '\\"')).join('\\l') + '\\l';
    out.push(`  ${dotString(n.id)} [shape=${DOT_SHAPES[n.shape]}, label="${label}"];`);
  }
  for (const e of g.edges) out.push(`  ${dotString(e.from)} -> ${dotString(e.to)} [label=${dotString(e.label)}${e.dashed ? ', style=dashed' : ''}];`);
  out.push('}');
  return out.join('\n') + '\n';
}

function mermaidText(s: string): string {
  // Mermaid labels in quotes take entity codes for quotes.
  return s.replace(/"/g, '#quot;');
}

export function toMermaid(ir: Ir): string {
  const g = build(ir);
  const open = { nic: '[[', iface: '[', router: '{', lb: '{{', host: '([' } as const;
  const close = { nic: ']]', iface: ']', router: '}', lb: '}}', host: '])' } as const;
  const out = ['flowchart LR'];
  for (const n of g.nodes) out.push(`  ${n.id}${open[n.shape]}"${n.label.map(mermaidText).join('<br/>')}"${close[n.shape]}`);
  for (const e of g.edges) out.push(`  ${e.from} ${e.dashed ? '-.->' : '-->'}|"${mermaidText(e.label)}"| ${e.to}`);
  return out.join('\n') + '\n';
}
