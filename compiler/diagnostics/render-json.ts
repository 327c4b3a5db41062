import type { Diagnostic } from './diagnostic.ts';

/** The `--format json` shape; schemas/diagnostics.schema.json describes it. */
export interface JsonDiagnostic {
  file: string;
  line: number;
  column: number;
  endLine: number;
  endColumn: number;
  severity: 'error' | 'warning';
  code: string;
  message: string;
  help: string | null;
  related: { file: string; line: number; column: number; endLine: number; endColumn: number; message: string }[];
}

export function toJson(diagnostics: readonly Diagnostic[]): JsonDiagnostic[] {
  return diagnostics.map((d) => ({
    file: d.span.file,
    line: d.span.startLine,
    column: d.span.startColumn,
    endLine: d.span.endLine,
    endColumn: d.span.endColumn,
    severity: d.severity,
    code: d.code,
    message: d.message,
    help: d.help ?? null,
    related: (d.related ?? []).map((r) => ({
      file: r.span.file,
      line: r.span.startLine,
      column: r.span.startColumn,
      endLine: r.span.endLine,
      endColumn: r.span.endColumn,
      message: r.message,
    })),
  }));
}
