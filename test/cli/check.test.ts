import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nacl } from '../helpers/cli.ts';
import { examples, ROOT } from '../helpers/examples.ts';
import { ourSchema, sarifSchema } from '../helpers/schemas.ts';

const dir = mkdtempSync(join(tmpdir(), 'nacl-check-'));
const bad = join(dir, 'bad.nacl');
writeFileSync(bad, 'Iface eth0 {\n  index: 0,\n  address 10.0.0.1\n}\nx: {}\n');

describe('nacl check', () => {
  it('accepts every example and exits 0', () => {
    const r = nacl(['check', ...examples().map((e) => e.path)]);
    expect(r.stderr).not.toContain('error[');
    expect(r.status).toBe(0);
  });

  it('prints every syntax error as file:line:col: error[CODE] on stderr and exits 1', () => {
    const r = nacl(['check', bad]);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${bad}:3:11: error[E102]: unexpected '10.0.0.1', expected ':'`);
    expect(r.stderr).toContain(`${bad}:5:5: error[E102]`);
    expect(r.stderr).toContain('2 errors, 0 warnings');
  });

  it('prints JSON that validates against our schema on stdout with --format json', () => {
    const r = nacl(['check', '--format', 'json', bad]);
    expect(r.status).toBe(1);
    const json = JSON.parse(r.stdout);
    expect(ourSchema('diagnostics.schema.json')(json)).toBe(true);
    expect(json[0]).toMatchObject({ file: bad, line: 3, column: 11, severity: 'error', code: 'E102' });
  });

  it('prints valid SARIF 2.1.0 with --format sarif', () => {
    const r = nacl(['check', '--format', 'sarif', bad]);
    expect(r.status).toBe(1);
    const sarif = JSON.parse(r.stdout);
    expect(sarifSchema()(sarif)).toBe(true);
    expect(sarif.runs[0].results).toHaveLength(2);
  });

  it('exits 2 with a message for a missing file', () => {
    const r = nacl(['check', join(dir, 'missing.nacl')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no such file');
  });

  it('exits 2 for an unknown format or a missing argument', () => {
    expect(nacl(['check', '--format', 'xml', bad]).status).toBe(2);
    expect(nacl(['check']).status).toBe(2);
    expect(nacl(['frobnicate']).status).toBe(2);
  });

  it('exits 0 for warnings only', () => {
    const warn = join(dir, 'warn.nacl');
    writeFileSync(warn, 'x: 08\n');
    const r = nacl(['check', warn]);
    expect(r.status).toBe(0);
    expect(r.stderr).toContain('warning[W10]');
  });

  it('prints help for each subcommand', () => {
    for (const cmd of ['check', 'fmt']) {
      const r = nacl([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: nacl ${cmd}`);
    }
  });
});

describe('nacl fmt', () => {
  it('prints the canonical form on stdout', () => {
    const f = join(dir, 'ugly.nacl');
    writeFileSync(f, 'x:[1,2]\nIface e {index:0}');
    const r = nacl(['fmt', f]);
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('x: [1, 2]\nIface e {\n    index: 0\n}\n');
  });

  it('--check exits 1 for an unformatted file and 0 for a formatted one, printing nothing (cli.md)', () => {
    const ugly = join(dir, 'ugly2.nacl');
    const pretty = join(dir, 'pretty.nacl');
    writeFileSync(ugly, 'x:1');
    writeFileSync(pretty, 'x: 1\n');
    const r1 = nacl(['fmt', '--check', ugly, pretty]);
    expect(r1.status).toBe(1);
    expect(r1.stdout).toBe('');
    expect(r1.stderr).toBe('');
    expect(nacl(['fmt', '--check', pretty]).status).toBe(0);
  });

  it('--write reports a file it cannot write, exit 2, and still formats the others', () => {
    const missing = join(dir, 'no-such-dir', 'x.nacl');
    const other = join(dir, 'other.nacl');
    writeFileSync(other, 'x:1');
    // A directory where the file should be: unreadable as a source and unwritable, even for root.
    const r = nacl(['fmt', '--write', missing, dir, other]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(`cannot read ${missing}: no such file`);
    expect(r.stderr).toContain(`cannot read ${dir}: is a directory`);
    expect(r.stderr).not.toContain('internal error');
    expect(readFileSync(other, 'utf8')).toBe('x: 1\n');
  });

  it('--write reports a read-only file, exit 2, and rewrites the writable ones', () => {
    const box = mkdtempSync(join(tmpdir(), 'nacl-ro-'));
    chmodSync(box, 0o755);
    const ro = join(box, 'ro.nacl');
    const rw = join(box, 'rw.nacl');
    writeFileSync(ro, 'x:1');
    writeFileSync(rw, 'x:1');
    chmodSync(ro, 0o444);
    chmodSync(rw, 0o666);
    // Root writes read-only files anyway: run as nobody then.
    const asUser = process.getuid?.() === 0 ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : [];
    const r = spawnSync(asUser[0] ?? process.execPath, [...asUser.slice(1), ...(asUser.length ? [process.execPath] : []), join(ROOT, 'dist', 'nacl.js'), 'fmt', '--write', ro, rw], { encoding: 'utf8' });
    expect(r.stderr).toBe(`nacl: cannot write ${ro}: permission denied\n`);
    expect(r.status).toBe(2);
    expect(readFileSync(ro, 'utf8')).toBe('x:1');
    expect(readFileSync(rw, 'utf8')).toBe('x: 1\n');
  });

  it('refuses a YAML config with exit 2 rather than reading it as NaCl', () => {
    const r = nacl(['fmt', join(ROOT, 'examples', 'demo.nacl'), join(dir, 'x.yaml')]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('x.yaml: fmt formats the .nacl form');
    expect(r.stdout).toContain('Iface');
  });

  it('--write rewrites files in place', () => {
    const f = join(dir, 'rewrite.nacl');
    writeFileSync(f, 'x:1');
    expect(nacl(['fmt', '--write', f]).status).toBe(0);
    expect(nacl(['fmt', '--check', f]).status).toBe(0);
  });

  it('refuses to format a file with syntax errors and exits 1', () => {
    const r = nacl(['fmt', '--write', bad]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('error[E102]');
  });
});
