import type { Span } from '../../grammar/span.ts';
import { CODES, type DiagnosticCode } from './codes.ts';
import type { Diagnostic } from './diagnostic.ts';

const SARIF_SCHEMA = 'https://json.schemastore.org/sarif-2.1.0.json';

/** A SARIF 2.1.0 log with one run; rules are the codes that occur, in code order. */
export function toSarif(diagnostics: readonly Diagnostic[], toolVersion: string): object {
  const codes = [...new Set(diagnostics.map((d) => d.code))].sort() as DiagnosticCode[];
  const ruleIndex = new Map(codes.map((code, i) => [code, i]));
  return {
    $schema: SARIF_SCHEMA,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'nacl',
            version: toolVersion,
            informationUri: 'https://github.com/includeos/NaCl',
            rules: codes.map((code) => ({
              id: code,
              name: CODES[code].title.replace(/[^A-Za-z0-9]+(.)?/g, (_, ch: string | undefined) => (ch ? ch.toUpperCase() : '')),
              shortDescription: { text: CODES[code].title },
              defaultConfiguration: { level: CODES[code].severity },
            })),
          },
        },
        results: diagnostics.map((d) => ({
          ruleId: d.code,
          ruleIndex: ruleIndex.get(d.code),
          level: d.severity,
          message: { text: d.help ? `${d.message}\nhelp: ${d.help}` : d.message },
          locations: [location(d.span)],
          ...(d.related && d.related.length
            ? { relatedLocations: d.related.map((r, i) => ({ id: i, ...location(r.span), message: { text: r.message } })) }
            : {}),
        })),
        columnKind: 'unicodeCodePoints',
      },
    ],
  };
}

function location(span: Span): object {
  return {
    physicalLocation: {
      artifactLocation: { uri: encodeURI(span.file.replace(/\\/g, '/')) },
      region: {
        startLine: span.startLine,
        startColumn: span.startColumn,
        endLine: span.endLine,
        endColumn: Math.max(span.endColumn, span.endLine === span.startLine ? span.startColumn + 1 : 1),
      },
    },
  };
}
