import { createHash } from 'node:crypto';
import type * as A from '../grammar/ast.ts';
import { parseNacl } from '../grammar/parse.ts';
import type { LineMap, Span } from '../grammar/span.ts';
import { CONSTANTS } from './constants.ts';
import { checkCrossFeature } from './cross-checks.ts';
import { diagnostic, hasErrors, sortDiagnostics, type Diagnostic } from './diagnostics/diagnostic.ts';
import { ElementContext } from './elements/common.ts';
import { CONNTRACK_POLICY, DEFAULT_CONNTRACK, validateConntrack, type ConntrackSettings } from './elements/conntrack.ts';
import { gatewayPolicy, validateGateway, type GatewayInfo } from './elements/gateway.ts';
import { checkIfaceIndexes, IFACE_POLICY, ifaceTree, validateIface, type IfaceInfo } from './elements/iface.ts';
import { LOAD_BALANCER_POLICY, validateLoadBalancer, type LoadBalancerInfo } from './elements/load-balancer.ts';
import { SYSLOG_POLICY, TIMER_POLICY, validateSyslog, validateTimer, type SyslogInfo, type TimerInfo } from './elements/syslog-timer.ts';
import { alwaysEnds, FunctionChecker, statementEnds, type FunctionInfo } from './functions.ts';
import type { Ir, IrRuleSource, IrStatement } from './ir.ts';
import { lowerToIr } from './lower.ts';
import { applyAssignments, treeOf, UNTYPED_POLICY, type MemberPolicy, type MObject } from './members.ts';
import { bind, type Element, type Namespace, type TypedElement } from './namespace.ts';
import { Resolver } from './resolve.ts';
import { yamlToProgram } from './yaml-config.ts';
import { isYamlFile } from './yaml-file.ts';

/*
 * The semantic compiler: AST in, diagnostics and IR out (architecture.md).
 * Passes run in order - bind, merge members, validate elements, check
 * functions, assemble chains, cross-check - and every problem is a
 * diagnostic; no pass throws on user input.
 */

export interface CompileResult {
  readonly diagnostics: Diagnostic[];
  /** Null when there are errors. */
  readonly ir: Ir | null;
  readonly lines: LineMap;
  readonly program: A.Program;
}

/** Everything the passes learned about a file, before lowering. */
export interface Analysis {
  readonly namespace: Namespace;
  readonly ifaces: IfaceInfo[];
  readonly gateway: GatewayInfo | null;
  readonly conntrack: ConntrackSettings;
  readonly loadBalancer: LoadBalancerInfo | null;
  readonly syslog: SyslogInfo | null;
  readonly timers: TimerInfo[];
  readonly functions: Map<string, FunctionInfo>;
  readonly rules: Record<string, IrRuleSource>;
}

/** Parse errors about one literal's value (octets, escapes, CIDR prefix). */
const LITERAL_ERRORS: ReadonlySet<string> = new Set(['E108', 'E110', 'E405', 'E406']);

export function compileSource(text: string, file: string): CompileResult {
  const parsed = isYamlFile(file) ? yamlToProgram(text, file) : parseNacl(text, file);
  const diagnostics = [...parsed.diagnostics];
  // A bad literal leaves the tree whole, so the checks still run and every
  // other mistake is reported with it; the literal's value is NaN, which the
  // checks skip. Structural errors leave no tree worth checking.
  if (diagnostics.some((d) => d.severity === 'error' && !LITERAL_ERRORS.has(d.code))) return { diagnostics: sortDiagnostics(diagnostics), ir: null, lines: parsed.lines, program: parsed.program };
  let ir: Ir | null = null;
  try {
    const analysis = analyze(parsed.program, diagnostics);
    if (!hasErrors(diagnostics)) ir = lowerToIr(analysis, { file, sha256: createHash('sha256').update(text).digest('hex') });
  } catch (err) {
    // The parser bounds nesting (E113); what is left that can exhaust the
    // stack is a chain of names - values naming values, functions calling
    // functions - hundreds deep. A limit of the checker, not a bug in it.
    const tooDeep = err instanceof RangeError && /call stack/i.test(err.message);
    diagnostics.push(
      tooDeep
        ? diagnostic('E113', parsed.program.span, 'values or function calls chained too deep to check (more than several hundred names deep)', {
            help: 'shorten the chain: name the value itself, or call fewer functions in a row',
          })
        : diagnostic('E900', parsed.program.span, `internal error in the compiler: ${(err as Error)?.message ?? String(err)}`, {
            help: 'this is a bug in nacl; please report it with the input that caused it',
          }),
    );
    ir = null;
  }
  return { diagnostics: sortDiagnostics(dedupe(diagnostics)), ir: hasErrors(diagnostics) ? null : ir, lines: parsed.lines, program: parsed.program };
}

function policyFor(element: Element): MemberPolicy | undefined {
  if (element.kind === 'untyped') return element.decl.value.kind === 'Object' ? UNTYPED_POLICY : undefined;
  if (element.kind === 'function') return undefined;
  switch (element.type) {
    case 'iface':
      return IFACE_POLICY;
    case 'gateway':
      return gatewayPolicy(element);
    case 'load_balancer':
      return LOAD_BALANCER_POLICY;
    case 'conntrack':
      return CONNTRACK_POLICY;
    case 'syslog':
      return SYSLOG_POLICY;
    case 'timer':
      return TIMER_POLICY;
  }
}

export function analyze(program: A.Program, diagnostics: Diagnostic[]): Analysis {
  const namespace = bind(program, diagnostics);
  const elements = [...namespace.elements.values()];

  // Member trees: untyped objects first, so typed elements can copy them (5.4 rule 4).
  const trees = new Map<string, MObject>();
  const policies = new Map<string, MemberPolicy>();
  const ctxDiagnostics = diagnostics;
  const tmpResolver = new Resolver(namespace, trees, policies, diagnostics);
  const ctx = new ElementContext(namespace, tmpResolver, ctxDiagnostics);
  const ordered = [...elements.filter((e) => e.kind === 'untyped'), ...elements.filter((e) => e.kind !== 'untyped')];
  for (const element of ordered) {
    const policy = policyFor(element);
    if (!policy) {
      for (const a of element.assignments) {
        const what = element.kind === 'function' ? 'a function' : 'not an object';
        diagnostics.push(
          diagnostic('E306', a.target.span, `${element.name} is ${what}: ${a.target.parts.map((p) => p.text).join('.')} cannot be assigned`, {
            related: [{ span: element.nameSpan, message: `${element.name} is defined here` }],
          }),
        );
      }
      continue;
    }
    policies.set(element.name, policy);
    let tree: MObject | undefined;
    const value = element.kind === 'function' ? undefined : element.decl.value;
    if (element.kind === 'typed' && element.type === 'iface' && value?.kind !== 'Object') tree = ifaceTree(element, ctx);
    else if (value?.kind === 'Object') tree = treeOf(value, policy, diagnostics);
    else if (element.kind === 'typed' && element.type === 'gateway') tree = { kind: 'object', entries: new Map(), span: element.decl.value.span };
    if (!tree) continue;
    applyAssignments(element, tree, policy, trees, diagnostics);
    trees.set(element.name, tree);
  }

  const resolver = tmpResolver;
  for (const element of elements) {
    const lower = element.name.toLowerCase();
    if (CONSTANTS.has(lower) && element.kind !== 'function') {
      diagnostics.push(
        diagnostic('W02', element.nameSpan, `element ${element.name} shadows the predefined constant ${lower}`, {
          help: `every use of ${lower} in this file now means this element; rename it to keep the constant`,
        }),
      );
    }
    if (element.kind === 'function' && ['accept', 'drop', 'log', 'syslog', 'dnat', 'snat'].includes(lower)) {
      diagnostics.push(
        diagnostic('W17', element.nameSpan, `function ${element.name} is named like the action ${lower}: it can be attached but never called`, {
          help: 'a call by this name runs the action instead; rename the function',
        }),
      );
    }
  }

  // Typed elements.
  const ifaces: IfaceInfo[] = [];
  let gateway: GatewayInfo | null = null;
  let conntrack: ConntrackSettings = DEFAULT_CONNTRACK;
  let loadBalancer: LoadBalancerInfo | null = null;
  let firstBalancer: TypedElement | null = null;
  let syslog: SyslogInfo | null = null;
  const timers: TimerInfo[] = [];
  for (const element of elements) {
    if (element.kind !== 'typed') continue;
    const tree = trees.get(element.name);
    switch (element.type) {
      case 'iface': {
        const info = tree && validateIface(element, tree, ctx);
        if (info) ifaces.push(info);
        break;
      }
      case 'gateway':
        gateway = validateGateway(element, element.decl.value.kind === 'Object' ? tree : undefined, ctx) ?? null;
        break;
      case 'conntrack':
        conntrack = validateConntrack(element, tree, ctx) ?? { ...DEFAULT_CONNTRACK, element };
        break;
      case 'load_balancer': {
        if (firstBalancer) {
          ctx.report('E551', element.decl.type.span, 'A TCP Load_balancer has already been defined', {
            related: [{ span: firstBalancer.nameSpan, message: 'first defined here' }],
          });
          break;
        }
        firstBalancer = element;
        loadBalancer = validateLoadBalancer(element, tree, ctx) ?? null;
        break;
      }
      case 'syslog':
        syslog = validateSyslog(element, tree, ctx) ?? null;
        break;
      case 'timer': {
        const t = validateTimer(element, tree, ctx);
        if (t) timers.push(t);
        break;
      }
    }
  }
  checkIfaceIndexes(ifaces, ctx);

  // Every untyped element is checked, used or not (4.4 Recommended).
  for (const element of elements) if (element.kind === 'untyped') resolver.untyped(element);

  // Functions.
  const rules: Record<string, IrRuleSource> = {};
  const checker = new FunctionChecker(ctx, rules);
  const functions = new Map<string, FunctionInfo>();
  for (const element of elements) if (element.kind === 'function') functions.set(element.name, checker.check(element));
  const recursive = checkRecursion(functions, diagnostics);
  checkCallDepth(functions, recursive, diagnostics);
  const bodies = new Map<string, readonly IrStatement[]>([...functions].filter(([n]) => !recursive.has(n)).map(([n, f]) => [n, f.body]));
  for (const f of functions.values()) reportUnreachable(f.body, bodies, checker.ruleSpans, diagnostics);

  checkAttachments(ifaces, gateway, functions, bodies, diagnostics);

  const analysis: Analysis = { namespace, ifaces, gateway, conntrack, loadBalancer, syslog, timers, functions, rules };
  checkCrossFeature(analysis, resolver.used, ctx);
  return analysis;
}

/** E614: a function that calls itself, directly or through others. */
function checkRecursion(functions: Map<string, FunctionInfo>, diagnostics: Diagnostic[]): Set<string> {
  const state = new Map<string, 'active' | 'done'>();
  const recursive = new Set<string>();
  const stack: string[] = [];
  const visit = (name: string): void => {
    state.set(name, 'active');
    stack.push(name);
    for (const call of functions.get(name)?.calls ?? []) {
      const s = state.get(call.callee);
      if (s === 'active') {
        const cycle = [...stack.slice(stack.indexOf(call.callee)), call.callee];
        cycle.forEach((n) => recursive.add(n));
        diagnostics.push(diagnostic('E614', call.span, `recursive call: ${cycle.join(' -> ')}`, { help: 'NaCl functions are inlined; a call cycle never ends' }));
      } else if (s === undefined && functions.has(call.callee)) visit(call.callee);
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const name of functions.keys()) if (!state.has(name)) visit(name);
  return recursive;
}

/** Functions calling functions, one chain: the generated code inlines them, nested. */
export const MAX_CALL_DEPTH = 100;

/** E113 for a chain of calls deeper than MAX_CALL_DEPTH (once, at the head of the longest). */
function checkCallDepth(functions: Map<string, FunctionInfo>, recursive: ReadonlySet<string>, diagnostics: Diagnostic[]): void {
  const depth = new Map<string, number>();
  const of = (name: string): number => {
    const known = depth.get(name);
    if (known !== undefined) return known;
    depth.set(name, 1); // a placeholder; recursion is reported elsewhere
    let d = 1;
    for (const call of functions.get(name)?.calls ?? []) {
      if (functions.has(call.callee) && !recursive.has(call.callee)) d = Math.max(d, 1 + of(call.callee));
    }
    depth.set(name, d);
    return d;
  };
  let deepest: string | null = null;
  for (const name of functions.keys()) {
    if (recursive.has(name)) continue;
    if (of(name) > MAX_CALL_DEPTH && (deepest === null || of(name) > of(deepest))) deepest = name;
  }
  if (deepest === null) return;
  diagnostics.push(
    diagnostic('E113', functions.get(deepest)!.element.nameSpan, `${deepest} starts a chain of ${of(deepest)} function calls; at most ${MAX_CALL_DEPTH} are inlined, one inside the other`, {
      help: 'flatten the chain: call the functions in turn from one function, not each from the one before',
    }),
  );
}

/** W04: statements after one that always ends the function. */
function reportUnreachable(
  statements: readonly IrStatement[],
  bodies: ReadonlyMap<string, readonly IrStatement[]>,
  spans: ReadonlyMap<string, Span>,
  diagnostics: Diagnostic[],
): void {
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i]!;
    if (s.kind === 'if') {
      reportUnreachable(s.then, bodies, spans, diagnostics);
      if (s.else) reportUnreachable(s.else, bodies, spans, diagnostics);
    } else if (s.kind === 'block') reportUnreachable(s.body, bodies, spans, diagnostics);
    if (i < statements.length - 1 && statementEnds(s, bodies, new Set())) {
      const span = spans.get(statements[i + 1]!.rule);
      if (span) diagnostics.push(diagnostic('W04', span, 'unreachable statement: the statement before it always ends the function'));
      return;
    }
  }
}

/** Chain rules for attached functions (6.1.3, 6.2.3, 7.8): E601, E602, E534. */
function checkAttachments(
  ifaces: readonly IfaceInfo[],
  gateway: GatewayInfo | null,
  functions: Map<string, FunctionInfo>,
  bodies: ReadonlyMap<string, readonly IrStatement[]>,
  diagnostics: Diagnostic[],
): void {
  const checked = new Set<string>();
  const attachments = [
    ...ifaces.flatMap((i) => Object.values(i.chains).flat()),
    ...(gateway?.forward ?? []).map((ref) => ({ ...ref, forward: true })),
  ] as { name: string; span: Span; forward?: boolean }[];
  for (const ref of attachments) {
    const f = functions.get(ref.name);
    if (!f) continue;
    const header = f.element.decl.type.span;
    const related = [{ span: ref.span, message: 'attached here' }];
    if (ref.forward && f.element.type === 'nat') {
      diagnostics.push(diagnostic('E534', ref.span, `A Nat function cannot be pushed onto a Gateway's forward chain: ${ref.name}`, {
        help: 'attach NAT to an Iface prerouting or postrouting chain',
      }));
      continue;
    }
    if (f.element.type !== 'filter' || checked.has(ref.name)) continue;
    checked.add(ref.name);
    if (f.element.subtype !== 'ip') {
      diagnostics.push(diagnostic('E601', header, `Only a function of subtype IP can be pushed onto a chain: ${ref.name} is Filter::${f.element.decl.subtype.text}`, {
        related,
        help: `wrap it: Filter::IP ${ref.name}_ip { ${ref.name} drop }`,
      }));
      continue;
    }
    if (bodies.has(ref.name) && !alwaysEnds(f.body, bodies)) {
      diagnostics.push(diagnostic('E602', header, `Missing default verdict at the end of this Filter (${ref.name})`, {
        related,
        help: 'end it with accept or drop so that every packet gets a verdict',
      }));
    }
  }
}

function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}:${d.span.file}:${d.span.startOffset}:${d.span.endOffset}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
