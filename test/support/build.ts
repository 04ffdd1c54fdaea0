/** Child-process tests run the compiled app: `npm test` builds first; a lone run builds when stale. */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const LOCAL_MAIN = join(ROOT, 'dist', 'src', 'local', 'main.js');
export const BIN = join(ROOT, 'bin', 'stemcell-mirror.js');

/** The package's bin script in a child process, as `npx stemcell-mirror …` starts it. */
export function runBin(args: string[], nodeArgs: string[] = []): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [...nodeArgs, BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
}

function newestMtime(dir: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(
      newest,
      e.isDirectory() ? newestMtime(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0,
    );
  }
  return newest;
}

function mtime(file: string): number {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

/**
 * Compiles to dist/ when `target` is missing or older than any .ts file under `sourceDirs`;
 * throws if that did not help.
 */
export function ensureBuilt(target = LOCAL_MAIN, sourceDirs: readonly string[] = ['src']): void {
  const built = mtime(target);
  if (built >= Math.max(...sourceDirs.map((d) => newestMtime(join(ROOT, d))))) return;
  // Type errors elsewhere in the tree still emit; what matters is a fresh main.js.
  spawnSync(
    process.execPath,
    [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
    {
      cwd: ROOT,
      timeout: 120_000,
      stdio: 'ignore',
    },
  );
  if (mtime(target) <= built) throw new Error('building dist/ failed: run npm run build');
}
