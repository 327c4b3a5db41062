import { Document, isMap, isScalar, Scalar } from 'yaml';
import type * as A from '../grammar/ast.ts';
import { formatProgram, inlineValue, nameText } from '../grammar/format.ts';

/*
 * The YAML form of a parsed .nacl file (the inverse of yaml-config.ts), for
 * `nacl convert --to yaml`. Comments inside function bodies survive (the body
 * is formatted NaCl text); other comments and stray numbers are dropped.
 */

const SECTION_ORDER = ['Iface', 'Gateway', 'Load_balancer', 'Conntrack', 'Syslog', 'Timer', 'values', 'assignments', 'Filter', 'Nat'];
const TYPE_SPELLING: Record<string, string> = {
  iface: 'Iface',
  gateway: 'Gateway',
  load_balancer: 'Load_balancer',
  conntrack: 'Conntrack',
  syslog: 'Syslog',
  timer: 'Timer',
  filter: 'Filter',
  nat: 'Nat',
};

export function programToYaml(program: A.Program): string {
  const sections = new Map<string, Record<string, unknown>>();
  const put = (section: string, name: string, value: unknown) => {
    if (!sections.has(section)) sections.set(section, {});
    sections.get(section)![name] = value;
  };
  for (const el of program.elements) {
    switch (el.kind) {
      case 'TypedInit':
        put(TYPE_SPELLING[el.type.text.toLowerCase()] ?? el.type.text, el.name.text, data(el.value));
        break;
      case 'Assignment':
        put(el.target.parts.length === 1 ? 'values' : 'assignments', nameText(el.target), data(el.value));
        break;
      case 'Function': {
        const text = formatProgram({ ...program, elements: [el], comments: program.comments.filter((c) => c.span.startOffset > el.span.startOffset && c.span.endOffset < el.span.endOffset) });
        const lines = text.trimEnd().split('\n');
        const body = lines.slice(1, -1).map((l) => l.replace(/^ {4}/, '')).join('\n') + '\n';
        const scalar = new Scalar(body);
        scalar.type = Scalar.BLOCK_LITERAL;
        put(TYPE_SPELLING[el.type.text.toLowerCase()] ?? el.type.text, el.name?.text ?? '', { subtype: el.subtype.text, body: scalar });
        break;
      }
      case 'StrayNumber':
        break;
    }
  }
  const ordered: Record<string, unknown> = {};
  for (const s of SECTION_ORDER) if (sections.has(s)) ordered[s] = sections.get(s);
  const doc = new Document(ordered);
  // Keep NaCl value text unquoted where YAML allows; yaml quotes what it must.
  const visit = (node: unknown) => {
    if (isMap(node)) node.items.forEach((p) => visit(p.value));
    else if (node && typeof node === 'object' && 'items' in node) (node as { items: unknown[] }).items.forEach(visit);
    else if (isScalar(node) && typeof node.value === 'string' && node.type !== Scalar.BLOCK_LITERAL) node.type = Scalar.PLAIN;
  };
  visit(doc.contents);
  return doc.toString({ lineWidth: 0 });
}

function data(value: A.Value): unknown {
  switch (value.kind) {
    case 'Object':
      return Object.fromEntries(value.pairs.map((p) => [p.key.text, data(p.value)]));
    case 'List':
      return value.items.map(data);
    case 'Boolean':
      return value.value;
    case 'Integer':
      return value.negative || (value.text.length > 1 && value.text.startsWith('0')) ? inlineValue(value) : value.value;
    default:
      return inlineValue(value);
  }
}
