import type * as A from '../../grammar/ast.ts';
import type { Span } from '../../grammar/span.ts';
import { nameText } from '../../grammar/format.ts';
import { diagnostic } from '../diagnostics/diagnostic.ts';
import { treeOf, type MemberPolicy, type MObject } from '../members.ts';
import type { TypedElement } from '../namespace.ts';
import { closest } from '../suggest.ts';
import { chainNames, type ChainRef } from './chains.ts';
import { entry, ipv4Text, maskOf, spanOf, type ElementContext } from './common.ts';

/* Gateway (nacl-language.md 6.2). */

const ROUTE_KEYS = ['host', 'net', 'netmask', 'nexthop', 'iface', 'cost'];
const NON_ROUTE = ['send_time_exceeded', 'forward'];

export interface RouteInfo {
  readonly name: string | null;
  readonly net: number;
  readonly prefix: number;
  readonly nexthop: number | null;
  readonly iface: string;
  readonly cost: number;
  readonly span: Span;
  readonly nexthopSpan: Span | null;
}

export interface GatewayInfo {
  readonly name: string;
  readonly element: TypedElement;
  readonly sendTimeExceeded: boolean;
  readonly forward: ChainRef[];
  readonly routes: RouteInfo[];
}

export function gatewayPolicy(element: TypedElement): MemberPolicy {
  const listForm = element.decl.value.kind === 'List';
  return {
    caseInsensitive: true,
    duplicateKeyCode: (depth, key) => (depth > 1 ? 'E527' : NON_ROUTE.includes(key) ? 'E522' : 'E523'),
    checkShape(a: A.Assignment, path: readonly A.Identifier[], tree: MObject) {
      if (listForm) {
        return diagnostic('E536', a.target.span, 'Trying to access a named member in a Gateway without named members', {
          help: `write the Gateway in object form to name routes: Gateway ${element.name} { r1: { ... }, ... }`,
        });
      }
      if (path.length > 2) return diagnostic('E535', a.target.span, `Invalid Gateway member ${nameText(a.target)}`);
      const head = path[0]!.text.toLowerCase();
      if (path.length === 1) {
        if (!NON_ROUTE.includes(head) && a.value.kind !== 'Object') {
          return diagnostic('E537', a.value.span, "A Gateway member's value needs to contain key value pairs", {
            help: `a route is an object: ${nameText(a.target)}: { net: ..., netmask: ..., iface: ... }`,
          });
        }
        return null;
      }
      if (NON_ROUTE.includes(head)) return diagnostic('E535', a.target.span, `Invalid Gateway member ${nameText(a.target)}`);
      if (!tree.entries.has(head)) {
        return diagnostic('E538', a.target.span, `No member named ${path[0]!.text} in Gateway ${element.name}`, {
          help: `add the route first: ${element.name}.${path[0]!.text}: { ... }`,
        });
      }
      const key = path[1]!.text.toLowerCase();
      if (!ROUTE_KEYS.includes(key)) return unknownRouteKey(path[1]!.text, a.target.span);
      return null;
    },
    alreadySet(path: readonly A.Identifier[], a: A.Assignment) {
      if (path.length === 1) {
        const head = path[0]!.text.toLowerCase();
        if (NON_ROUTE.includes(head)) return { code: 'E522', message: `Gateway member ${head} has already been set` };
        return { code: 'E537', message: `Gateway member ${path[0]!.text} has already been set` };
      }
      return { code: 'E539', message: `Member ${path[1]!.text} in route ${path[0]!.text} has already been set (${nameText(a.target)})` };
    },
    copyAllowedAt: () => false,
  };
}

function unknownRouteKey(key: string, span: Span) {
  const suggestion = closest(key, ROUTE_KEYS, true);
  return diagnostic('E526', span, `${key} is not a valid Gateway route member. Valid members are: ${ROUTE_KEYS.join(', ')}`, {
    help: suggestion ? `did you mean ${suggestion}?` : undefined,
  });
}

export function validateGateway(element: TypedElement, tree: MObject | undefined, ctx: ElementContext): GatewayInfo | undefined {
  const value = element.decl.value;
  const routes: RouteInfo[] = [];
  let sendTimeExceeded = true;
  let forward: ChainRef[] = [];
  if (value.kind === 'List') {
    value.items.forEach((item) => {
      if (item.kind !== 'Object') {
        ctx.report('E524', item.span, 'A Gateway that constitutes a list must be a list of objects (routes)', {
          help: `or use the object form to name routes and set forward or send_time_exceeded`,
        });
        return;
      }
      const routeTree = treeOf(item, gatewayPolicy(element), ctx.diagnostics, 2);
      const route = validateRoute(null, routeTree, item.span, ctx);
      if (route) routes.push(route);
    });
  } else if (tree) {
    for (const [k, e] of tree.entries) {
      if (k === 'send_time_exceeded') {
        const b = ctx.boolean(e, 'E532', 'send_time_exceeded');
        if (b !== undefined) sendTimeExceeded = b;
      } else if (k === 'forward') {
        forward = chainNames(e, ctx, 'E533');
      } else if (e.value.kind !== 'object') {
        ctx.report('E521', e.keySpan, `Invalid Gateway member ${e.key}`, {
          help: 'Gateway members are routes (objects), send_time_exceeded and forward',
        });
      } else {
        const route = validateRoute(e.key, e.value, e.value.span, ctx);
        if (route) routes.push(route);
      }
    }
  } else {
    ctx.report('E525', value.span, 'A Gateway must be an object of named routes or a list of routes');
    return undefined;
  }
  return { name: element.name, element, sendTimeExceeded, forward, routes };
}

function validateRoute(name: string | null, tree: MObject, span: Span, ctx: ElementContext): RouteInfo | undefined {
  for (const [k, e] of tree.entries) {
    if (!ROUTE_KEYS.includes(k) && !e.assignment) ctx.diagnostics.push(unknownRouteKey(e.key, e.keySpan));
  }
  const netEntry = entry(tree, 'net');
  const hostEntry = entry(tree, 'host');
  const maskEntry = entry(tree, 'netmask');
  const ifaceEntry = entry(tree, 'iface');
  if (netEntry && hostEntry) {
    ctx.report('E540', hostEntry.keySpan, 'A route cannot have both net and host', { related: [{ span: netEntry.span, message: 'net is set here' }] });
  }
  if (!maskEntry || !ifaceEntry || (!netEntry && !hostEntry)) {
    ctx.report('E530', span, 'A Gateway route must specify iface, netmask and either net or host', {
      help: `missing: ${[!ifaceEntry && 'iface', !maskEntry && 'netmask', !netEntry && !hostEntry && 'net'].filter(Boolean).join(', ')}`,
    });
  }
  const destination = netEntry ?? hostEntry;
  const net = destination ? ctx.ipv4(destination, destination.key.toLowerCase()) : undefined;
  const mask = maskEntry ? ctx.netmask(maskEntry, 'netmask') : undefined;
  const iface = ifaceEntry ? ctx.ifaceRef(ifaceEntry, 'E528', 'E529', 'Gateway route member iface') : undefined;
  const nexthopEntry = entry(tree, 'nexthop');
  const nexthop = nexthopEntry ? ctx.ipv4(nexthopEntry, 'nexthop') : undefined;
  const costEntry = entry(tree, 'cost');
  const cost = costEntry ? ctx.integer(costEntry, 'cost', 0, Number.MAX_SAFE_INTEGER) : 1;
  if (!net || !mask || !iface || cost === undefined || (nexthopEntry && !nexthop)) return undefined;
  const masked = (net.value & maskOf(mask.prefix)) >>> 0;
  if (masked !== net.value) {
    ctx.report('W03', spanOf(destination!), `${net.text} has host bits set for netmask ${mask.text}; the route uses ${ipv4Text(masked)}`, {
      help: `write ${ipv4Text(masked)}`,
    });
  }
  return {
    name,
    net: masked,
    prefix: mask.prefix,
    nexthop: nexthop?.value ?? null,
    iface,
    cost,
    span,
    nexthopSpan: nexthopEntry ? spanOf(nexthopEntry) : null,
  };
}

