import { Ajv2020 } from 'ajv/dist/2020.js';
import { isMap, isScalar, isSeq, parseDocument, type Document, type Node as YamlNode, type Pair as YamlPair, Scalar } from 'yaml';
import type * as A from '../grammar/ast.ts';
import { parseNacl } from '../grammar/parse.ts';
import { LineMap, type Span } from '../grammar/span.ts';
import configSchema from '../schemas/config.schema.json' with { type: 'json' };
import { schemaProblems } from './diagnostics/schema-errors.ts';
import { problemNode } from './yaml-nodes.ts';
import { diagnostic, type Diagnostic } from './diagnostics/diagnostic.ts';

/*
 * The YAML form of a config (schemas/config.schema.json): the same elements
 * as data. It is translated into the NaCl syntax tree, with every span
 * pointing into the YAML file, and then compiled like any .nacl file.
 * Scalars are NaCl value text (`10.0.0.0/8`, `8080-8090`, `http`); a NaCl
 * string is written with its quotes (`'"text"'`), except a MAC address
 * `index`, which may be written bare. Function bodies are NaCl statements
 * in a block scalar.
 */

export const TYPED_KEYS = ['Iface', 'Gateway', 'Load_balancer', 'Conntrack', 'Syslog', 'Timer'] as const;
export const FUNCTION_KEYS = ['Filter', 'Nat'] as const;

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

let validateConfig: ReturnType<Ajv2020['compile']> | undefined;

export interface YamlProgram {
  readonly program: A.Program;
  readonly diagnostics: Diagnostic[];
  readonly lines: LineMap;
}

export function yamlToProgram(text: string, file: string): YamlProgram {
  const lines = new LineMap(file, text);
  const diagnostics: Diagnostic[] = [];
  const empty: A.Program = { kind: 'Program', file, elements: [], comments: [], span: lines.span(0, text.length) };
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  for (const e of doc.errors) {
    const [start, end] = e.pos;
    diagnostics.push(diagnostic('E120', lines.span(start, Math.max(end, start + 1)), `invalid YAML: ${e.message.split('\n')[0]}`));
  }
  if (diagnostics.length > 0) return { program: empty, diagnostics, lines };

  validateConfig ??= new Ajv2020({ allErrors: true, strict: false, verbose: true }).compile(configSchema);
  const data = doc.toJS();
  if (!validateConfig(data ?? {})) {
    for (const p of schemaProblems(validateConfig.errors ?? [], data ?? {})) {
      const node = problemNode(doc, p.path, p.key);
      const range = node?.range ?? [0, 0];
      const where = p.path.length ? `at ${p.path.join('.')}` : 'at the top level';
      diagnostics.push(
        diagnostic('E121', lines.span(range[0], Math.max(range[1], range[0] + 1)), `${where}: ${p.message}`, {
          help: 'see schemas/config.schema.json for the YAML form',
        }),
      );
    }
    return { program: empty, diagnostics, lines };
  }
  const builder = new Builder(text, lines, diagnostics);
  const elements = builder.document(doc);
  return { program: { ...empty, elements }, diagnostics, lines };
}

class Builder {
  constructor(
    private readonly text: string,
    private readonly lines: LineMap,
    private readonly diagnostics: Diagnostic[],
  ) {}

  document(doc: Document): A.TopLevel[] {
    const root = doc.contents;
    const elements: A.TopLevel[] = [];
    if (!isMap(root)) return elements;
    for (const section of root.items) {
      const sectionName = String((section.key as Scalar).value);
      if (!isMap(section.value)) continue;
      for (const item of section.value.items) {
        const el = this.element(sectionName, item);
        if (el) elements.push(el);
      }
    }
    return elements.sort((a, b) => a.span.startOffset - b.span.startOffset);
  }

  private element(section: string, pair: YamlPair): A.TopLevel | undefined {
    const keyNode = pair.key as Scalar;
    const name = String(keyNode.value);
    const keySpan = this.span(keyNode.range!);
    if ((TYPED_KEYS as readonly string[]).includes(section)) {
      const value = this.value(pair.value as YamlNode, name === 'index');
      if (!value) return undefined;
      const type = this.identifierAt(section, keySpan);
      return { kind: 'TypedInit', type, name: this.identifierAt(name, keySpan), value, span: join(keySpan, value.span) };
    }
    if (section === 'values' || section === 'assignments') {
      const value = this.value(pair.value as YamlNode, name.endsWith('.index'));
      if (!value) return undefined;
      const target = this.dotted(name, keySpan);
      return target && { kind: 'Assignment', target, value, span: join(keySpan, value.span) };
    }
    if ((FUNCTION_KEYS as readonly string[]).includes(section)) return this.functionDecl(section, name, keySpan, pair.value as YamlNode);
    return undefined;
  }

  private functionDecl(type: string, name: string, keySpan: Span, node: YamlNode): A.FunctionDecl | undefined {
    if (!isMap(node)) return undefined;
    const subtypeNode = node.get('subtype', true) as Scalar;
    const bodyNode = node.get('body', true) as Scalar;
    const header = `${type}::${String(subtypeNode.value)} ${name} {\n`;
    const body = String(bodyNode.value);
    const parsed = parseNacl(`${header}${body}\n}`, this.lines.file);
    // Spans of the wrapped text map back: the header to the YAML key, the body into the scalar.
    const toSource = this.scalarOffsets(bodyNode);
    const remap = (span: Span): Span => {
      const inBody = span.startOffset >= header.length && span.startOffset < header.length + body.length;
      if (!inBody) return keySpan;
      const start = toSource(span.startOffset - header.length);
      const end = toSource(Math.min(span.endOffset, header.length + body.length) - header.length);
      return this.lines.span(start, Math.max(end, start));
    };
    for (const d of parsed.diagnostics) {
      this.diagnostics.push({ ...d, span: remap(d.span), ...(d.related ? { related: d.related.map((r) => ({ ...r, span: remap(r.span) })) } : {}) });
    }
    const [fn, ...more] = parsed.program.elements;
    if (more.length > 0) {
      // The body closed the function and went on: nothing of it may be dropped silently.
      this.diagnostics.push(
        diagnostic('E121', this.span(bodyNode.range!), `body of ${name}: a '}' ends the function early and more follows; a body holds statements only`, {
          help: 'declare other elements in their own sections, and balance the braces inside the body',
        }),
      );
      return undefined;
    }
    if (!fn || fn.kind !== 'Function') return undefined;
    return remapSpans(fn, remap) as A.FunctionDecl;
  }

  /** Maps offsets in a scalar's value to offsets in the YAML source. */
  private scalarOffsets(node: Scalar): (offset: number) => number {
    const [start, valueEnd] = node.range!;
    if (node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED) {
      // Each source line's text appears in the value in order, whatever the
      // style does between lines (a literal keeps the breaks, a folded one
      // turns them into spaces) and whatever indentation indicator set the
      // indent: find each line's text in the value and map through it.
      const value = String(node.value);
      const segments: { valueStart: number; sourceStart: number }[] = [];
      let pos = this.text.indexOf('\n', start) + 1;
      let cursor = 0;
      while (pos > 0 && pos < valueEnd) {
        const lineEnd = this.text.indexOf('\n', pos);
        const line = this.text.slice(pos, lineEnd < 0 ? this.text.length : lineEnd).replace(/\r$/, '');
        const trimmed = line.trimStart();
        const at = trimmed ? value.indexOf(trimmed, cursor) : -1;
        if (at >= 0) {
          segments.push({ valueStart: at, sourceStart: pos + line.length - trimmed.length });
          cursor = at + trimmed.length;
        }
        pos = lineEnd < 0 ? -1 : lineEnd + 1;
      }
      return (offset) => {
        let k = segments.length - 1;
        while (k > 0 && segments[k]!.valueStart > offset) k--;
        const seg = segments[k];
        return seg ? Math.min(seg.sourceStart + Math.max(0, offset - seg.valueStart), valueEnd) : valueEnd;
      };
    }
    const quote = node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE ? 1 : 0;
    return (offset) => Math.min(start + quote + offset, valueEnd);
  }

  private value(node: YamlNode, macAllowed: boolean): A.Value | undefined {
    const span = this.span(node.range!);
    if (isMap(node)) {
      const pairs: A.Pair[] = [];
      for (const item of node.items) {
        const key = item.key as Scalar;
        const keySpan = this.span(key.range!);
        const value = this.value(item.value as YamlNode, String(key.value) === 'index');
        if (!value) return undefined;
        pairs.push({ kind: 'Pair', key: this.identifierAt(String(key.value), keySpan), value, span: join(keySpan, value.span) });
      }
      return { kind: 'Object', pairs, span };
    }
    if (isSeq(node)) {
      const items: A.Value[] = [];
      for (const item of node.items) {
        const v = this.value(item as YamlNode, false);
        if (!v) return undefined;
        items.push(v);
      }
      return { kind: 'List', items, span };
    }
    if (!isScalar(node)) return undefined;
    if (typeof node.value === 'boolean') return { kind: 'Boolean', value: node.value, span };
    const source = node.type === Scalar.PLAIN ? this.text.slice(node.range![0], node.range![1]) : String(node.value);
    if (macAllowed && MAC.test(source)) return { kind: 'String', value: source, raw: source, span };
    return this.naclValue(source, node);
  }

  /** Parses a scalar's text as one NaCl value, with spans in the YAML file. */
  private naclValue(source: string, node: Scalar): A.Value | undefined {
    const prefix = 'x: ';
    const parsed = parseNacl(prefix + source, this.lines.file);
    const toSource = this.scalarOffsets(node);
    const remap = (span: Span): Span => {
      const start = toSource(Math.max(0, span.startOffset - prefix.length));
      const end = toSource(Math.max(0, span.endOffset - prefix.length));
      return this.lines.span(start, Math.max(end, start));
    };
    const el = parsed.program.elements[0];
    const ok = parsed.program.elements.length === 1 && el?.kind === 'Assignment' && !parsed.diagnostics.some((d) => d.severity === 'error');
    for (const d of parsed.diagnostics) {
      if (ok || d.severity === 'error') this.diagnostics.push({ ...d, span: remap(d.span) });
    }
    if (!ok) {
      if (!parsed.diagnostics.some((d) => d.severity === 'error')) {
        this.diagnostics.push(diagnostic('E121', this.span(node.range!), `not a NaCl value: ${source}`, { help: 'write a NaCl string with its quotes, e.g. \'"text"\'' }));
      }
      return undefined;
    }
    return remapSpans((el as A.Assignment).value, remap) as A.Value;
  }

  private dotted(name: string, span: Span): A.NameRef | undefined {
    const parts = name.split('.');
    if (parts.some((p) => !/^[A-Za-z][A-Za-z0-9_-]*$/.test(p))) {
      this.diagnostics.push(diagnostic('E121', span, `not a valid name: ${name}`));
      return undefined;
    }
    return { kind: 'Name', parts: parts.map((p) => this.identifierAt(p, span)), span };
  }

  private identifierAt(text: string, span: Span): A.Identifier {
    return { kind: 'Identifier', text, span };
  }

  private span(range: readonly [number, number, number]): Span {
    return this.lines.span(range[0], Math.max(range[1], range[0]));
  }
}

function join(a: Span, b: Span): Span {
  return a.startOffset <= b.startOffset ? { ...a, endLine: b.endLine, endColumn: b.endColumn, endOffset: Math.max(a.endOffset, b.endOffset) } : b;
}

/** A copy of an AST subtree with every span passed through `remap`. */
function remapSpans(node: unknown, remap: (span: Span) => Span): unknown {
  if (Array.isArray(node)) return node.map((n) => remapSpans(n, remap));
  if (!node || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node)) {
    out[k] = k === 'span' || k === 'bodySpan' || k === 'operatorSpan' ? remap(v as Span) : remapSpans(v, remap);
  }
  return out;
}
