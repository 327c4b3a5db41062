import { dirname, relative, resolve } from 'node:path';
import { parseTestFile, runPacketTests, toJUnit, uncoveredRules } from '../../appliances/packet-tests.ts';
import { parseFormat, readSource, UsageError } from '../io.ts';
import { loadConfig } from '../load.ts';

/** `nacl test [FILE] TESTS.yaml` (cli.md): exit 1 when an expectation fails. */
export function runTest(first: string, second: string | undefined, options: { format: string; coverage?: boolean }): number {
  const format = parseFormat(options.format, ['text', 'json', 'junit'] as const);
  const testsPath = second ?? first;
  const parsed = parseTestFile(readSource(testsPath), testsPath);
  if (!parsed.ok) {
    for (const p of parsed.problems) process.stderr.write(`${testsPath}:${p.line}:${p.column}: error: ${p.message}\n`);
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
    if (options.coverage) {
      process.stdout.write(uncovered.length === 0 ? '\ncoverage: every rule was reached\n' : `\ncoverage: ${uncovered.length} rule(s) no test reached:\n`);
      for (const id of uncovered) {
        const r = ir.rules[id]!;
        process.stdout.write(`  ${r.file}:${r.line}:${r.column}  ${r.function}: ${r.text}\n`);
      }
    }
    process.stdout.write(`\n${outcomes.length - failed.length} passed, ${failed.length} failed\n`);
  }
  return failed.length > 0 ? 1 : 0;
}
