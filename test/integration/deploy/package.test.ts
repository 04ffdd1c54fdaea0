/**
 * The deploy package is a built, tested artifact: `npm run package` writes .package/, azd zips that
 * folder with .funcignore (gitignore rules) and uploads it. This builds it as azd's hook does, selects
 * its files as azd does, and loads it on Node 22 from a copy with nothing around it, as the Functions
 * host's Node worker would: the entry points by `main`, every production dependency from the package.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ignore from 'ignore';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { funcignore, selectFiles, sizeOf } from '../../../scripts/package';
import { ensureBuilt, ROOT } from '../../support/build';

const FUNCTIONS = ['mirrorPoison', 'mirrorRequest', 'mirrorSchedule', 'mirrorStatus', 'mirrorWorker'];
const rules = funcignore(readFileSync(join(ROOT, '.funcignore'), 'utf8'));
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  main: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  scripts: Record<string, string>;
};

/** A Node 22 binary: this one if it is 22, else the one scripts/node.sh keeps in .cache/. */
function node22(): string {
  if (process.versions.node.startsWith('22.')) return process.execPath;
  return execFileSync(join(ROOT, 'scripts', 'node.sh'), ['22'], { encoding: 'utf8' }).trim();
}

/**
 * Run in the package's folder: intercepts `@azure/functions-core` (the Node worker provides it in
 * Azure) to record each registration, requires every file `main` matches, then every production
 * dependency, and reports what happened.
 */
const LOADER = `
const Module = require('node:module');
const { globSync, readFileSync } = require('node:fs');
const path = require('node:path');
const registered = [];
const core = {
  setProgrammingModel() {},
  registerFunction(metadata) { registered.push(metadata.name); return { dispose() {} }; },
  registerHook() { return { dispose() {} }; },
};
const load = Module._load;
Module._load = function (request, ...rest) {
  return request === '@azure/functions-core' ? core : load.call(this, request, ...rest);
};
const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
const mains = globSync(pkg.main).map((f) => f.split(path.sep).join('/')).sort();
for (const f of mains) require(path.resolve(f));
const deps = Object.keys(pkg.dependencies);
for (const d of deps) require(d);
process.stdout.write(JSON.stringify({ node: process.version, mains, registered, deps }));
`;

let files: string[] = [];
let copy = '';

beforeAll(() => {
  ensureBuilt(join(ROOT, 'dist', 'scripts', 'package.js'), ['src', 'scripts']);
  // What azd's prepackage hook runs after its own `npm run build`, written where no node_modules is
  // above it, so that nothing can resolve from the project's own.
  copy = mkdtempSync(join(tmpdir(), 'basm-package-'));
  const built = spawnSync(process.execPath, [join(ROOT, 'dist', 'scripts', 'package.js'), '--out', copy], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 240_000,
  });
  if (built.status !== 0) throw new Error(`npm run package failed: ${built.stderr}${built.stdout}`);
  process.stdout.write(built.stdout);
  files = selectFiles(copy, rules);
}, 300_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('.funcignore, read with gitignore rules as azd reads it', () => {
  it('is what the library says gitignore means: an unanchored folder pattern matches at any depth', () => {
    // The bug this file once had: `src/` also removed dist/src and node_modules/**/src.
    expect(ignore().add('src/').ignores('dist/src/functions/mirrorWorker.js')).toBe(true);
    expect(ignore().add('/src/').ignores('dist/src/functions/mirrorWorker.js')).toBe(false);
  });

  it('keeps the compiled app and every src folder inside node_modules; drops sources, tests, data', () => {
    const kept = [
      'package.json',
      'host.json',
      'dist/src/functions/mirrorWorker.js',
      'node_modules/debug/src/index.js',
      'node_modules/@azure/storage-blob/dist/commonjs/generated/src/index.js',
      'node_modules/ecdsa-sig-formatter/src/ecdsa-sig-formatter.js',
    ];
    const dropped = [
      'src/functions/mirrorWorker.ts',
      'test/integration/deploy/package.test.ts',
      'dist/test/x.test.js',
      'dist/bench/bench.js',
      'dist/scripts/package.js',
      'dist/src/functions/mirrorWorker.js.map',
      '.bench/stemcell-1024.tgz',
      '.azurite/__blobstorage__/x',
      '__azurite_db_blob__.json',
      'local.settings.json',
      'dist/local.settings.json',
      '.cache/bicep/tools/bicep',
      'infra/main.bicep',
      'README.md',
    ];
    expect(kept.filter((p) => rules.ignores(p))).toEqual([]);
    expect(dropped.filter((p) => !rules.ignores(p))).toEqual([]);
  });

  it('does not exclude node_modules: azd would take that as a request for a server-side build', () => {
    expect(rules.ignores('node_modules/')).toBe(false);
  });
});

describe('azure.yaml and the README state how the package is built', () => {
  it('local build of .package by the prepackage hook, and the azd version that honours it', () => {
    const y = parseYaml(readFileSync(join(ROOT, 'azure.yaml'), 'utf8')) as {
      requiredVersions?: { azd?: string };
      services: Record<string, Record<string, unknown>>;
    };
    const api = y.services.api!;
    expect(api).toMatchObject({ remoteBuild: false, dist: '.package' });
    expect((api.hooks as { prepackage: { run: string } }).prepackage.run).toBe('npm run package');
    expect(y.requiredVersions?.azd).toBe('>= 1.23.13');
    expect(pkg.scripts.package).toMatch(/npm run build && node dist\/scripts\/package\.js$/);
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme).toContain('`remoteBuild: false`');
    expect(readme).toContain('1.23.13');
    expect(readme).toContain('npm run package');
  });
});

describe('the deploy package (what npm run package writes to .package/)', () => {
  it('holds the compiled app, host.json, package files and production dependencies only', () => {
    const own = files.filter((f) => !f.startsWith('node_modules/'));
    expect(
      own.filter((f) => !/^(?:package\.json|package-lock\.json|host\.json|dist\/src\/.+\.js)$/.test(f)),
    ).toEqual([]);
    for (const name of FUNCTIONS) expect(own).toContain(`dist/src/functions/${name}.js`);
    const bytes = sizeOf(copy, files);
    console.log(`deploy package: ${files.length} files, ${(bytes / 2 ** 20).toFixed(1)} MiB before zip`);
    expect(bytes).toBeGreaterThan(0);
  });

  it('has no devDependency, test, benchmark data, local settings or Azurite data', () => {
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages)
      .filter(([k, v]) => k !== '' && v.dev === true)
      .map(([k]) => `${k}/`);
    expect(devOnly.length).toBeGreaterThan(100);
    for (const d of Object.keys(pkg.devDependencies)) expect(devOnly).toContain(`node_modules/${d}/`);
    expect(files.filter((f) => devOnly.some((d) => f.startsWith(d)))).toEqual([]);
    const forbidden =
      /(?:^|\/)(?:local\.settings\.json|__azurite_db[^/]*|__blobstorage__\/|__queuestorage__\/|\.azurite\/|\.bench\/)/;
    expect(files.filter((f) => forbidden.test(f) || /^(?:dist\/)?(?:test|bench)\//.test(f))).toEqual([]);
  });

  it('on Node 22, with nothing around it: main matches every function, all five register, every dependency loads', () => {
    const node = node22();
    const run = spawnSync(node, ['-e', LOADER], { cwd: copy, encoding: 'utf8', timeout: 120_000 });
    expect(run.stderr).not.toMatch(/Found zero files|Cannot find module|ERR_/);
    expect(run.status).toBe(0);
    const out = JSON.parse(run.stdout) as {
      node: string;
      mains: string[];
      registered: string[];
      deps: string[];
    };
    expect(out.node).toMatch(/^v22\./);
    for (const name of FUNCTIONS) expect(out.mains).toContain(`dist/src/functions/${name}.js`);
    expect(out.mains).toEqual(files.filter((f) => /^dist\/src\/functions\/[^/]+\.js$/.test(f)));
    expect([...out.registered].sort()).toEqual(FUNCTIONS);
    expect(out.deps.sort()).toEqual(Object.keys(pkg.dependencies).sort());
  });

  it('proves the load check can fail: without a dependency the copy does not load', () => {
    // The same copy with one production dependency set aside, and put back after.
    const debug = join(copy, 'node_modules', 'debug');
    renameSync(debug, `${debug}.aside`);
    try {
      const run = spawnSync(node22(), ['-e', LOADER], { cwd: copy, encoding: 'utf8', timeout: 120_000 });
      expect(run.status).not.toBe(0);
      expect(run.stderr).toMatch(/Cannot find module 'debug'/);
    } finally {
      renameSync(`${debug}.aside`, debug);
    }
  });
});
