import type * as A from '../../grammar/ast.ts';
import type { Span } from '../../grammar/span.ts';
import { nameText } from '../../grammar/format.ts';
import { diagnostic } from '../diagnostics/diagnostic.ts';
import type { ChainName } from '../ir.ts';
import { CHAIN_NAMES } from '../ir.ts';
import type { MemberPolicy, MObject } from '../members.ts';
import type { TypedElement } from '../namespace.ts';
import { closest } from '../suggest.ts';
import { bareWord, entry, ipv4Text, maskOf, spanOf, type ElementContext } from './common.ts';
import { chainNames, type ChainRef } from './chains.ts';

/* Iface (nacl-language.md 6.1). */

export const IFACE_KEYS = [
  'index',
  'vlan',
  'config',
  'address',
  'netmask',
  'gateway',
  'dns',
  'masquerade',
  'send_queue_limit',
  'buffer_limit',
  ...CHAIN_NAMES,
];
const CONFIGS = ['dhcp', 'dhcp-with-fallback', 'static'];

export interface IfaceInfo {
  readonly name: string;
  readonly element: TypedElement;
  readonly nic: { index: number } | { mac: string };
  readonly vlan: number | null;
  readonly config: 'static' | 'dhcp' | 'dhcp-with-fallback';
  readonly address: { value: number; text: string } | null;
  readonly netmask: { value: number; text: string; prefix: number } | null;
  readonly gateway: { value: number; text: string } | null;
  readonly dns: { value: number; text: string } | null;
  readonly masquerade: boolean;
  readonly sendQueueLimit: number | null;
  readonly bufferLimit: number | null;
  readonly chains: Record<ChainName, ChainRef[]>;
  readonly indexSpan: Span;
  readonly span: Span;
}

export const IFACE_POLICY: MemberPolicy = {
  caseInsensitive: true,
  duplicateKeyCode: () => 'E502',
  checkShape(a: A.Assignment, path: readonly A.Identifier[]) {
    if (path.length !== 1) return diagnostic('E515', a.target.span, `Invalid Iface member ${nameText(a.target)}`, { help: 'an Iface takes assignments of the form name.key: value' });
    const key = path[0]!.text.toLowerCase();
    if (!IFACE_KEYS.includes(key)) {
      const suggestion = closest(path[0]!.text, IFACE_KEYS, true);
      return diagnostic('E501', a.target.span, `Invalid Iface member ${path[0]!.text}`, {
        help: suggestion ? `did you mean ${suggestion}?` : `valid members are: ${IFACE_KEYS.join(', ')}`,
      });
    }
    return null;
  },
  alreadySet(path: readonly A.Identifier[], a: A.Assignment) {
    const key = path[0]!.text.toLowerCase();
    if ((CHAIN_NAMES as readonly string[]).includes(key)) return { code: 'E505', message: `Iface chain ${key} has already been set` };
    return { code: 'E516', message: `Member ${nameText(a.target)} has already been set` };
  },
  copyAllowedAt: () => false,
};

/** The member tree of an Iface: its object, or `{ config: word }` for `Iface x dhcp`. */
export function ifaceTree(element: TypedElement, ctx: ElementContext): MObject | undefined {
  const value = element.decl.value;
  if (value.kind === 'Object') return undefined; // built by the generic tree builder
  const word = value.kind === 'Name' && value.parts.length === 1 ? value.parts[0]!.text : undefined;
  if (word === undefined) {
    ctx.report('E504', value.span, `An Iface has to contain key value pairs, or be set to a configuration type (${CONFIGS.join(', ')})`);
    return { kind: 'object', entries: new Map(), span: value.span };
  }
  if (!CONFIGS.includes(word.toLowerCase())) {
    const suggestion = closest(word, CONFIGS, true);
    ctx.report('E503', value.span, `Invalid Iface value ${word}`, {
      help: suggestion ? `did you mean ${suggestion}?` : `the configuration types are ${CONFIGS.join(', ')}`,
    });
    return { kind: 'object', entries: new Map(), span: value.span };
  }
  return {
    kind: 'object',
    entries: new Map([['config', { key: 'config', keySpan: value.span, value: { kind: 'leaf', value }, span: value.span, assignment: null }]]),
    span: value.span,
  };
}

export function validateIface(element: TypedElement, tree: MObject, ctx: ElementContext): IfaceInfo | undefined {
  const span = element.decl.value.span;
  for (const [k, e] of tree.entries) {
    if (IFACE_KEYS.includes(k) || e.assignment) continue; // assignments were checked when applied
    const suggestion = closest(e.key, IFACE_KEYS, true);
    ctx.report('E501', e.keySpan, `Invalid Iface member ${e.key}`, {
      help: suggestion ? `did you mean ${suggestion}?` : `valid members are: ${IFACE_KEYS.join(', ')}`,
    });
  }

  const indexEntry = entry(tree, 'index');
  let nic: IfaceInfo['nic'] | undefined;
  if (!indexEntry) {
    ctx.report('E508', span, `Iface ${element.name} has no index`, { help: 'add index: N, the number of the NIC this Iface uses' });
  } else {
    const r = ctx.resolve(indexEntry.value);
    if (r?.kind === 'string') {
      if (/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(r.value)) nic = { mac: r.value.toLowerCase() };
      else ctx.report('E412', spanOf(indexEntry), `index must be a NIC number or a MAC address "aa:bb:cc:dd:ee:ff", not "${r.value}"`);
    } else if (r) {
      const n = ctx.integerValue(r, spanOf(indexEntry), 'index', 0, 1023);
      if (n !== undefined) nic = { index: n };
    }
  }

  const vlanEntry = entry(tree, 'vlan');
  const vlan = vlanEntry ? ctx.integer(vlanEntry, 'vlan', 1, 4094) : undefined;
  const configEntry = entry(tree, 'config');
  let config: IfaceInfo['config'] = 'static';
  if (configEntry) {
    const word = bareWord(configEntry.value);
    if (word === undefined || !CONFIGS.includes(word.toLowerCase())) {
      const suggestion = word ? closest(word, CONFIGS, true) : undefined;
      ctx.report('E509', spanOf(configEntry), `Invalid config value${word ? ` ${word}` : ''}: it must be one of ${CONFIGS.join(', ')}`, {
        help: suggestion ? `did you mean ${suggestion}?` : 'write the word itself; a name that resolves to one is not accepted',
      });
    } else {
      config = word.toLowerCase() as IfaceInfo['config'];
    }
  }
  const addressEntry = entry(tree, 'address');
  const netmaskEntry = entry(tree, 'netmask');
  const gatewayEntry = entry(tree, 'gateway');
  const dnsEntry = entry(tree, 'dns');
  const address = addressEntry ? ctx.ipv4(addressEntry, 'address') : undefined;
  const netmask = netmaskEntry ? ctx.netmask(netmaskEntry, 'netmask') : undefined;
  const gateway = gatewayEntry ? ctx.ipv4(gatewayEntry, 'gateway') : undefined;
  const dns = dnsEntry ? ctx.ipv4(dnsEntry, 'dns') : undefined;
  const masqueradeEntry = entry(tree, 'masquerade');
  const masquerade = masqueradeEntry ? ctx.boolean(masqueradeEntry, 'E514', 'masquerade') : false;
  const sqEntry = entry(tree, 'send_queue_limit');
  const blEntry = entry(tree, 'buffer_limit');
  const sendQueueLimit = sqEntry ? ctx.integer(sqEntry, 'send_queue_limit', 0, Number.MAX_SAFE_INTEGER) : undefined;
  const bufferLimit = blEntry ? ctx.integer(blEntry, 'buffer_limit', 0, Number.MAX_SAFE_INTEGER) : undefined;

  const isVlan = vlanEntry !== undefined;
  if (config === 'dhcp') {
    // Rules 4 and 9: static members next to dhcp would be silently ignored.
    for (const e of [addressEntry, netmaskEntry, gatewayEntry, dnsEntry]) {
      if (!e) continue;
      ctx.report('E511', configEntry ? spanOf(configEntry) : e.keySpan, `An Iface with config dhcp cannot set ${e.key}`, {
        related: [{ span: e.span, message: `${e.key} is set here` }],
        help: `use config: dhcp-with-fallback to keep ${e.key} as the fallback, or remove it`,
      });
    }
  } else {
    const needsStatic = isVlan || config === 'dhcp-with-fallback' || addressEntry !== undefined;
    if (needsStatic && (!addressEntry || !netmaskEntry) && !(netmaskEntry && !addressEntry)) {
      const missing = [!addressEntry && 'address', !netmaskEntry && 'netmask'].filter(Boolean).join(' and ');
      const why = isVlan ? 'a VLAN Iface' : config === 'dhcp-with-fallback' ? 'an Iface with config dhcp-with-fallback' : 'an Iface with an address';
      ctx.report('E510', span, `${why} needs address and netmask: ${missing} missing`);
    }
    if (netmaskEntry && !addressEntry) ctx.report('E517', netmaskEntry.keySpan, 'netmask without address', { help: 'add the address the netmask applies to' });
  }
  if (isVlan) {
    for (const e of [sqEntry, blEntry]) {
      if (!e) continue;
      ctx.report('E512', span, `A VLAN Iface cannot set ${e.key}: it belongs to the physical NIC`, {
        related: [{ span: e.span, message: `${e.key} is set here` }],
        help: `set it on the Iface with index ${nic && 'index' in nic ? nic.index : '...'} and no vlan`,
      });
    }
  }
  if (gateway && address && netmask && ((gateway.value ^ address.value) & maskOf(netmask.prefix)) !== 0) {
    ctx.report('W09', spanOf(gatewayEntry!), `gateway ${gateway.text} is outside the subnet ${ipv4Text((address.value & maskOf(netmask.prefix)) >>> 0)}/${netmask.prefix} of ${element.name}`);
  }

  const chains = {} as Record<ChainName, ChainRef[]>;
  for (const chain of CHAIN_NAMES) {
    const e = entry(tree, chain);
    chains[chain] = e ? chainNames(e, ctx, 'E506') : [];
  }
  if (!nic) return undefined;
  return {
    name: element.name,
    element,
    nic,
    vlan: vlan ?? null,
    config,
    address: address ?? null,
    netmask: netmask ?? null,
    gateway: gateway ?? null,
    dns: dns ?? null,
    masquerade: masquerade ?? false,
    sendQueueLimit: sendQueueLimit ?? null,
    bufferLimit: bufferLimit ?? null,
    chains,
    indexSpan: indexEntry ? spanOf(indexEntry) : span,
    span,
  };
}

/** Rules 6 and 11: one stack per NIC, one per (NIC, VLAN id). */
export function checkIfaceIndexes(ifaces: readonly IfaceInfo[], ctx: ElementContext): void {
  const physical = new Map<string, IfaceInfo>();
  const vlans = new Map<string, IfaceInfo>();
  for (const iface of ifaces) {
    const nicKey = 'index' in iface.nic ? `#${iface.nic.index}` : iface.nic.mac;
    if (iface.vlan === null) {
      const first = physical.get(nicKey);
      if (first) {
        ctx.report('E513', iface.indexSpan, `Iface ${iface.name} uses the same NIC as Iface ${first.name}`, {
          related: [{ span: first.indexSpan, message: `${first.name} uses it here` }],
          help: 'one NIC carries one untagged Iface; use vlan: N for more stacks on it',
        });
      } else physical.set(nicKey, iface);
    } else {
      const key = `${nicKey}/${iface.vlan}`;
      const first = vlans.get(key);
      if (first) {
        ctx.report('E518', iface.indexSpan, `VLAN ${iface.vlan} is used twice on one NIC: by ${first.name} and ${iface.name}`, {
          related: [{ span: first.indexSpan, message: `${first.name} is here` }],
        });
      } else vlans.set(key, iface);
    }
  }
}
