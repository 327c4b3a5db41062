/**
 * A region of one source file. Lines and columns are 1-based; a tab counts as
 * one column. `endLine`/`endColumn` and `endOffset` point just past the last
 * character (exclusive), as SARIF regions do.
 */
export interface Span {
  readonly file: string;
  readonly startLine: number;
  readonly startColumn: number;
  readonly endLine: number;
  readonly endColumn: number;
  readonly startOffset: number;
  readonly endOffset: number;
}

/** The smallest span covering both `a` and `b` (same file assumed). */
export function joinSpans(a: Span, b: Span): Span {
  const start = a.startOffset <= b.startOffset ? a : b;
  const end = a.endOffset >= b.endOffset ? a : b;
  return {
    file: a.file,
    startLine: start.startLine,
    startColumn: start.startColumn,
    startOffset: start.startOffset,
    endLine: end.endLine,
    endColumn: end.endColumn,
    endOffset: end.endOffset,
  };
}

/** Maps offsets of one text to 1-based line/column positions. */
export class LineMap {
  private readonly lineStarts: number[] = [0];

  constructor(readonly file: string, readonly text: string) {
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.lineStarts.push(i + 1);
      else if (c === 13 && text.charCodeAt(i + 1) !== 10) this.lineStarts.push(i + 1);
    }
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  /** Lines are looked up mostly in increasing order: try the last one first. */
  private lastLine = 0;

  position(offset: number): { line: number; column: number } {
    const starts = this.lineStarts;
    const last = this.lastLine;
    if (starts[last]! <= offset && (last + 1 === starts.length || starts[last + 1]! > offset)) {
      return { line: last + 1, column: offset - starts[last]! + 1 };
    }
    if (last + 2 <= starts.length - 1 && starts[last + 1]! <= offset && starts[last + 2]! > offset) {
      this.lastLine = last + 1;
      return { line: last + 2, column: offset - starts[last + 1]! + 1 };
    }
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    this.lastLine = lo;
    return { line: lo + 1, column: offset - this.lineStarts[lo]! + 1 };
  }

  span(startOffset: number, endOffset: number): Span {
    // Hot in the parser: find the lines without allocating position objects.
    const startLine = this.lineIndex(startOffset);
    const endLine = endOffset === startOffset ? startLine : this.lineIndex(endOffset);
    return {
      file: this.file,
      startLine: startLine + 1,
      startColumn: startOffset - this.lineStarts[startLine]! + 1,
      endLine: endLine + 1,
      endColumn: endOffset - this.lineStarts[endLine]! + 1,
      startOffset,
      endOffset,
    };
  }

  /** 0-based index of the line holding `offset`. */
  private lineIndex(offset: number): number {
    const starts = this.lineStarts;
    const last = this.lastLine;
    if (starts[last]! <= offset && (last + 1 === starts.length || starts[last + 1]! > offset)) return last;
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    this.lastLine = lo;
    return lo;
  }

  /** The text of a 1-based line, without its line break. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1];
    if (start === undefined) return '';
    const next = this.lineStarts[line];
    let end = next === undefined ? this.text.length : next;
    while (end > start && (this.text.charCodeAt(end - 1) === 10 || this.text.charCodeAt(end - 1) === 13)) end--;
    return this.text.slice(start, end);
  }
}
