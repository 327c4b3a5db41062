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

/**
 * Maps offsets of one text to 1-based line/column positions. Columns count
 * characters (code points), as nacl-language.md 9.1 asks: a character
 * outside the BMP is one column, not the two UTF-16 units it takes.
 */
export class LineMap {
  private readonly lineStarts: number[] = [0];
  /** Whether any surrogate pair occurs; without one, offsets are columns. */
  private readonly astral: boolean;

  constructor(readonly file: string, readonly text: string) {
    this.astral = /[\uD800-\uDBFF][\uDC00-\uDFFF]/.test(text);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.lineStarts.push(i + 1);
      else if (c === 13 && text.charCodeAt(i + 1) !== 10) this.lineStarts.push(i + 1);
    }
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  private column(lineStart: number, offset: number): number {
    if (!this.astral) return offset - lineStart + 1;
    let column = 1;
    for (let i = lineStart; i < offset; i++) {
      const c = this.text.charCodeAt(i);
      // The high half of a pair counts; its low half does not.
      const low = c >= 0xdc00 && c <= 0xdfff;
      const afterHigh = i > lineStart && this.text.charCodeAt(i - 1) >= 0xd800 && this.text.charCodeAt(i - 1) <= 0xdbff;
      if (!(low && afterHigh)) column++;
    }
    return column;
  }

  /** Lines are looked up mostly in increasing order: try the last one first. */
  private lastLine = 0;

  position(offset: number): { line: number; column: number } {
    const starts = this.lineStarts;
    const last = this.lastLine;
    if (starts[last]! <= offset && (last + 1 === starts.length || starts[last + 1]! > offset)) {
      return { line: last + 1, column: this.column(starts[last]!, offset) };
    }
    if (last + 2 <= starts.length - 1 && starts[last + 1]! <= offset && starts[last + 2]! > offset) {
      this.lastLine = last + 1;
      return { line: last + 2, column: this.column(starts[last + 1]!, offset) };
    }
    let lo = 0;
    let hi = this.lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.lineStarts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    this.lastLine = lo;
    return { line: lo + 1, column: this.column(this.lineStarts[lo]!, offset) };
  }

  span(startOffset: number, endOffset: number): Span {
    // Hot in the parser: find the lines without allocating position objects.
    const startLine = this.lineIndex(startOffset);
    const endLine = endOffset === startOffset ? startLine : this.lineIndex(endOffset);
    return {
      file: this.file,
      startLine: startLine + 1,
      startColumn: this.column(this.lineStarts[startLine]!, startOffset),
      endLine: endLine + 1,
      endColumn: this.column(this.lineStarts[endLine]!, endOffset),
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
