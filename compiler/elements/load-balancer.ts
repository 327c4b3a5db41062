import type * as A from '../../grammar/ast.ts';
import { nameText } from '../../grammar/format.ts';
import { diagnostic } from '../diagnostics/diagnostic.ts';
import type { LbAlgorithm } from '../ir.ts';
import type { MEntry, MemberPolicy, MObject } from '../members.ts';
import type { TypedElement } from '../namespace.ts';
import { closest } from '../suggest.ts';
import { bareWord, entry, spanOf, unknownMember, type ElementContext } from './common.ts';

/* Load_balancer (nacl-language.md 6.3). */

const TOP_KEYS = ['layer', 'clients', 'servers'];
const CLIENT_KEYS = ['iface', 'port', 'wait_queue_limit', 'session_limit'];
const SERVER_KEYS = ['iface', 'algorithm', 'pool'];
const ALGORITHMS: LbAlgorithm[] = ['round_robin', 'least_connections', 'source_hash'];

export interface LoadBalancerInfo {
  readonly name: string;
  readonly element: TypedElement;
  readonly clients: { iface: string; port: number; waitQueueLimit: number; sessionLimit: number };
  readonly servers: { iface: string; algorithm: LbAlgorithm; pool: { address: number; text: string; port: number; span: A.Value['span'] }[] };
}

function keysAt(path: readonly string[]): readonly string[] | undefined {
  if (path.length === 0) return TOP_KEYS;
  if (path.length === 1 && path[0] === 'clients') return CLIENT_KEYS;
  if (path.length === 1 && path[0] === 'servers') return SERVER_KEYS;
  return undefined;
}

export const LOAD_BALANCER_POLICY: MemberPolicy = {
  caseInsensitive: true,
  duplicateKeyCode: () => 'E301',
  checkShape(a: A.Assignment, path: readonly A.Identifier[]) {
    // Every key on the way must be one the element knows (upstream let `lb.foo: {...}` through).
    const unknown = unknownMember(path, keysAt);
    return unknown && diagnostic('E541', a.target.span, `Invalid Load_balancer member ${nameText(a.target)}`, { help: unknown.help });
  },
  alreadySet: (_path, a) => ({ code: 'E303', message: `Member ${nameText(a.target)} has already been set` }),
  copyAllowedAt: (path) => path.length === 1 && ['clients', 'servers'].includes(path[0]!.text.toLowerCase()),
};

export function validateLoadBalancer(element: TypedElement, tree: MObject | undefined, ctx: ElementContext): LoadBalancerInfo | undefined {
  if (!tree) {
    ctx.report('E209', element.decl.value.span, 'Load_balancer must be an object');
    return undefined;
  }
  const start = element.decl.type.span;
  checkKeys(tree, TOP_KEYS, element.name, ctx);
  const missing = (what: string) => ctx.report('E550', start, `Load_balancer member ${what} has not been set`);

  const layerEntry = entry(tree, 'layer');
  if (!layerEntry) missing('layer');
  else {
    const word = bareWord(layerEntry.value);
    if (word?.toLowerCase() !== 'tcp') ctx.report('E542', spanOf(layerEntry), `Invalid layer value (${word ?? 'not a word'})`, { help: 'the only layer is tcp' });
  }

  const side = (key: 'clients' | 'servers'): MObject | undefined => {
    const e = entry(tree, key);
    if (!e) return missing(key);
    const object = ctx.objectOrNamed(e.value);
    if (!object) {
      return ctx.report('E549', spanOf(e), `Invalid ${key} value. It needs to be an object containing ${(key === 'clients' ? CLIENT_KEYS : SERVER_KEYS).join(', ')}, or the name of one`);
    }
    checkKeys(object, key === 'clients' ? CLIENT_KEYS : SERVER_KEYS, `${element.name}.${key}`, ctx);
    return object;
  };
  const clients = side('clients');
  const servers = side('servers');

  let clientInfo: LoadBalancerInfo['clients'] | undefined;
  if (clients) {
    const ifaceEntry = entry(clients, 'iface');
    const portEntry = entry(clients, 'port');
    if (!ifaceEntry) missing('clients.iface');
    if (!portEntry) missing('clients.port');
    const iface = ifaceEntry && ctx.ifaceRef(ifaceEntry, 'E543', 'E543', 'Load_balancer member clients.iface');
    const port = portEntry && ctx.port(portEntry, 'clients.port');
    const wq = entry(clients, 'wait_queue_limit');
    const sl = entry(clients, 'session_limit');
    const waitQueueLimit = wq ? ctx.integer(wq, 'wait_queue_limit', 0, Number.MAX_SAFE_INTEGER) : 1000;
    const sessionLimit = sl ? ctx.integer(sl, 'session_limit', 0, Number.MAX_SAFE_INTEGER) : 1000;
    if (iface && port !== undefined && waitQueueLimit !== undefined && sessionLimit !== undefined) {
      clientInfo = { iface, port, waitQueueLimit, sessionLimit };
    }
  }

  let serverInfo: LoadBalancerInfo['servers'] | undefined;
  if (servers) {
    const ifaceEntry = entry(servers, 'iface');
    if (!ifaceEntry) missing('servers.iface');
    const iface = ifaceEntry && ctx.ifaceRef(ifaceEntry, 'E543', 'E543', 'Load_balancer member servers.iface');
    const algorithmEntry = entry(servers, 'algorithm');
    let algorithm: LbAlgorithm | undefined = 'round_robin';
    if (algorithmEntry) {
      const written = bareWord(algorithmEntry.value);
      const word = written?.toLowerCase();
      if (!word || !(ALGORITHMS as string[]).includes(word)) {
        const suggestion = word ? closest(word, ALGORITHMS) : undefined;
        algorithm = ctx.report('E544', spanOf(algorithmEntry), `Invalid algorithm${written ? ` ${written}` : ''}. Valid algorithms are: ${ALGORITHMS.join(', ')}`, {
          help: suggestion ? `did you mean ${suggestion}?` : undefined,
        });
      } else algorithm = word as LbAlgorithm;
    }
    const poolEntry = entry(servers, 'pool');
    if (!poolEntry) missing('servers.pool');
    const pool = poolEntry ? validatePool(poolEntry, ctx) : undefined;
    if (iface && algorithm && pool) serverInfo = { iface, algorithm, pool };
  }
  if (!clientInfo || !serverInfo) return undefined;
  return { name: element.name, element, clients: clientInfo, servers: serverInfo };
}

function checkKeys(tree: MObject, allowed: readonly string[], where: string, ctx: ElementContext): void {
  for (const [k, e] of tree.entries) {
    if (allowed.includes(k.toLowerCase())) {
      if (e.value.kind === 'object' && k.toLowerCase() !== 'clients' && k.toLowerCase() !== 'servers') {
        for (const [, inner] of e.value.entries) ctx.report('E541', inner.keySpan, `Invalid Load_balancer member ${inner.key}`);
      }
      continue;
    }
    const suggestion = closest(e.key, allowed, true);
    ctx.report('E541', e.keySpan, `Invalid Load_balancer member ${e.key}${where.includes('.') ? ` in ${where}` : ''}`, {
      help: suggestion ? `did you mean ${suggestion}?` : `valid members are: ${allowed.join(', ')}`,
    });
  }
}

function validatePool(poolEntry: MEntry, ctx: ElementContext): LoadBalancerInfo['servers']['pool'] | undefined {
  if (poolEntry.value.kind !== 'leaf') return ctx.report('E545', spanOf(poolEntry), 'Invalid pool value: it must be a list of nodes or the name of one');
  let list = poolEntry.value.value;
  if (list.kind === 'Name' && list.parts.length === 1) {
    const element = ctx.namespace.elements.get(list.parts[0]!.text);
    if (!element) return ctx.report('E545', list.span, `No element with the name ${list.parts[0]!.text} exists`);
    if (element.kind !== 'untyped' || element.decl.value.kind !== 'List') {
      return ctx.report('E545', list.span, `Element ${element.name} does not consist of a list`);
    }
    ctx.resolver.used.add(element.name);
    list = element.decl.value;
  }
  if (list.kind !== 'List') return ctx.report('E545', list.span, 'Invalid pool value: it must be a list of nodes or the name of one');
  const nodes: LoadBalancerInfo['servers']['pool'] = [];
  list.items.forEach((item, i) => {
    const tree = nodeTree(item, ctx);
    if (!tree) {
      ctx.report('E546', item.span, `Element ${item.kind === 'Name' ? item.parts.map((p) => p.text).join('.') : `in node ${i}`} must be an object with address and port`);
      return;
    }
    for (const [k, e] of tree.entries) {
      if (k.toLowerCase() !== 'address' && k.toLowerCase() !== 'port') {
        ctx.report('E547', e.keySpan, `Invalid member ${e.key} in node ${i} in servers.pool`, { help: 'a pool node has address and port' });
      }
    }
    const address = entry(tree, 'address');
    const port = entry(tree, 'port');
    if (!address || !port) {
      ctx.report('E548', item.span, 'An object in a pool needs to specify address, port');
      return;
    }
    const a = ctx.ipv4(address, 'pool node address');
    const p = ctx.port(port, 'pool node port');
    if (a && p !== undefined) nodes.push({ address: a.value, text: a.text, port: p, span: item.span });
  });
  return nodes.length === list.items.length ? nodes : undefined;
}

function nodeTree(item: A.Value, ctx: ElementContext): MObject | undefined {
  if (item.kind === 'Object') {
    // Pool nodes are written inline; duplicate keys are errors (upstream: last wins).
    const entries = new Map<string, MEntry>();
    for (const pair of item.pairs) {
      const k = pair.key.text.toLowerCase();
      const first = entries.get(k);
      if (first) {
        ctx.report('E301', pair.key.span, `Member ${pair.key.text} has already been set in this node`, { related: [{ span: first.keySpan, message: 'first set here' }] });
        continue;
      }
      entries.set(k, { key: pair.key.text, keySpan: pair.key.span, value: { kind: 'leaf', value: pair.value }, span: pair.span, assignment: null });
    }
    return { kind: 'object', entries, span: item.span };
  }
  return ctx.objectOrNamed({ kind: 'leaf', value: item });
}
