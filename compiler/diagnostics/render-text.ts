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

function excerpt(
  lines: LineMap,
  startLine: number,
  startColumn: number,
  endLine: number,
  endColumn: number,
  c: (style: keyof typeof STYLE, s: string) => string,
): string[] {
  const text = lines.lineText(startLine);
  // Columns count code points: measure and cut the line in them too.
  const chars = Array.from(text);
  const gutter = String(startLine);
  const pad = ' '.repeat(gutter.length);
  const last = endLine === startLine ? Math.max(endColumn, startColumn + 1) : chars.length + 1;
  const width = Math.max(1, Math.min(last, chars.length + 1) - startColumn);
  // Keep tabs in the marker prefix so the caret lines up under tabbed source.
  const prefix = chars.slice(0, startColumn - 1).join('').replace(/[^\t]/gu, ' ');
  return [`${pad} |`, `${gutter} | ${text}`, `${pad} | ${prefix}${c('error', '^'.repeat(width))}`];
}
