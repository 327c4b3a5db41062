import type { Analysis } from './compile.ts';
import { ipv4Text, maskOf, type ElementContext } from './elements/common.ts';
import type { IfaceInfo } from './elements/iface.ts';
import type { ChainName } from './ir.ts';

/*
 * Warnings that need the whole appliance in view: unused things, settings
 * that have no effect, and addresses nothing can reach.
 */
export function checkCrossFeature(a: Analysis, used: ReadonlySet<string>, ctx: ElementContext): void {
  for (const element of a.namespace.elements.values()) {
    if (used.has(element.name)) continue;
    if (element.kind === 'untyped') ctx.report('W01', element.nameSpan, `${element.name} is defined but never used`);
    if (element.kind === 'function') {
      ctx.report('W01', element.nameSpan, `function ${element.name} is not attached to any chain and never called`, {
        help: 'attach it, e.g. eth0.input: ' + element.name,
      });
    }
  }

  const anyAttached = a.ifaces.some((i) => Object.values(i.chains).some((c) => c.length > 0)) || (a.gateway?.forward.length ?? 0) > 0;
  const tracking = anyAttached || a.gateway !== null || a.ifaces.some((i) => i.masquerade);
  if (a.conntrack.element && !tracking) {
    ctx.report('W07', a.conntrack.element.nameSpan, 'Conntrack settings have no effect: no interface tracks connections', {
      help: 'connections are tracked on Ifaces with functions on a chain, Ifaces in Gateway routes and masquerading Ifaces',
    });
  }

  for (const t of a.timers) {
    if (t.lbSpan && !a.loadBalancer) ctx.report('W08', t.lbSpan, `Timer ${t.name} prints lb, but there is no Load_balancer: it prints nothing`);
  }

  natOnUnusualHook(a, ctx);
  overlappingSubnets(a.ifaces, ctx);

  const subnets = a.ifaces.filter((i) => i.address && i.netmask);
  const onSubnet = (addr: number, iface?: IfaceInfo) =>
    (iface ? [iface] : subnets).some((i) => i.address && i.netmask && ((addr ^ i.address.value) & maskOf(i.netmask.prefix)) === 0);
  const routed = (addr: number) => (a.gateway?.routes ?? []).some((r) => ((addr ^ r.net) & maskOf(r.prefix)) === 0);

  for (const r of a.gateway?.routes ?? []) {
    const iface = a.ifaces.find((i) => i.name === r.iface);
    if (r.nexthop !== null && iface?.address && iface.netmask && !onSubnet(r.nexthop, iface)) {
      ctx.report('W16', r.nexthopSpan ?? r.span, `next hop ${ipv4Text(r.nexthop)} is outside the subnet of ${r.iface}, so it cannot be reached directly`);
    }
  }

  if (a.loadBalancer) {
    const servers = a.ifaces.find((i) => i.name === a.loadBalancer!.servers.iface);
    for (const node of a.loadBalancer.servers.pool) {
      if (!servers?.address) continue;
      if (onSubnet(node.address, servers) || servers.gateway || routed(node.address)) continue;
      ctx.report('W14', node.span, `pool node ${node.text} is not on the subnet of ${servers.name} and no route or gateway reaches it`);
    }
  }

  const anyGateway = a.ifaces.some((i) => i.gateway);
  for (const f of a.functions.values()) {
    for (const s of f.body.flatMap(function walk(x): typeof f.body {
      return x.kind === 'if' ? [x, ...x.then.flatMap(walk), ...(x.else ?? []).flatMap(walk)] : x.kind === 'block' ? [x, ...x.body.flatMap(walk)] : [x];
    })) {
      if (s.kind !== 'nat' || s.action !== 'dnat' || s.address === null) continue;
      const addr = s.address.split('.').reduce((n, o) => n * 256 + Number(o), 0);
      if (onSubnet(addr) || routed(addr) || anyGateway) continue;
      const span = f.natActions.find((n) => n.action === 'dnat')?.span ?? f.element.nameSpan;
      ctx.report('W15', span, `DNAT target ${s.address} is on no Iface subnet and no route reaches it`);
    }
  }
}

function natOnUnusualHook(a: Analysis, ctx: ElementContext): void {
  const hooks = new Map<string, Set<ChainName>>();
  for (const iface of a.ifaces) {
    for (const [chain, refs] of Object.entries(iface.chains) as [ChainName, { name: string }[]][]) {
      for (const ref of refs) {
        if (!hooks.has(ref.name)) hooks.set(ref.name, new Set());
        hooks.get(ref.name)!.add(chain);
      }
    }
  }
  for (const [name, chains] of hooks) {
    const f = a.functions.get(name);
    if (!f || f.element.type !== 'nat') continue;
    for (const n of f.natActions) {
      if (n.action === 'dnat' && [...chains].every((c) => c === 'postrouting')) {
        ctx.report('W12', n.span, `dnat in ${name}, which is attached only to postrouting: the rewrite happens after routing`, {
          help: 'DNAT usually belongs on prerouting, before the route is chosen',
        });
      }
      if (n.action === 'snat' && [...chains].every((c) => c === 'prerouting' || c === 'input')) {
        ctx.report('W12', n.span, `snat in ${name}, which is attached only to ${[...chains].join(' and ')}: the source is rewritten on the way in`, {
          help: 'SNAT usually belongs on postrouting',
        });
      }
    }
  }
}

function overlappingSubnets(ifaces: readonly IfaceInfo[], ctx: ElementContext): void {
  const withNet = ifaces.filter((i) => i.address && i.netmask);
  for (let i = 0; i < withNet.length; i++) {
    for (let j = 0; j < i; j++) {
      const a = withNet[i]!;
      const b = withNet[j]!;
      const mask = maskOf(Math.min(a.netmask!.prefix, b.netmask!.prefix));
      if (((a.address!.value ^ b.address!.value) & mask) !== 0) continue;
      ctx.report('W13', a.span, `the subnet of ${a.name} (${a.address!.text}/${a.netmask!.prefix}) overlaps the subnet of ${b.name} (${b.address!.text}/${b.netmask!.prefix})`, {
        related: [{ span: b.span, message: `${b.name} is here` }],
        help: 'traffic for the shared addresses may leave through either interface',
      });
      break;
    }
  }
}
