/**
 * `npm run package`: builds the deploy package, the folder azd zips and uploads (azure.yaml
 * `dist: .package`, run by its `prepackage` hook).
 *
 * 1. Every file of the project that `.funcignore` keeps, selected the way azd selects them: gitignore
 *    rules (a pattern without a leading or inner `/` matches at any depth), an excluded folder skipped
 *    whole. The project's own node_modules is never copied: it holds the devDependencies.
 * 2. The production dependencies, installed fresh from package-lock.json (`npm ci --omit=dev`).
 * 3. `.funcignore` beside them, so azd's own pass over the folder keeps exactly what is there.
 *
 * Run after `npm run build` (the npm script does both). Prints the file count and size.
 * `--out DIR` writes the package there instead of .package/.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ignore, { type Ignore } from 'ignore';

export const PACKAGE_DIR = '.package';

/** The rules of an ignore file as azd reads them (a UTF-8 BOM stripped). */
export function funcignore(text: string): Ignore {
  return ignore().add(text.replace(/^\uFEFF/, ''));
}

/**
 * Files under `root` that azd would zip, as posix paths relative to `root`: what `rules` keeps, minus
 * what azd always leaves out (`.azure/`, the ignore file itself, `local.settings.json`).
 * `skip` names folders (relative) not to enter at all.
 */
export function selectFiles(root: string, rules: Ignore, skip: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const e of readdirSync(join(root, rel), { withFileTypes: true })) {
      const path = rel ? `${rel}/${e.name}` : e.name;
      const isDir = e.isDirectory();
      if (isDir && (e.name === '.azure' || skip.has(path))) continue;
      if (!isDir && (e.name === '.funcignore' || e.name === 'local.settings.json')) continue;
      if (rules.ignores(isDir ? `${path}/` : path)) continue;
      if (isDir) walk(path);
      else if (e.isFile()) out.push(path);
    }
  };
  walk('');
  return out.sort();
}

/** Total bytes of the given files under `root`. */
export function sizeOf(root: string, files: readonly string[]): number {
  return files.reduce((sum, f) => sum + lstatSync(join(root, f)).size, 0);
}

/** Builds the package from the project at `root` into `dir` (by default root/.package, where azd takes it). */
export function buildPackage(
  root: string,
  dir = join(root, PACKAGE_DIR),
): { dir: string; files: string[]; bytes: number } {
  const rules = funcignore(readFileSync(join(root, '.funcignore'), 'utf8'));
  rmSync(dir, { recursive: true, force: true });
  const own = selectFiles(root, rules, new Set(['node_modules', PACKAGE_DIR, '.git', relative(root, dir)]));
  for (const f of own) {
    mkdirSync(dirname(join(dir, f)), { recursive: true });
    copyFileSync(join(root, f), join(dir, f));
  }
  copyFileSync(join(root, '.funcignore'), join(dir, '.funcignore'));
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  // --ignore-scripts: no production dependency needs an install script, and none may run at deploy.
  execFileSync(
    npm,
    [
      'ci',
      '--omit=dev',
      '--ignore-scripts',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
    ],
    { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'], shell: process.platform === 'win32' },
  );
  const files = selectFiles(dir, rules);
  return { dir, files, bytes: sizeOf(dir, files) };
}

if (require.main === module) {
  const root = resolve(__dirname, '..', '..');
  // --out DIR: somewhere else than .package (the suite builds it where no node_modules is above it).
  const at = process.argv.indexOf('--out');
  const out = at > 0 ? resolve(process.argv[at + 1] ?? '') : undefined;
  const { dir, files, bytes } = buildPackage(root, out);
  const mib = (bytes / 2 ** 20).toFixed(1);
  console.log(`deploy package: ${dir}, ${files.length} files, ${mib} MiB (${bytes} bytes) before zip`);
}
