import type { LineMap } from '../../grammar/span.ts';
import type { Diagnostic } from './diagnostic.ts';

export interface TextRenderOptions {
  color: boolean;
}

const STYLE = {
  error: '\x1b[1;31m',
  warning: '\x1b[1;33m',
  bold: '\x1b[1m',
  blue: '\x1b[1;34m',
  reset: '\x1b[0m',
};

/**
 * `file:line:col: severity[CODE]: message`, the source line, a caret line
 * under the span, then related spans and the help line (cli.md).
 */
export function renderText(d: Diagnostic, lines: LineMap | undefined, options: TextRenderOptions): string {
  const c = (style: keyof typeof STYLE, s: string) => (options.color ? `${STYLE[style]}${s}${STYLE.reset}` : s);
  const { span } = d;
  const out = [
    `${c('bold', `${span.file}:${span.startLine}:${span.startColumn}:`)} ${c(d.severity, `${d.severity}[${d.code}]`)}: ${c('bold', d.message)}`,
  ];
  if (lines) out.push(...excerpt(lines, span.startLine, span.startColumn, span.endLine, span.endColumn, c));
  for (const r of d.related ?? []) {
    out.push(`${c('blue', 'note')}: ${r.message} at ${r.span.file}:${r.span.startLine}:${r.span.startColumn}`);
    if (lines && r.span.file === span.file) out.push(...excerpt(lines, r.span.startLine, r.span.startColumn, r.span.endLine, r.span.endColumn, c));
  }
  if (d.help) out.push(`${c('blue', 'help')}: ${d.help}`);
  return out.join('\n');
}

/** Columns of source shown at most; a longer line is cut to a window around the span. */
const MAX_EXCERPT = 160;
/** Columns kept before the span when the line is cut. */
const EXCERPT_LEAD = 40;

function excerpt(
  lines: LineMap,
  startLine: number,
  startColumn: number,
  endLine: number,
  endColumn: number,
  c: (style: keyof typeof STYLE, s: string) => string,
): string[] {
  const full = lines.lineText(startLine);
  // Columns count code points; cut the line by them (LineMap maps a column
  // to its index without walking the line, which may be very long).
  const length = lines.lineColumns(startLine);
  const cut = (from: number, to: number) => full.slice(lines.indexOfColumn(startLine, from + 1), lines.indexOfColumn(startLine, to + 1));
  const gutter = String(startLine);
  const pad = ' '.repeat(gutter.length);
  const last = endLine === startLine ? Math.max(endColumn, startColumn + 1) : length + 1;
  let width = Math.max(1, Math.min(last, length + 1) - startColumn);
  // A long line (generated configs put thousands of items on one) shows a window.
  let from = 0;
  let to = length;
  if (length > MAX_EXCERPT) {
    from = Math.max(0, startColumn - 1 - EXCERPT_LEAD);
    to = Math.min(length, from + MAX_EXCERPT);
    width = Math.max(1, Math.min(width, to - (startColumn - 1) + 1));
  }
  const shown = `${from > 0 ? '…' : ''}${cut(from, to)}${to < length ? '…' : ''}`;
  // Keep tabs in the marker prefix so the caret lines up under tabbed source.
  const prefix = (from > 0 ? ' ' : '') + cut(from, startColumn - 1).replace(/[^\t]/gu, ' ');
  return [`${pad} |`, `${gutter} | ${shown}`, `${pad} | ${prefix}${c('error', '^'.repeat(width))}`];
}

