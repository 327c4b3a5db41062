import { compileSource } from '../../compiler/compile.ts';

export const MARK = '⟨';

/** Source with one `⟨` marking where a diagnostic is expected: the clean source and the 1-based position. */
export function marked(source: string): { text: string; line: number; column: number } {
  const at = source.indexOf(MARK);
  if (at < 0) throw new Error('no marker in test source');
  const text = source.slice(0, at) + source.slice(at + MARK.length);
  const before = source.slice(0, at).split('\n');
  return { text, line: before.length, column: before[before.length - 1]!.length + 1 };
}

/** All diagnostics of a source, as `CODE line:column` strings. */
export function found(text: string): string[] {
  return compileSource(text, 'test.nacl').diagnostics.map((d) => `${d.code} ${d.span.startLine}:${d.span.startColumn}`);
}
