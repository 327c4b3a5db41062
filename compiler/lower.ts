import type { Analysis } from './compile.ts';
import { ipv4Text, maskOf } from './elements/common.ts';
import type { IfaceInfo } from './elements/iface.ts';
import type { FunctionInfo } from './functions.ts';
import {
  CHAIN_NAMES,
  IR_VERSION,
  type ChainName,
  type Ir,
  type IrChainStep,
  type IrFunction,
  type IrIface,
  type IrNic,
  type IrSpan,
  type IrStatement,
} from './ir.ts';
import type { Span } from '../grammar/span.ts';

/*
 * Lowering: the checked analysis becomes the IR, with every default filled
 * in and the chains assembled as nacl-language.md 8.1-8.6 say. Source order
 * everywhere, so the same input gives the same bytes.
 */
export function lowerToIr(a: Analysis, source: { file: string; sha256: string }): Ir {
  const attached = new Set<string>();
  for (const iface of a.ifaces) for (const refs of Object.values(iface.chains)) refs.forEach((r) => attached.add(r.name));
  a.gateway?.forward.forEach((r) => attached.add(r.name));

  const natEnabled = [...attached].some((n) => a.functions.get(n)?.element.type === 'nat') || a.ifaces.some((i) => i.masquerade);
  const routeIfaces = new Set((a.gateway?.routes ?? []).map((r) => r.iface));
  const conntrackEnabled = attached.size > 0 || a.gateway !== null || a.ifaces.some((i) => i.masquerade);

  const ifaces: IrIface[] = a.ifaces.map((i) => lowerIface(i, natEnabled, routeIfaces.has(i.name)));

  return {
    irVersion: IR_VERSION,
    source,
    nics: nicsOf(a.ifaces),
    ifaces,
    gateway: a.gateway && {
      name: a.gateway.name,
      sendTimeExceeded: a.gateway.sendTimeExceeded,
      forward: a.gateway.forward.map((r) => r.name),
      routes: a.gateway.routes.map((r) => ({
        name: r.name,
        net: ipv4Text(r.net),
        netmask: ipv4Text(maskOf(r.prefix)),
        prefixLength: r.prefix,
        nexthop: r.nexthop === null ? null : ipv4Text(r.nexthop),
        iface: r.iface,
        cost: r.cost,
        source: irSpan(r.span),
      })),
    },
    conntrack: {
      enabled: conntrackEnabled,
      limit: a.conntrack.limit,
      reserve: a.conntrack.reserve,
      statefulTcp: a.conntrack.statefulTcp,
      timeouts: a.conntrack.timeouts,
    },
    nat: { enabled: natEnabled },
    loadBalancer: a.loadBalancer && {
      name: a.loadBalancer.name,
      layer: 'tcp',
      clients: a.loadBalancer.clients,
      servers: {
        iface: a.loadBalancer.servers.iface,
        algorithm: a.loadBalancer.servers.algorithm,
        pool: a.loadBalancer.servers.pool.map((n) => ({ address: n.text, port: n.port })),
      },
    },
    syslog: a.syslog && { name: a.syslog.name, address: a.syslog.address.text, port: a.syslog.port },
    timers: a.timers.map((t) => ({ name: t.name, interval: t.interval, data: t.data })),
    functions: reachableFunctions(a.functions, attached),
    rules: pickRules(a, reachableFunctions(a.functions, attached)),
  };
}

function lowerIface(i: IfaceInfo, natEnabled: boolean, forwarding: boolean): IrIface {
  const userSteps = (chain: ChainName): IrChainStep[] => i.chains[chain].map((r) => ({ kind: 'function', function: r.name }));
  const hasFunctions = CHAIN_NAMES.some((c) => i.chains[c].length > 0);
  const conntrack = hasFunctions || forwarding || i.masquerade;
  // Reverse translation runs on every tracking Iface (8.6 Recommended), once.
  const translate = natEnabled && conntrack;
  const chains: Record<ChainName, IrChainStep[]> = {
    prerouting: [
      ...userSteps('prerouting'),
      ...(i.masquerade ? [{ kind: 'demasquerade' } as const] : []),
      ...(translate ? [{ kind: 'dnat-translate' } as const] : []),
    ],
    input: userSteps('input'),
    output: userSteps('output'),
    postrouting: [
      ...userSteps('postrouting'),
      ...(i.masquerade ? [{ kind: 'masquerade' } as const] : []),
      ...(translate ? [{ kind: 'snat-translate' } as const] : []),
    ],
  };
  return {
    name: i.name,
    nic: i.nic,
    vlan: i.vlan,
    config: i.config,
    address: i.address?.text ?? null,
    netmask: i.netmask?.text ?? null,
    prefixLength: i.netmask?.prefix ?? null,
    gateway: i.gateway?.text ?? null,
    dns: i.dns?.text ?? null,
    masquerade: i.masquerade,
    sendQueueLimit: i.sendQueueLimit,
    bufferLimit: i.bufferLimit,
    chains,
    forwarding,
    conntrack,
    source: irSpan(i.element.nameSpan),
  };
}

function nicsOf(ifaces: readonly IfaceInfo[]): IrNic[] {
  const nics = new Map<string, IrNic>();
  for (const i of ifaces) {
    const key = 'index' in i.nic ? `#${i.nic.index}` : i.nic.mac;
    const existing = nics.get(key);
    const limits = i.vlan === null ? { sendQueueLimit: i.sendQueueLimit, bufferLimit: i.bufferLimit } : { sendQueueLimit: null, bufferLimit: null };
    if (!existing || i.vlan === null) {
      nics.set(key, { index: 'index' in i.nic ? i.nic.index : null, mac: 'mac' in i.nic ? i.nic.mac : null, ...(existing && i.vlan !== null ? existing : limits) });
    }
  }
  return [...nics.values()].sort((a, b) => (a.index ?? 1e9) - (b.index ?? 1e9) || (a.mac ?? '').localeCompare(b.mac ?? ''));
}

/** Attached functions and everything they call, in source order. */
function reachableFunctions(functions: ReadonlyMap<string, FunctionInfo>, attached: ReadonlySet<string>): IrFunction[] {
  const needed = new Set<string>();
  const visit = (name: string) => {
    if (needed.has(name)) return;
    needed.add(name);
    functions.get(name)?.calls.forEach((c) => visit(c.callee));
  };
  attached.forEach(visit);
  return [...functions.values()]
    .filter((f) => needed.has(f.element.name))
    .map((f) => ({
      name: f.element.name,
      type: f.element.type,
      subtype: f.element.subtype,
      attached: attached.has(f.element.name),
      body: f.body,
      source: irSpan(f.element.decl.span),
    }));
}

function pickRules(a: Analysis, functions: readonly IrFunction[]): Ir['rules'] {
  const ids: string[] = [];
  const collect = (s: IrStatement): void => {
    ids.push(s.rule);
    if (s.kind === 'if') {
      s.then.forEach(collect);
      s.else?.forEach(collect);
    } else if (s.kind === 'block') s.body.forEach(collect);
  };
  functions.forEach((f) => f.body.forEach(collect));
  return Object.fromEntries(ids.map((id) => [id, a.rules[id]!]));
}

export function irSpan(span: Span): IrSpan {
  return { file: span.file, line: span.startLine, column: span.startColumn, endLine: span.endLine, endColumn: span.endColumn };
}
