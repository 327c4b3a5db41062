import { readFileSync, writeFileSync } from 'node:fs';

/** A failure of the command line or the file system: exit status 2 (cli.md). */
export class UsageError extends Error {}

export function readSource(path: string): string {
  return new TextDecoder().decode(readBytes(path));
}

/** A file's bytes, or a UsageError that says why it cannot be read. */
export function readBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    throw fileError('read', path, err, 'no such file');
  }
}

/** Writes a file, or throws a UsageError that says why it cannot be written. */
export function writeBytes(path: string, data: Uint8Array | string): void {
  try {
    writeFileSync(path, data);
  } catch (err) {
    throw fileError('write', path, err, 'no such directory');
  }
}

/** `cannot read|write PATH: why`, in words for the common errors; `missing` says what ENOENT means here. */
function fileError(verb: 'read' | 'write', path: string, err: unknown, missing: string): UsageError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? missing : code === 'EISDIR' ? 'is a directory' : code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (err as Error).message;
  return new UsageError(`cannot ${verb} ${path}: ${why}`);
}

/** Colour only on a TTY, and never when NO_COLOR is set (https://no-color.org). */
export function useColor(stream: NodeJS.WriteStream): boolean {
  if (process.env['NO_COLOR'] !== undefined && process.env['NO_COLOR'] !== '') return false;
  if (process.env['FORCE_COLOR'] !== undefined && process.env['FORCE_COLOR'] !== '0') return true;
  return stream.isTTY === true;
}

/** One of a flag's allowed words; `what` names the flag's kind in the error ("format", "mode", ...). */
export function parseFormat<T extends string>(value: string, allowed: readonly T[], what = 'format'): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`unknown ${what} '${value}' (expected ${allowed.join(', ')})`);
  }
  return value as T;
}
