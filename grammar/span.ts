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
  /**
   * Offsets of the low half of every surrogate pair, in order; null when
   * there is none (the usual case), and offsets are columns.
   */
  private readonly lowHalves: Int32Array | null;

  constructor(readonly file: string, readonly text: string) {
    this.lowHalves = lowHalvesOf(text);
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c === 10) this.lineStarts.push(i + 1);
      else if (c === 13 && text.charCodeAt(i + 1) !== 10) this.lineStarts.push(i + 1);
    }
  }

  get lineCount(): number {
    return this.lineStarts.length;
  }

  /** UTF-16 units minus the low halves of surrogate pairs between the line start and `offset`. */
  private column(lineStart: number, offset: number): number {
    const units = offset - lineStart + 1;
    return this.lowHalves === null ? units : units - (lowerBound(this.lowHalves, offset) - lowerBound(this.lowHalves, lineStart));
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

  /** Columns line `line` spans: its characters (code points), line break excluded. */
  lineColumns(line: number): number {
    const start = this.lineStarts[line - 1] ?? 0;
    return this.column(start, start + this.lineLength(line)) - 1;
  }

  /** Where column `column` of line `line` starts, as an index into `lineText(line)` (clamped to its end). */
  indexOfColumn(line: number, column: number): number {
    const start = this.lineStarts[line - 1] ?? 0;
    const length = this.lineLength(line);
    if (this.lowHalves === null) return Math.max(0, Math.min(column - 1, length));
    // column() grows with the offset: the first offset whose column reaches `column`.
    let lo = 0;
    let hi = length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.column(start, start + mid) < column) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The text of a 1-based line, without its line break. */
  lineText(line: number): string {
    const start = this.lineStarts[line - 1];
    return start === undefined ? '' : this.text.slice(start, start + this.lineLength(line));
  }

  /** UTF-16 units of a 1-based line, without its line break (0 past the end). */
  private lineLength(line: number): number {
    const start = this.lineStarts[line - 1];
    if (start === undefined) return 0;
    const next = this.lineStarts[line];
    let end = next === undefined ? this.text.length : next;
    while (end > start && (this.text.charCodeAt(end - 1) === 10 || this.text.charCodeAt(end - 1) === 13)) end--;
    return end - start;
  }
}

function lowHalvesOf(text: string): Int32Array | null {
  if (!/[\uD800-\uDBFF][\uDC00-\uDFFF]/.test(text)) return null;
  const at: number[] = [];
  for (let i = 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const p = text.charCodeAt(i - 1);
    if (c >= 0xdc00 && c <= 0xdfff && p >= 0xd800 && p <= 0xdbff) at.push(i);
  }
  return Int32Array.from(at);
}

/** How many of the sorted `values` are below `x`. */
function lowerBound(values: Int32Array, x: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

