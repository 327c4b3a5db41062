import type { Span } from '../../grammar/span.ts';

/** An AST with spans dropped, for comparing trees that differ only in layout. */
export function withoutSpans(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutSpans);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'span' || k === 'bodySpan' || k === 'operatorSpan' || k === 'comments' || k === 'file') continue;
      out[k] = withoutSpans(v);
    }
    return out;
  }
  return node;
}

/** An AST with each span shortened to `line:col-line:col`, for readable snapshots. */
export function compactSpans(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(compactSpans);
  if (node && typeof node === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k === 'span' || k === 'bodySpan' || k === 'operatorSpan') {
        const s = v as Span;
        out[k] = `${s.startLine}:${s.startColumn}-${s.endLine}:${s.endColumn}`;
      } else out[k] = compactSpans(v);
    }
    return out;
  }
  return node;
}
