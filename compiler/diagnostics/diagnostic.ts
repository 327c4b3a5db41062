import type { Span } from '../../grammar/span.ts';
import { CODES, type DiagnosticCode } from './codes.ts';

export type Severity = 'error' | 'warning';

export interface RelatedSpan {
  readonly span: Span;
  readonly message: string;
}

/** A problem found in the user's input: a value, never an exception. */
export interface Diagnostic {
  readonly severity: Severity;
  readonly code: DiagnosticCode;
  readonly message: string;
  readonly span: Span;
  readonly related?: readonly RelatedSpan[];
  readonly help?: string;
}

export interface DiagnosticExtras {
  related?: readonly RelatedSpan[];
  help?: string | undefined;
}

/** Builds a diagnostic whose severity comes from the code table. */
export function diagnostic(code: DiagnosticCode, span: Span, message: string, extras: DiagnosticExtras = {}): Diagnostic {
  const d: { -readonly [K in keyof Diagnostic]: Diagnostic[K] } = { severity: CODES[code].severity, code, message, span };
  if (extras.related && extras.related.length > 0) d.related = extras.related;
  if (extras.help) d.help = extras.help;
  return d;
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

/** Source order: file, then position, then code (stable for equal spans). */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  return [...diagnostics].sort(
    (a, b) =>
      (a.span.file < b.span.file ? -1 : a.span.file > b.span.file ? 1 : 0) ||
      a.span.startOffset - b.span.startOffset ||
      a.span.endOffset - b.span.endOffset ||
      (a.code < b.code ? -1 : a.code > b.code ? 1 : 0),
  );
}
