/**
 * The real Bicep compiler for the infra tests: scripts/bicep.sh restores the Bicep CLI from NuGet
 * (with the .NET SDK) into .cache/bicep and runs it. Without a .NET SDK the compiler is missing:
 * `npm test` then says so and skips the compile checks, and in CI (CI=true) that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { ROOT } from '../../support/build';

const SCRIPT = join(ROOT, 'scripts', 'bicep.sh');

/** The Bicep binary, or why there is none. */
export function findBicep(): { bin: string } | { missing: string } {
  const r = spawnSync(SCRIPT, ['--path'], { encoding: 'utf8', timeout: 300_000 });
  if (r.status === 0) return { bin: r.stdout.trim() };
  return { missing: (r.stderr || r.stdout || `exit ${r.status}`).trim() };
}

export interface Compiled {
  template: ArmTemplate;
  /** Whatever the compiler printed besides the template: warnings. */
  diagnostics: string;
}

/** `bicep build infra/main.bicep`: the ARM JSON azd deploys. Throws on a compile error. */
export function build(bin: string, main = join(ROOT, 'infra', 'main.bicep')): Compiled {
  const r = spawnSync(bin, ['build', main, '--stdout'], {
    encoding: 'utf8',
    timeout: 120_000,
    maxBuffer: 64 << 20,
  });
  if (r.status !== 0) throw new Error(`bicep build failed:\n${r.stderr}`);
  return { template: JSON.parse(r.stdout) as ArmTemplate, diagnostics: r.stderr.trim() };
}

/** `bicep lint` of one or many entry files (a glob): every diagnostic line, errors and warnings. */
export function lint(bin: string, target: { file: string } | { pattern: string }): string[] {
  const args = 'file' in target ? [target.file] : ['--pattern', target.pattern];
  const r = spawnSync(bin, ['lint', ...args], { encoding: 'utf8', timeout: 120_000 });
  return `${r.stdout}\n${r.stderr}`
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /: (?:Error|Warning|Info) /.test(l));
}

/**
 * Copies of infra/, one per mutation, each with one file's text replaced (the replacement must
 * change something), linted in one run of the compiler: diagnostics by mutation name.
 */
export function lintMutations(
  bin: string,
  mutations: Record<string, { file: string; from: string | RegExp; to: string }>,
): Record<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'basm-bicep-'));
  try {
    for (const [name, m] of Object.entries(mutations)) {
      const copy = join(dir, name, 'infra');
      cpSync(join(ROOT, 'infra'), copy, { recursive: true });
      const path = join(copy, relative('infra', m.file));
      const text = readFileSync(path, 'utf8');
      const next = text.replace(m.from, m.to);
      if (next === text) throw new Error(`mutation ${name} of ${m.file} changed nothing`);
      writeFileSync(path, next);
    }
    const lines = lint(bin, { pattern: join(dir, '*', 'infra', 'main.bicep') });
    const out: Record<string, string[]> = {};
    for (const name of Object.keys(mutations)) {
      const prefix = join(dir, name, 'infra') + '/';
      out[name] = lines.filter((l) => l.startsWith(prefix)).map((l) => `infra/${l.slice(prefix.length)}`);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// --- the compiled template ---

export interface ArmResource {
  type: string;
  apiVersion?: string;
  name: string;
  scope?: string;
  resourceGroup?: string;
  kind?: string;
  sku?: Record<string, unknown>;
  identity?: Record<string, unknown>;
  tags?: unknown;
  properties?: Record<string, unknown>;
  metadata?: { description?: string };
}

export interface ArmParameter {
  type: string;
  defaultValue?: unknown;
  nullable?: boolean;
  allowedValues?: unknown[];
  minValue?: number;
  maxValue?: number;
  metadata?: { description?: string; azd?: unknown };
}

export interface ArmTemplate {
  $schema: string;
  parameters?: Record<string, ArmParameter>;
  variables?: Record<string, unknown>;
  resources: ArmResource[];
  outputs?: Record<string, { type: string; value: unknown }>;
}

/** A template and where it sits: `main`, or the name of the module (nested deployment). */
export interface Located {
  module: string;
  template: ArmTemplate;
}

/** The main template and every module's template, depth first. */
export function templates(t: ArmTemplate, module = 'main'): Located[] {
  const nested = t.resources
    .filter((r) => r.type === 'Microsoft.Resources/deployments')
    .flatMap((r) => templates((r.properties as { template: ArmTemplate }).template, r.name));
  return [{ module, template: t }, ...nested];
}

/** Every resource of every template, with its module. */
export function resources(t: ArmTemplate): (ArmResource & { module: string; template: ArmTemplate })[] {
  return templates(t).flatMap(({ module, template }) =>
    template.resources.map((r) => ({ ...r, module, template })),
  );
}

/** A parameter reference `[parameters('x')]` resolved to x's default in the same template. */
export function resolve(value: unknown, template: ArmTemplate): unknown {
  const m = typeof value === 'string' ? /^\[parameters\('(\w+)'\)\]$/.exec(value) : null;
  return m ? template.parameters?.[m[1]!]?.defaultValue : value;
}

/** Every string anywhere in a JSON value. */
export function strings(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.flatMap(strings);
  if (v && typeof v === 'object') return Object.values(v).flatMap(strings);
  return [];
}

/** The top-level arguments of an ARM function call `fn(a, b(c, d), 'e,f')`, or undefined. */
export function callArgs(expr: string, fn: string): string[] | undefined {
  const s = expr.replace(/^\[/, '').replace(/\]$/, '').trim();
  if (!s.startsWith(`${fn}(`) || !s.endsWith(')')) return undefined;
  const inner = s.slice(fn.length + 1, -1);
  const args: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < inner.length; i++) {
    const c = inner[i];
    if (c === "'") quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')') depth--;
    else if (!quoted && depth === 0 && c === ',') {
      args.push(inner.slice(start, i).trim());
      start = i + 1;
    }
  }
  args.push(inner.slice(start).trim());
  return args;
}

/** The value at a path of object keys, or undefined. */
export function at(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const key of path) {
    if (!cur || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}
