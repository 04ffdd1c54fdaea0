/**
 * Checks of the azd/Bicep deployment that need no Bicep compiler: a small lexer reads every .bicep
 * file, and each check is a pure function over file texts returning its problems. The real tree must
 * have none; mutated copies of it must be caught, which proves the checks can fail.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../src/lib/config/config';

const ROOT = join(__dirname, '..');
const INFRA = join(ROOT, 'infra');

// ---------------------------------------------------------------------------------------------
// Lexer

type Tok =
  | { kind: 'ident' | 'punct' | 'number'; text: string; line: number }
  | { kind: 'nl'; text: '\n'; line: number }
  | { kind: 'comment'; text: string; line: number }
  | { kind: 'string'; text: string; line: number; interp: Tok[][] };

const PUNCT_2 = ['::', '==', '!=', '<=', '>=', '&&', '||', '??', '.?', '?.', '=~', '!~'];

/** Tokens of Bicep source; throws on an unterminated string, comment or interpolation. */
function lex(src: string): Tok[] {
  const out: Tok[] = [];
  const end = lexInto(src, 0, out, false, { line: 1 });
  if (end !== src.length) throw new Error(`unexpected '}' closing nothing at offset ${end}`);
  return out;
}

/** Lexes from `pos`; when `inInterp`, stops at the `}` that closes the interpolation and returns its offset. */
function lexInto(src: string, pos: number, out: Tok[], inInterp: boolean, at: { line: number }): number {
  let depth = 0;
  let i = pos;
  while (i < src.length) {
    const c = src[i]!;
    const line = at.line;
    if (c === '\n') {
      out.push({ kind: 'nl', text: '\n', line });
      at.line++;
      i++;
    } else if (c === ' ' || c === '\t' || c === '\r') {
      i++;
    } else if (src.startsWith('//', i)) {
      const e = src.indexOf('\n', i);
      const stop = e < 0 ? src.length : e;
      out.push({ kind: 'comment', text: src.slice(i + 2, stop).trim(), line });
      i = stop;
    } else if (src.startsWith('/*', i)) {
      const e = src.indexOf('*/', i + 2);
      if (e < 0) throw new Error(`line ${line}: unterminated /* comment`);
      const text = src.slice(i + 2, e);
      out.push({ kind: 'comment', text: text.trim(), line });
      at.line += text.split('\n').length - 1;
      i = e + 2;
    } else if (src.startsWith("'''", i)) {
      const e = src.indexOf("'''", i + 3);
      if (e < 0) throw new Error(`line ${line}: unterminated ''' string`);
      const text = src.slice(i + 3, e);
      out.push({ kind: 'string', text, line, interp: [] });
      at.line += text.split('\n').length - 1;
      i = e + 3;
    } else if (c === "'") {
      i = lexString(src, i, out, at);
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i))!;
      out.push({ kind: 'ident', text: m[0], line });
      i += m[0].length;
    } else if (/[0-9]/.test(c)) {
      const m = /^[0-9]+/.exec(src.slice(i))!;
      out.push({ kind: 'number', text: m[0], line });
      i += m[0].length;
    } else {
      if (inInterp && c === '}' && depth === 0) return i;
      if (c === '{') depth++;
      if (c === '}') depth--;
      const two = src.slice(i, i + 2);
      const text = PUNCT_2.includes(two) ? two : c;
      out.push({ kind: 'punct', text, line });
      i += text.length;
    }
  }
  if (inInterp) throw new Error(`line ${at.line}: unterminated \${…} interpolation`);
  return i;
}

function lexString(src: string, start: number, out: Tok[], at: { line: number }): number {
  const line = at.line;
  const interp: Tok[][] = [];
  let text = '';
  let i = start + 1;
  for (;;) {
    if (i >= src.length || src[i] === '\n') throw new Error(`line ${line}: unterminated string`);
    const c = src[i]!;
    if (c === '\\') {
      text += src.slice(i, i + 2);
      i += 2;
    } else if (c === "'") {
      out.push({ kind: 'string', text, line, interp });
      return i + 1;
    } else if (src.startsWith('${', i)) {
      const inner: Tok[] = [];
      const close = lexInto(src, i + 2, inner, true, at);
      interp.push(inner);
      text += src.slice(i, close + 1);
      i = close + 1;
    } else {
      text += c;
      i++;
    }
  }
}

/** Every token, interpolation contents included. */
function flat(toks: Tok[]): Tok[] {
  return toks.flatMap((t) => (t.kind === 'string' ? [t, ...t.interp.flatMap(flat)] : [t]));
}

const OPEN: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
const CLOSE = new Set(Object.values(OPEN));

function balanceProblems(toks: Tok[], where: string): string[] {
  const problems: string[] = [];
  const stack: Tok[] = [];
  for (const t of toks) {
    if (t.kind === 'string') {
      t.interp.forEach((inner) => balanceProblems(inner, where).forEach((p) => problems.push(p)));
    }
    if (t.kind !== 'punct') continue;
    if (OPEN[t.text]) stack.push(t);
    else if (CLOSE.has(t.text)) {
      const open = stack.pop();
      if (!open || OPEN[open.text] !== t.text)
        return [`${where}:${t.line}: '${t.text}' does not close a bracket`];
    }
  }
  if (stack.length > 0)
    problems.push(`${where}:${stack[stack.length - 1]!.line}: '${stack.at(-1)!.text}' never closed`);
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Statements

interface Stmt {
  keyword: string;
  name: string;
  toks: Tok[]; // the whole statement, keyword included
  comments: string[]; // comment lines directly above (decorators skipped)
  line: number;
}

const KEYWORDS = new Set([
  'targetScope',
  'param',
  'var',
  'resource',
  'module',
  'output',
  'metadata',
  'import',
  'type',
  'func',
]);

function significant(toks: Tok[]): Tok[] {
  return toks.filter((t) => t.kind !== 'comment');
}

/** Top-level statements: a keyword at the start of a line, up to the next newline at bracket depth 0. */
function statements(toks: Tok[]): Stmt[] {
  const out: Stmt[] = [];
  let depth = 0;
  let lineStart = true;
  let pendingComments: string[] = [];
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'nl') {
      if (depth === 0) lineStart = true;
      continue;
    }
    if (t.kind === 'comment') {
      if (depth === 0 && lineStart) pendingComments.push(t.text);
      continue;
    }
    if (depth === 0 && lineStart && t.kind === 'punct' && t.text === '@') {
      // A decorator line: skip it, keeping the comments above for the declaration below.
      let d = 0;
      for (i++; i < toks.length; i++) {
        const u = toks[i]!;
        if (u.kind === 'punct' && OPEN[u.text]) d++;
        if (u.kind === 'punct' && CLOSE.has(u.text)) d--;
        if (u.kind === 'nl' && d === 0) break;
      }
      continue;
    }
    if (depth === 0 && lineStart && t.kind === 'ident' && KEYWORDS.has(t.text)) {
      let j = i + 1;
      let d = 0;
      for (; j < toks.length; j++) {
        const u = toks[j]!;
        if (u.kind === 'punct' && OPEN[u.text]) d++;
        if (u.kind === 'punct' && CLOSE.has(u.text)) d--;
        if (u.kind === 'nl' && d === 0) break;
      }
      const stmtToks = toks.slice(i, j);
      const nameTok = significant(stmtToks)[1];
      out.push({
        keyword: t.text,
        name: nameTok?.text ?? '',
        toks: stmtToks,
        comments: pendingComments,
        line: t.line,
      });
      pendingComments = [];
      i = j - 1;
      lineStart = false;
      continue;
    }
    if (t.kind === 'punct' && OPEN[t.text]) depth++;
    if (t.kind === 'punct' && CLOSE.has(t.text)) depth--;
    if (depth === 0 && lineStart) pendingComments = [];
    lineStart = false;
  }
  return out;
}

/** Tokens between a `{` at index `open` and its matching `}` (exclusive). */
function inside(toks: Tok[], open: number): Tok[] {
  let d = 0;
  for (let i = open; i < toks.length; i++) {
    const t = toks[i]!;
    if (t.kind === 'punct' && OPEN[t.text]) d++;
    if (t.kind === 'punct' && CLOSE.has(t.text) && --d === 0) return toks.slice(open + 1, i);
  }
  throw new Error('unbalanced');
}

/** The object body of a resource/module statement: the first `{` after `=`. */
function bodyOf(stmt: Stmt): Tok[] {
  const eq = stmt.toks.findIndex((t) => t.kind === 'punct' && t.text === '=');
  const open = stmt.toks.findIndex((t, i) => i > eq && t.kind === 'punct' && t.text === '{');
  return open < 0 ? [] : inside(stmt.toks, open);
}

/** Keys directly inside an object body (depth 0 of `body`). */
function topKeys(body: Tok[]): string[] {
  const inner: Tok[] = [
    { kind: 'punct', text: '{', line: 0 },
    ...body,
    { kind: 'punct', text: '}', line: 0 },
  ];
  return objectKeys(inner)
    .map((k) => k.key)
    .filter((k) => prop(body, k) !== undefined);
}

/** Value tokens of `key:` directly inside an object body (depth 0 of `body`). */
function prop(body: Tok[], key: string): Tok[] | undefined {
  let d = 0;
  let prev: Tok | undefined;
  for (let i = 0; i < body.length; i++) {
    const t = body[i]!;
    if (t.kind === 'comment') continue;
    const next = significant(body.slice(i + 1))[0];
    const isKey =
      d === 0 &&
      (t.kind === 'ident' || t.kind === 'string') &&
      t.text === key &&
      next?.kind === 'punct' &&
      next.text === ':' &&
      (prev === undefined || prev.kind === 'nl' || (prev.kind === 'punct' && prev.text === ','));
    if (isKey) {
      const start = body.indexOf(next, i) + 1;
      let e = start;
      let dd = 0;
      for (; e < body.length; e++) {
        const u = body[e]!;
        if (u.kind === 'punct' && OPEN[u.text]) dd++;
        if (u.kind === 'punct' && CLOSE.has(u.text)) dd--;
        if (dd === 0 && (u.kind === 'nl' || (u.kind === 'punct' && u.text === ',')) && e > start) break;
      }
      return body.slice(start, e).filter((u) => u.kind !== 'comment');
    }
    if (t.kind === 'punct' && OPEN[t.text]) d++;
    if (t.kind === 'punct' && CLOSE.has(t.text)) d--;
    prev = t;
  }
  return undefined;
}

function propPath(body: Tok[], path: string[]): Tok[] | undefined {
  let cur: Tok[] | undefined = body;
  for (const key of path) {
    const v: Tok[] | undefined = cur && prop(cur, key);
    if (v === undefined) return undefined;
    cur = v[0]?.kind === 'punct' && v[0].text === '{' ? inside(v, 0) : v;
  }
  return cur;
}

/** Keys of every object literal in `toks` (any depth). */
function objectKeys(toks: Tok[]): { key: string; nested: boolean }[] {
  const keys: { key: string; nested: boolean }[] = [];
  const stack: string[] = [];
  const sig = toks.filter((t) => t.kind !== 'comment');
  for (let i = 0; i < sig.length; i++) {
    const t = sig[i]!;
    const prev = sig[i - 1];
    const next = sig[i + 1];
    if (
      stack.at(-1) === '{' &&
      (t.kind === 'ident' || t.kind === 'string') &&
      next?.kind === 'punct' &&
      next.text === ':' &&
      prev !== undefined &&
      (prev.kind === 'nl' || (prev.kind === 'punct' && (prev.text === '{' || prev.text === ',')))
    ) {
      const after = sig[i + 2];
      keys.push({ key: t.text, nested: after?.kind === 'punct' && after.text === '{' });
    }
    if (t.kind === 'punct' && OPEN[t.text]) stack.push(t.text);
    if (t.kind === 'punct' && CLOSE.has(t.text)) stack.pop();
  }
  return keys;
}

interface BicepFile {
  path: string; // relative to the repository, posix
  toks: Tok[];
  stmts: Stmt[];
}

interface Resource {
  file: BicepFile;
  stmt: Stmt | undefined; // undefined for nested resources
  name: string;
  type: string; // as written: 'Microsoft.X/y@2024-01-01' or a nested 'child'
  existing: boolean;
  body: Tok[];
  comments: string[];
  line: number;
}

/** Every `resource name 'type' …` in a file, nested ones included. */
function resources(f: BicepFile): Resource[] {
  const out: Resource[] = [];
  const sig = significant(f.toks);
  for (let i = 0; i + 2 < sig.length; i++) {
    const [kw, name, type] = [sig[i]!, sig[i + 1]!, sig[i + 2]!];
    if (kw.kind !== 'ident' || kw.text !== 'resource' || name.kind !== 'ident' || type.kind !== 'string')
      continue;
    const stmt = f.stmts.find((s) => s.keyword === 'resource' && s.toks.includes(kw));
    const top = stmt?.toks[0] === kw ? stmt : undefined;
    const existing = sig[i + 3]?.text === 'existing';
    const open = f.toks.findIndex((t, k) => k > f.toks.indexOf(type) && t.kind === 'punct' && t.text === '{');
    out.push({
      file: f,
      stmt: top,
      name: name.text,
      type: type.text,
      existing,
      body: open < 0 ? [] : inside(f.toks, open),
      comments: top?.comments ?? commentsAbove(f.toks, f.toks.indexOf(kw)),
      line: kw.line,
    });
  }
  return out;
}

function commentsAbove(toks: Tok[], index: number): string[] {
  const out: string[] = [];
  let i = index - 1;
  while (i >= 0 && toks[i]!.kind === 'nl') i--;
  for (; i >= 0; i--) {
    const t = toks[i]!;
    if (t.kind === 'comment') out.unshift(t.text);
    else if (t.kind !== 'nl') break;
  }
  return out;
}

function loadBicep(files: Map<string, string>): { parsed: BicepFile[]; problems: string[] } {
  const parsed: BicepFile[] = [];
  const problems: string[] = [];
  for (const [path, text] of files) {
    if (!path.endsWith('.bicep')) continue;
    try {
      const toks = lex(text);
      const bal = balanceProblems(toks, path);
      problems.push(...bal);
      if (bal.length === 0) parsed.push({ path, toks, stmts: statements(toks) });
    } catch (e) {
      problems.push(`${path}: ${(e as Error).message}`);
    }
  }
  return { parsed, problems };
}

function readTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else files.set(relative(ROOT, p).split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(INFRA);
  for (const extra of ['azure.yaml', 'src/lib/config/config.ts', 'README.md']) {
    files.set(extra, readFileSync(join(ROOT, extra), 'utf8'));
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// (a) settings: the code's names against the infra's names

/** Read by the code, deliberately not set by the infra. */
const OPTIONAL_IN_INFRA: Record<string, string> = {
  AzureWebJobsStorage: 'a connection string (local / Azurite); Azure uses the identity-based __ settings',
  AzureWebJobsStorage__accountName: 'the explicit blob/queue/table service URIs are set instead',
  BASM_BOSH_IO_URL: 'defaults to https://bosh.io',
  BASM_ALLOWED_DOWNLOAD_HOSTS: "defaults to bosh.io's known stemcell hosts",
  BASM_STORAGE_CONNECTION_STRING: 'local / Azurite only; in Azure it would carry an account key',
  AZURE_RESOURCE_MANAGER_ENDPOINT: 'sovereign clouds only; defaults to public Azure',
  AZURE_AUTHORITY_HOST: 'sovereign clouds only; defaults to public Azure',
  BASM_GALLERY_PUBLISHER: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_OFFER: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_SKU: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_GALLERY_IMAGE_NAME: 'image definitions follow the BOSH Azure CPI naming by default',
  BASM_KEEP_SOURCE_VHD: 'defaults to false (staged blobs deleted once published)',
  BASM_INVOCATION_BUDGET_SECONDS: "derived from host.json's functionTimeout",
  BASM_NOTIFY_GITHUB_TOKEN: 'the token is read from Key Vault (AZURE_KEY_VAULT_URL), never an app setting',
  BASM_NOTIFY_GITHUB_API_URL: 'defaults to https://api.github.com',
  BASM_NOTIFY_ON_FAILURE: 'defaults to true',
  BASM_LEASE_SECONDS: 'defaults to 60',
  BASM_GALLERY_POLL_SECONDS: 'defaults to 30 seconds between looks at a running gallery operation',
  BASM_DOWNLOAD_CACHE: 'defaults to resume: the compressed download is kept once a pass was interrupted',
  BASM_CHECKPOINT_MIB:
    'defaults to 256 MiB of VHD between transfer checkpoints (the design maximum); smaller only for tests',
  FUNCTIONS_PORT: 'port of the local host only',
};

/** Set by the infra for the Functions host or platform, not read by the app's code. */
const HOST_RUNTIME_SETTINGS: Record<string, string> = {
  AzureWebJobsStorage__credential: 'the Functions host: identity-based AzureWebJobsStorage',
  AzureWebJobsStorage__clientId: 'the Functions host (the code reads it too)',
  AzureWebJobsStorage__blobServiceUri: 'the Functions host (the code reads it too)',
  AzureWebJobsStorage__queueServiceUri: 'the Functions host queue trigger (the code reads it too)',
  AzureWebJobsStorage__tableServiceUri: 'the Functions host (the code reads it too)',
  APPLICATIONINSIGHTS_CONNECTION_STRING: 'the Functions host telemetry',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'the Functions host telemetry: Entra ingestion as the identity',
  languageWorkers__node__arguments: "the Functions host: the Node worker's command line (V8 options)",
};

/** Flex Consumption takes these from functionAppConfig and rejects them as app settings. */
const FLEX_FORBIDDEN = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
];

const SETTING_NAME = /^(?:(?:AZURE|BASM|FUNCTIONS)_[A-Z0-9_]+|AzureWebJobsStorage(?:__[A-Za-z]+)?)$/;

/** Setting names in config.ts: quoted literals, plus template literals expanded from their call sites. */
function codeSettingNames(src: string): { names: Set<string>; problems: string[] } {
  const names = new Set<string>();
  const problems: string[] = [];
  for (const m of src.matchAll(/'([A-Za-z0-9_]+)'/g)) if (SETTING_NAME.test(m[1]!)) names.add(m[1]!);
  for (const m of src.matchAll(
    /`((?:AZURE_|BASM_|AzureWebJobsStorage)[A-Za-z0-9_]*)\$\{(\w+)\}([A-Za-z0-9_]*)`/g,
  )) {
    const [whole, prefix, param, suffix] = m as unknown as [string, string, string, string];
    // `const fn = (param…) => … \`PREFIX${param}SUFFIX\``: expand with the literal arguments of fn('x').
    const before = src.slice(0, m.index);
    const fnDecl = [...before.matchAll(new RegExp(`const (\\w+) = \\(${param}\\b[^)]*\\) =>`, 'g'))].at(-1);
    const calls = fnDecl ? [...src.matchAll(new RegExp(`\\b${fnDecl[1]}\\('([A-Za-z0-9_]+)'\\)`, 'g'))] : [];
    if (calls.length === 0) problems.push(`config.ts: cannot expand setting name ${whole}`);
    for (const c of calls) names.add(`${prefix}${c[1]}${suffix}`);
  }
  return { names, problems };
}

/** App setting names of the single `Microsoft.Web/sites/config` 'appsettings' resource. */
function infraSettingNames(parsed: BicepFile[]): { names: Set<string>; problems: string[] } {
  const problems: string[] = [];
  const found = parsed.flatMap((f) =>
    resources(f).filter(
      (r) =>
        (r.type.startsWith('Microsoft.Web/sites/config@') || r.type === 'config') &&
        prop(r.body, 'name')?.[0]?.text === 'appsettings',
    ),
  );
  if (found.length !== 1)
    return { names: new Set(), problems: [`expected one appsettings resource, found ${found.length}`] };
  const r = found[0]!;
  const expr = prop(r.body, 'properties') ?? [];
  const vars = new Map(r.file.stmts.filter((s) => s.keyword === 'var').map((s) => [s.name, s]));
  const keys = objectKeys(expr);
  for (const t of flat(expr)) {
    const v = t.kind === 'ident' ? vars.get(t.text) : undefined;
    if (v) keys.push(...objectKeys(v.toks));
  }
  for (const t of flat(expr)) {
    if (t.kind === 'ident' && r.file.stmts.some((s) => s.keyword === 'param' && s.name === t.text)) {
      problems.push(`${r.file.path}: app settings come from param ${t.text}; keep their names in this file`);
    }
  }
  for (const k of keys) if (k.nested) problems.push(`${r.file.path}: app setting ${k.key} is an object`);
  return { names: new Set(keys.map((k) => k.key)), problems };
}

function settingsProblems(files: Map<string, string>): string[] {
  const { parsed, problems } = loadBicep(files);
  const code = codeSettingNames(files.get('src/lib/config/config.ts') ?? '');
  const infra = infraSettingNames(parsed);
  problems.push(...code.problems, ...infra.problems);
  for (const name of code.names) {
    if (!infra.names.has(name) && !(name in OPTIONAL_IN_INFRA)) {
      problems.push(
        `setting ${name} is read by the code but neither set by the infra nor listed as optional`,
      );
    }
  }
  for (const name of infra.names) {
    if (!code.names.has(name) && !(name in HOST_RUNTIME_SETTINGS)) {
      problems.push(`app setting ${name} is set by the infra but read by nothing`);
    }
    if (FLEX_FORBIDDEN.includes(name)) problems.push(`app setting ${name} is rejected by Flex Consumption`);
  }
  for (const name of Object.keys(OPTIONAL_IN_INFRA)) {
    if (!code.names.has(name)) problems.push(`optional setting ${name} is no longer read by the code`);
    if (infra.names.has(name)) problems.push(`setting ${name} is listed as optional but the infra sets it`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (b) structure

/** Resource types without a 2023+ GA api-version, and why. */
const OLD_API_EXCEPTIONS: Record<string, string> = {
  'Microsoft.Insights/components': '2020-02-02 is the newest GA api-version',
  'Microsoft.Authorization/roleAssignments': '2022-04-01 is the newest GA api-version',
  'Microsoft.Authorization/roleDefinitions': '2022-04-01 is the newest GA api-version',
};

const MAIN = 'infra/main.bicep';
const REQUIRED_OUTPUTS = ['AZURE_LOCATION', 'AZURE_TENANT_ID', 'AZURE_RESOURCE_GROUP', 'FUNCTION_APP_URL'];
const OUTPUT_TYPES = new Set(['string', 'int', 'bool', 'object', 'array']);

function paramNames(f: BicepFile): { name: string; required: boolean }[] {
  return f.stmts
    .filter((s) => s.keyword === 'param')
    .map((s) => {
      const sig = significant(s.toks).filter((t) => t.kind !== 'nl');
      const hasDefault = sig.some((t) => t.kind === 'punct' && t.text === '=');
      const nullable = sig[3]?.kind === 'punct' && sig[3].text === '?';
      return { name: s.name, required: !hasDefault && !nullable };
    });
}

/** Occurrences of a symbol, not counting object keys (`name:`) or member names (`x.name`). */
function references(all: Tok[], name: string): number {
  const sig = all.filter((t) => t.kind !== 'comment');
  return sig.filter((t, i) => {
    if (t.kind !== 'ident' || t.text !== name) return false;
    const prev = sig[i - 1];
    const next = sig[i + 1];
    if (prev?.text === '.' || prev?.text === '.?' || prev?.text === '::') return false;
    const keyPosition = prev === undefined || prev.kind === 'nl' || prev.text === '{' || prev.text === ',';
    return !(keyPosition && next?.text === ':');
  }).length;
}

function outputNames(f: BicepFile): string[] {
  return f.stmts.filter((s) => s.keyword === 'output').map((s) => s.name);
}

function structureProblems(files: Map<string, string>): string[] {
  const { parsed, problems } = loadBicep(files);
  const byPath = new Map(parsed.map((f) => [f.path, f]));
  const main = byPath.get(MAIN);
  if (!main) return [...problems, `${MAIN} missing or unreadable`];

  for (const f of parsed) {
    const all = flat(f.toks);
    // Every param used.
    for (const p of paramNames(f)) {
      if (references(all, p.name) < 2) problems.push(`${f.path}: param ${p.name} is never used`);
    }
    // targetScope: subscription in main (azd creates the group), resource group in modules.
    const scope = f.stmts.find((s) => s.keyword === 'targetScope');
    const scopeValue = scope
      ? significant(scope.toks).find((t) => t.kind === 'string')?.text
      : 'resourceGroup';
    if (f === main && scopeValue !== 'subscription')
      problems.push(`${f.path}: targetScope must be 'subscription'`);
    if (f !== main && scopeValue !== 'resourceGroup')
      problems.push(`${f.path}: modules deploy to a resource group`);
    // Outputs: unique, typed, no secrets.
    const outs = outputNames(f);
    for (const o of new Set(outs))
      if (outs.filter((x) => x === o).length > 1) problems.push(`${f.path}: output ${o} twice`);
    for (const s of f.stmts.filter((x) => x.keyword === 'output')) {
      const type = significant(s.toks)[2]?.text ?? '';
      if (!OUTPUT_TYPES.has(type)) problems.push(`${f.path}: output ${s.name} has type '${type}'`);
      if (flat(s.toks).some((t) => t.kind === 'ident' && /^list/.test(t.text))) {
        problems.push(`${f.path}: output ${s.name} exposes a list*() result`);
      }
    }
    // Resource api-versions.
    for (const r of resources(f)) {
      if (!r.type.includes('@')) {
        if (r.stmt) problems.push(`${f.path}:${r.line}: resource ${r.name} has no api-version`);
        continue;
      }
      const [type, version] = r.type.split('@') as [string, string];
      if (/preview/i.test(version)) problems.push(`${f.path}:${r.line}: ${type} uses a preview api-version`);
      else if (version < '2023-01-01' && !(type in OLD_API_EXCEPTIONS)) {
        problems.push(`${f.path}:${r.line}: ${type}@${version} is older than 2023`);
      }
    }
    // Modules: local files, params known and complete, outputs referenced exist.
    const modules = new Map<string, BicepFile>();
    for (const m of f.stmts.filter((s) => s.keyword === 'module')) {
      const pathTok = significant(m.toks).find((t) => t.kind === 'string');
      const target = pathTok ? posix.join(posix.dirname(f.path), pathTok.text) : '';
      const mod = byPath.get(target);
      if (!pathTok || !files.has(target) || !mod) {
        problems.push(`${f.path}: module ${m.name} '${pathTok?.text}' is not a file in infra/`);
        continue;
      }
      modules.set(m.name, mod);
      const body = bodyOf(m);
      const given = inside(prop(body, 'params') ?? [], 0);
      const givenKeys = topKeys(given);
      const declared = paramNames(mod);
      for (const k of givenKeys) {
        if (!declared.some((p) => p.name === k))
          problems.push(`${f.path}: module ${m.name} passes unknown param ${k}`);
      }
      for (const p of declared) {
        if (p.required && !givenKeys.includes(p.name))
          problems.push(`${f.path}: module ${m.name} lacks param ${p.name}`);
      }
      if (f === main && prop(body, 'scope')?.[0]?.text !== 'rg')
        problems.push(`${f.path}: module ${m.name} needs scope: rg`);
    }
    const sig = all.filter((t) => t.kind !== 'nl' && t.kind !== 'comment');
    for (let i = 0; i + 4 < sig.length; i++) {
      const mod = modules.get(sig[i]!.text);
      if (mod && sig[i + 1]!.text === '.' && sig[i + 2]!.text === 'outputs' && sig[i + 3]!.text === '.') {
        const out = sig[i + 4]!.text;
        if (!outputNames(mod).includes(out))
          problems.push(`${f.path}: ${sig[i]!.text}.outputs.${out} does not exist`);
      }
    }
  }
  for (const o of REQUIRED_OUTPUTS)
    if (!outputNames(main).includes(o)) problems.push(`${MAIN}: output ${o} missing`);

  // main.parameters.json against main.bicep.
  const paramsText = files.get('infra/main.parameters.json');
  if (paramsText === undefined) return [...problems, 'infra/main.parameters.json missing'];
  const json = JSON.parse(paramsText) as { parameters?: Record<string, { value?: unknown }> };
  const declared = paramNames(main);
  for (const [k, v] of Object.entries(json.parameters ?? {})) {
    if (!declared.some((p) => p.name === k))
      problems.push(`main.parameters.json: ${k} is not a param of main.bicep`);
    if (typeof v.value !== 'string' || !/^(?:\$\{[A-Z][A-Z0-9_]*\}|[^$]*)$/.test(v.value)) {
      problems.push(`main.parameters.json: ${k} should be a literal or one \${AZD_VARIABLE}`);
    }
  }
  for (const p of declared) {
    if (p.required && !(p.name in (json.parameters ?? {})))
      problems.push(`main.parameters.json: required ${p.name} missing`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (c) keys and identity

function securityProblems(files: Map<string, string>): string[] {
  const { parsed, problems } = loadBicep(files);
  const all = parsed.flatMap((f) => resources(f));
  const literal = (toks: Tok[] | undefined) =>
    toks
      ?.filter((t) => t.kind !== 'nl')
      .map((t) => t.text)
      .join(' ');
  for (const f of parsed) {
    for (const t of flat(f.toks)) {
      if (t.kind === 'ident' && /^list(Keys|AccountSas|ServiceSas|Secrets)$/.test(t.text)) {
        problems.push(`${f.path}:${t.line}: ${t.text}() puts a secret into the deployment`);
      }
      if (t.kind === 'string' && /AccountKey=|SharedAccessSignature=|sig=/i.test(t.text)) {
        problems.push(`${f.path}:${t.line}: a key or SAS in a string`);
      }
    }
  }
  const accounts = all.filter((r) => r.type.startsWith('Microsoft.Storage/storageAccounts@') && !r.existing);
  const host = accounts.find((r) => r.name === 'hostStorage');
  if (!host) problems.push('no storage account resource named hostStorage');
  else if (literal(propPath(host.body, ['properties', 'allowSharedKeyAccess'])) !== 'false') {
    problems.push(`${host.file.path}: hostStorage must set allowSharedKeyAccess: false`);
  }
  for (const a of accounts) {
    const props = (k: string) => literal(propPath(a.body, ['properties', k]));
    if (props('allowBlobPublicAccess') !== 'false')
      problems.push(`${a.file.path}: ${a.name} allows public blobs`);
    if (props('minimumTlsVersion') !== 'TLS1_2') problems.push(`${a.file.path}: ${a.name} accepts TLS < 1.2`);
    // An account that keeps shared keys must say why in its file (the gallery's listKeys rule).
    const fileComments = a.file.toks.filter((t) => t.kind === 'comment').map((t) => t.text);
    if (props('allowSharedKeyAccess') !== 'false' && !fileComments.some((c) => c.includes('listKeys'))) {
      problems.push(
        `${a.file.path}: ${a.name} allows shared keys without the reason (listKeys) written beside it`,
      );
    }
  }
  const site = all.find((r) => r.type.startsWith('Microsoft.Web/sites@'));
  if (!site) problems.push('no Microsoft.Web/sites resource');
  else {
    const cfg = ['properties', 'functionAppConfig'];
    if (literal(propPath(site.body, [...cfg, 'runtime', 'name'])) !== 'node')
      problems.push('runtime must be node');
    if (literal(propPath(site.body, [...cfg, 'runtime', 'version'])) !== '22')
      problems.push('runtime must be Node 22');
    if (
      literal(propPath(site.body, [...cfg, 'deployment', 'storage', 'authentication', 'type'])) !==
      'UserAssignedIdentity'
    ) {
      problems.push('deployment storage must authenticate with the user-assigned identity');
    }
    const mem = literal(propPath(site.body, [...cfg, 'scaleAndConcurrency', 'instanceMemoryMB'])) ?? '';
    const memParam = site.file.stmts.find((s) => s.keyword === 'param' && s.name === mem);
    const memValue = memParam ? significant(memParam.toks).at(-1)?.text : mem;
    if (!(Number(memValue) >= 2048)) problems.push(`instanceMemoryMB must be at least 2048 (is ${memValue})`);
    if (literal(propPath(site.body, ['identity', 'type'])) !== 'UserAssigned')
      problems.push('the app must run as its user-assigned identity');
    if (propPath(site.body, ['properties', 'siteConfig', 'appSettings']))
      problems.push('app settings belong in the appsettings resource only');
  }
  const plan = all.find((r) => r.type.startsWith('Microsoft.Web/serverfarms@'));
  if (literal(propPath(plan?.body ?? [], ['sku', 'tier'])) !== 'FlexConsumption')
    problems.push('plan must be FlexConsumption');
  const vault = all.find((r) => r.type.startsWith('Microsoft.KeyVault/vaults@') && !r.existing);
  if (literal(propPath(vault?.body ?? [], ['properties', 'enableRbacAuthorization'])) !== 'true')
    problems.push('Key Vault must use RBAC');
  const ai = all.find((r) => r.type.startsWith('Microsoft.Insights/components@') && !r.existing);
  if (literal(propPath(ai?.body ?? [], ['properties', 'DisableLocalAuth'])) !== 'true')
    problems.push('App Insights must disable local auth');
  return problems;
}

// ---------------------------------------------------------------------------------------------
// (d) role assignments

const BUILT_IN_ROLES: Record<string, string> = {
  'Storage Blob Data Owner': 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  'Storage Blob Data Contributor': 'ba92f5b4-2d11-453d-a403-e96b0029c9fe',
  'Storage Queue Data Contributor': '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  'Storage Table Data Contributor': '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  'Storage Account Contributor': '17d1049b-9a84-46fb-8f53-869881c3d3ab',
  'Key Vault Secrets User': '4633458b-17de-408a-b874-0445c86b69e6',
  'Key Vault Secrets Officer': 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7',
  'Monitoring Metrics Publisher': '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** Broad roles that have no place in this deployment. */
const FORBIDDEN_ROLES: Record<string, string> = {
  Owner: '8e3af657-a8ff-443c-a75c-2fe8c4bcb635',
  Contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c',
  'User Access Administrator': '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9',
  'Role Based Access Control Administrator': 'f58310d9-a9f6-439a-9e8d-f62e7b41a168',
};

function roleProblems(files: Map<string, string>): string[] {
  const { parsed, problems } = loadBicep(files);
  let count = 0;
  for (const f of parsed) {
    const res = resources(f);
    const customRoles = res.filter(
      (r) => r.type.startsWith('Microsoft.Authorization/roleDefinitions@') && !r.existing,
    );
    for (const c of customRoles) {
      const actions = flat(propPath(c.body, ['properties', 'permissions']) ?? []).filter(
        (t) => t.kind === 'string',
      );
      if (actions.length === 0 || actions.some((t) => t.text.includes('*'))) {
        problems.push(`${f.path}: custom role ${c.name} must list its actions without wildcards`);
      }
      const scopes = propPath(c.body, ['properties', 'assignableScopes'])
        ?.filter((t) => t.kind !== 'nl')
        .map((t) => t.text)
        .join('');
      if (scopes !== '[resourceGroup().id]')
        problems.push(`${f.path}: custom role ${c.name} must be assignable in this group only`);
    }
    for (const r of res.filter((x) => x.type.startsWith('Microsoft.Authorization/roleAssignments@'))) {
      count++;
      const where = `${f.path}:${r.line} ${r.name}`;
      const comment = r.comments.join(' ');
      const roleId = flat(propPath(r.body, ['properties', 'roleDefinitionId']) ?? []);
      const roleIdText = roleId.map((t) => t.text).join(' ');
      const named = Object.entries(BUILT_IN_ROLES).find(
        ([n, g]) => comment.includes(n) && comment.includes(g),
      );
      const custom = customRoles.find((c) => roleId.some((t) => t.text === c.name));
      if (named) {
        if (!roleIdText.includes(named[1]))
          problems.push(`${where}: comment names ${named[0]} but the role id differs`);
      } else if (custom) {
        const roleName =
          propPath(custom.body, ['properties', 'roleName'])?.[0]?.text.replace(/ \(\$\{.*$/, '') ?? '';
        if (!/custom role/i.test(comment) || !comment.includes(roleName)) {
          problems.push(`${where}: comment must name the custom role "${roleName}"`);
        }
      } else {
        problems.push(`${where}: no comment above naming the role and its GUID`);
      }
      for (const [n, g] of Object.entries(FORBIDDEN_ROLES)) {
        if (roleIdText.includes(g)) problems.push(`${where}: ${n} is far broader than needed`);
      }
      const scope = prop(r.body, 'scope')?.filter((t) => t.kind !== 'nl');
      const scoped = res.find(
        (x) => x.name === scope?.[0]?.text && !x.type.startsWith('Microsoft.Authorization/'),
      );
      if (!scope || scope.length !== 1 || !scoped)
        problems.push(`${where}: needs scope: <the one resource it applies to>`);
      if (prop(r.body, 'name')?.[0]?.text !== 'guid')
        problems.push(`${where}: name must be a deterministic guid(...)`);
    }
  }
  if (count === 0) problems.push('no role assignments found');
  return problems;
}

// ---------------------------------------------------------------------------------------------

/** A copy of the tree with one file's text replaced; fails loudly if the replacement does nothing. */
function mutate(
  files: Map<string, string>,
  path: string,
  from: string | RegExp,
  to: string,
): Map<string, string> {
  const text = files.get(path);
  if (text === undefined) throw new Error(`no ${path}`);
  const next = text.replace(from, to);
  if (next === text) throw new Error(`mutation of ${path} changed nothing: ${String(from)}`);
  return new Map(files).set(path, next);
}

const tree = readTree();
const FN = 'infra/app/function.bicep';
const RBAC = 'infra/app/rbac.bicep';

describe('Bicep lexer', () => {
  it('reads strings with interpolation, escapes and comments', () => {
    const toks = lex("var a = 'x${b[0]}y\\'z' // note\n/* c */ var d = '''\nraw { \n'''\n");
    const strings = toks.filter((t) => t.kind === 'string');
    expect(strings.map((t) => t.text)).toEqual(["x${b[0]}y\\'z", '\nraw { \n']);
    expect(
      flat(toks)
        .filter((t) => t.kind === 'ident')
        .map((t) => t.text),
    ).toEqual(['var', 'a', 'b', 'var', 'd']);
    expect(toks.filter((t) => t.kind === 'comment').map((t) => t.text)).toEqual(['note', 'c']);
  });

  it('rejects unterminated strings and unbalanced brackets', () => {
    expect(() => lex("var a = 'open\n")).toThrow(/unterminated string/);
    expect(() => lex("var a = '${b'\n")).toThrow(/unterminated/);
    expect(balanceProblems(lex('var a = {\n  b: [1, 2)\n}\n'), 'x')).toHaveLength(1);
    expect(balanceProblems(lex("var a = { b: '}' }\n"), 'x')).toEqual([]);
  });
});

describe('azure.yaml', () => {
  it('deploys one Node function service, the app the infra tags azd-service-name', () => {
    const y = parseYaml(tree.get('azure.yaml')!) as {
      services: Record<string, { host: string; language: string }>;
    };
    const [name, svc] = Object.entries(y.services)[0]!;
    expect(Object.keys(y.services)).toHaveLength(1);
    expect(svc).toMatchObject({ host: 'function', language: 'ts', project: '.' });
    const infra = [...tree].filter(([p]) => p.endsWith('.bicep')).map(([, t]) => t);
    expect(infra.join('\n')).toContain(`'azd-service-name': '${name}'`);
  });
});

describe('(a) app settings', () => {
  it('reads the setting names of config.ts, template-built ones expanded', () => {
    const { names, problems } = codeSettingNames(tree.get('src/lib/config/config.ts')!);
    expect(problems).toEqual([]);
    expect(names).toContain('AzureWebJobsStorage__queueServiceUri');
    expect(names).not.toContain('CONFIG_INVALID');
  });

  it('finds exactly the settings loadConfig reads at run time', () => {
    // The text scan and the code must agree, or a setting could slip past the checks below.
    const read = new Set<string>();
    const env = (values: Record<string, string>) =>
      new Proxy(values, {
        get: (target, key: string) => {
          read.add(key);
          return target[key];
        },
      });
    loadConfig(env({}), 1800);
    loadConfig(
      env({
        AzureWebJobsStorage__accountName: 'sthost',
        AzureWebJobsStorage__clientId: '00000000-0000-0000-0000-000000000001',
        AZURE_SUBSCRIPTION_ID: '00000000-0000-0000-0000-000000000002',
        AZURE_RESOURCE_GROUP: 'rg-mirror',
        AZURE_REGION: 'westeurope',
        AZURE_GALLERY_NAME: 'galmirror',
        AZURE_STORAGE_ACCOUNT_NAME: 'stvhd',
        AZURE_KEY_VAULT_URL: 'https://kv-mirror.vault.azure.net/',
        BASM_NOTIFY_GITHUB_OWNER: 'owner',
        BASM_NOTIFY_GITHUB_REPO: 'repo',
        BASM_NOTIFY_GITHUB_WORKFLOW: 'stemcell.yml',
        BASM_NOTIFY_GITHUB_REF: 'main',
      }),
      1800,
    );
    const scanned = codeSettingNames(tree.get('src/lib/config/config.ts')!).names;
    expect([...read].filter((n) => typeof n === 'string').sort()).toEqual([...scanned].sort());
  });

  it('sets every setting the code reads, or lists it as optional with a reason; sets nothing unread', () => {
    expect(settingsProblems(tree)).toEqual([]);
    for (const reason of [...Object.values(OPTIONAL_IN_INFRA), ...Object.values(HOST_RUNTIME_SETTINGS)]) {
      expect(reason.length).toBeGreaterThan(10);
    }
  });

  it('catches a setting renamed on either side', () => {
    const renamedInInfra = mutate(tree, FN, 'BASM_SCHEDULE:', 'BASM_CRON:');
    // Only the new problems count, so this stays exact while the tree is clean or not.
    const baseline = new Set(settingsProblems(tree));
    expect(settingsProblems(renamedInInfra).filter((p) => !baseline.has(p))).toEqual([
      'setting BASM_SCHEDULE is read by the code but neither set by the infra nor listed as optional',
      'app setting BASM_CRON is set by the infra but read by nothing',
    ]);
    const renamedInCode = mutate(
      tree,
      'src/lib/config/config.ts',
      /'AZURE_GALLERY_NAME'/g,
      "'AZURE_GALLERY'",
    );
    expect(settingsProblems(renamedInCode)).toContain(
      'app setting AZURE_GALLERY_NAME is set by the infra but read by nothing',
    );
    const dropped = mutate(tree, FN, /\n {2}BASM_NOTIFY_GITHUB_REF: notify\.ref/, '');
    expect(settingsProblems(dropped)).toContain(
      'setting BASM_NOTIFY_GITHUB_REF is read by the code but neither set by the infra nor listed as optional',
    );
    const flex = mutate(
      tree,
      FN,
      "AzureWebJobsStorage__credential: 'managedidentity'",
      "FUNCTIONS_WORKER_RUNTIME: 'node'",
    );
    expect(settingsProblems(flex)).toContain(
      'app setting FUNCTIONS_WORKER_RUNTIME is rejected by Flex Consumption',
    );
  });
});

describe('(b) Bicep structure', () => {
  it('every file is balanced, params used, modules resolvable, api-versions current, outputs sane', () => {
    expect(structureProblems(tree)).toEqual([]);
  });

  it('catches an unused param, a missing module file, an old api-version, a typo in an output reference', () => {
    const unused = mutate(
      tree,
      MAIN,
      'param schedule string',
      'param schedule string\nparam unusedKnob string',
    );
    expect(structureProblems(unused)).toContain('infra/main.bicep: param unusedKnob is never used');
    const moved = mutate(tree, MAIN, "'app/gallery.bicep'", "'app/galleries.bicep'");
    expect(structureProblems(moved)).toContain(
      "infra/main.bicep: module gallery 'app/galleries.bicep' is not a file in infra/",
    );
    const old = mutate(tree, 'infra/app/gallery.bicep', '@2024-03-03', '@2022-03-03');
    expect(structureProblems(old).join('\n')).toMatch(
      /Microsoft\.Compute\/galleries@2022-03-03 is older than 2023/,
    );
    const typo = mutate(
      tree,
      MAIN,
      'gallery.outputs.name\n    keyVaultUri',
      'gallery.outputs.nmae\n    keyVaultUri',
    );
    expect(structureProblems(typo)).toContain('infra/main.bicep: gallery.outputs.nmae does not exist');
    const unbalanced = mutate(tree, 'infra/app/identity.bicep', 'tags: tags\n}', 'tags: tags\n');
    expect(structureProblems(unbalanced).join('\n')).toMatch(/identity\.bicep:\d+: '\{' never closed/);
    const badParam = mutate(tree, 'infra/main.parameters.json', '"schedule"', '"cron"');
    expect(structureProblems(badParam)).toContain('main.parameters.json: cron is not a param of main.bicep');
    const lostParam = mutate(tree, MAIN, 'keyVaultUri: vault.outputs.uri\n', '');
    expect(structureProblems(lostParam)).toContain('infra/main.bicep: module app lacks param keyVaultUri');
  });
});

describe('(c) identity, no keys', () => {
  it('the host account refuses shared keys; nothing carries a key; runtime and plan as required', () => {
    expect(securityProblems(tree)).toEqual([]);
  });

  it('catches shared keys on the host account, a listKeys() and an AccountKey in a setting', () => {
    const host = 'infra/app/host-storage.bicep';
    expect(
      securityProblems(mutate(tree, host, 'allowSharedKeyAccess: false', 'allowSharedKeyAccess: true')),
    ).toContain('infra/app/host-storage.bicep: hostStorage must set allowSharedKeyAccess: false');
    const withKey = mutate(
      tree,
      FN,
      'AzureWebJobsStorage__clientId: identityClientId',
      "AzureWebJobsStorage: 'DefaultEndpointsProtocol=https;AccountName=x;AccountKey=${listKeys(vhdStorageId, '2023-05-01').keys[0].value}'",
    );
    const problems = securityProblems(withKey).join('\n');
    expect(problems).toMatch(/listKeys\(\) puts a secret/);
    expect(problems).toMatch(/a key or SAS in a string/);
    expect(securityProblems(mutate(tree, FN, "version: '22'", "version: '20'"))).toContain(
      'runtime must be Node 22',
    );
    expect(securityProblems(mutate(tree, FN, 'int = 2048', 'int = 512')).join()).toMatch(
      /at least 2048 \(is 512\)/,
    );
  });
});

describe('(d) role assignments', () => {
  it('each is commented with its role, scoped to one resource, none broad', () => {
    expect(roleProblems(tree)).toEqual([]);
  });

  it('catches a missing comment, a mismatched GUID, a broad role and a group-wide scope', () => {
    const noComment = mutate(tree, RBAC, /\/\/ Monitoring Metrics Publisher[^\n]*\n\/\/[^\n]*\n/, '');
    expect(roleProblems(noComment).join('\n')).toMatch(
      /telemetryPublisher: no comment above naming the role/,
    );
    const wrongGuid = mutate(
      tree,
      RBAC,
      "roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')",
      "roleDefinitions', 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7')",
    );
    expect(roleProblems(wrongGuid).join('\n')).toMatch(
      /vaultSecretsUser: comment names Key Vault Secrets User but the role id differs/,
    );
    const broad = mutate(
      tree,
      RBAC,
      "roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')",
      "roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')",
    );
    expect(roleProblems(broad).join('\n')).toMatch(/telemetryPublisher: Contributor is far broader/);
    const wide = mutate(tree, RBAC, 'scope: gallery\n', '');
    expect(roleProblems(wide).join('\n')).toMatch(/galleryPublisherAssignment: needs scope/);
    const wildcard = mutate(
      tree,
      RBAC,
      "'Microsoft.Compute/galleries/images/write'",
      "'Microsoft.Compute/*'",
    );
    expect(roleProblems(wildcard).join('\n')).toMatch(
      /custom role galleryPublisherRole must list its actions without wildcards/,
    );
  });
});

describe('README.md', () => {
  it('explains every azd variable main.parameters.json reads', () => {
    const json = tree.get('infra/main.parameters.json')!;
    const doc = tree.get('README.md')!;
    const vars = [...json.matchAll(/\$\{([A-Z_]+)\}/g)].map((m) => m[1]!);
    const azdOwn = ['AZURE_ENV_NAME', 'AZURE_LOCATION', 'AZURE_PRINCIPAL_ID'];
    expect(vars.filter((v) => !azdOwn.includes(v)).filter((v) => !doc.includes(v))).toEqual([]);
    expect(doc).toContain('github-token');
  });
});
