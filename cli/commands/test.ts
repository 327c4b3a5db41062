import { dirname, relative, resolve } from 'node:path';
import { parseTestFile, runPacketTests, toJUnit, uncoveredRules } from '../../appliances/packet-tests.ts';
import type { Ir } from '../../compiler/ir.ts';
import { parseFormat, readSource, UsageError } from '../io.ts';
import { loadConfig } from '../load.ts';
import { printDiagnostics } from './check.ts';

/** `nacl test [FILE] TESTS.yaml` (cli.md): exit 1 when an expectation fails. */
export function runTest(first: string, second: string | undefined, options: { format: string; coverage?: boolean }): number {
  const format = parseFormat(options.format, ['text', 'json', 'junit'] as const);
  const testsPath = second ?? first;
  // One file given, and it is a config: the tests file is missing (a YAML config could also be one, so only .nacl tells).
  if (/\.nacl$/i.test(testsPath)) {
    throw new UsageError(`${testsPath} is a config, not a tests file: nacl test ${second ? `${second} ${first}` : `${testsPath} TESTS.yaml`}`);
  }
  const parsed = parseTestFile(readSource(testsPath), testsPath);
  if (!parsed.ok) {
    printDiagnostics(parsed.diagnostics, new Map([[testsPath, parsed.lines]]));
    return 1;
  }
  const configPath = second ? first : parsed.value.config ? resolve(dirname(testsPath), parsed.value.config) : undefined;
  if (!configPath) throw new UsageError(`${testsPath} names no config: give it on the command line (nacl test FILE TESTS.yaml) or as config: in the file`);
  const compiled = loadConfig(relative(process.cwd(), configPath) || configPath, { quietWarnings: true });
  if (!compiled) return 1;
  const ir = compiled.ir!;
  const start = performance.now();
  const outcomes = runPacketTests(ir, parsed.value.tests);
  const seconds = (performance.now() - start) / 1000;
  const failed = outcomes.filter((o) => !o.passed);
  const uncovered = options.coverage ? uncoveredRules(ir, outcomes) : [];
  if (format === 'junit') {
    process.stdout.write(toJUnit(testsPath, outcomes, seconds));
    // The XML has no place CI tools read for it: the coverage goes to stderr, as text.
    if (options.coverage) process.stderr.write(coverageText(ir, uncovered));
  } else if (format === 'json') {
    process.stdout.write(
      JSON.stringify(
        {
          passed: outcomes.length - failed.length,
          failed: failed.length,
          tests: outcomes.map((o) => ({ name: o.test.name, line: o.test.line, passed: o.passed, failures: o.failures, verdict: o.trace.verdict, rule: o.trace.rule })),
          ...(options.coverage ? { uncoveredRules: uncovered.map((id) => ({ id, ...ir.rules[id] })) } : {}),
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    for (const o of outcomes) {
      process.stdout.write(`${o.passed ? 'ok  ' : 'FAIL'}  ${o.test.name}\n`);
      for (const f of o.failures) process.stdout.write(`      ${testsPath}:${o.test.line}: ${f}\n`);
    }
    if (options.coverage) process.stdout.write('\n' + coverageText(ir, uncovered));
    process.stdout.write(`\n${outcomes.length - failed.length} passed, ${failed.length} failed\n`);
  }
  return failed.length > 0 ? 1 : 0;
}

function coverageText(ir: Ir, uncovered: readonly string[]): string {
  if (uncovered.length === 0) return 'coverage: every rule was reached\n';
  const lines = uncovered.map((id) => {
    const r = ir.rules[id]!;
    return `  ${r.file}:${r.line}:${r.column}  ${r.function}: ${r.text}\n`;
  });
  return `coverage: ${uncovered.length} rule(s) no test reached:\n${lines.join('')}`;
}
