/**
 * The stemcells the benchmark mirrors: built by bench/make-stemcell.sh with real tools (ext4 from
 * real files, qemu-img's fixed VHD, gzip) so the archive compresses and the VHD has zeros like a real
 * one. When those tools cannot be had, a small in-memory stemcell stands in, and the results say so.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeStemcell } from '../test/support/stemcell-fixture';
import { spawnTied } from '../src/local/tied-spawn';

export const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';

export type Generator = 'make-stemcell.sh' | 'js';

export interface BenchStemcell {
  sizeMiB: number;
  series: string;
  version: string;
  tgzPath: string;
  /** The uncompressed VHD beside the archive (sparse on disk), for the upload floor. */
  vhdPath: string;
  archiveBytes: number;
  generator: Generator;
  /** Seconds spent building it; 0 when a kept one was reused. */
  buildSeconds: number;
  folder: string;
}

/** The in-memory generator holds the whole VHD and both archives at once: keep it small. */
export const JS_MAX_MIB = 512;

const TOOLS = ['sfdisk', 'mkfs.ext4', 'e2fsck', 'debugfs', 'openssl', 'qemu-img', 'tar', 'gzip', 'python3'];
const PACKAGES = ['qemu-utils', 'fdisk', 'e2fsprogs'];

function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' }).status === 0;
}

export function missingTools(): string[] {
  return TOOLS.filter((t) => !has(t));
}

function run(cmd: string, args: string[], say: (s: string) => void): boolean {
  say(`$ ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    encoding: 'utf8',
  });
  if (r.status !== 0) say(`  failed (${r.status ?? r.signal}): ${(r.stderr ?? '').trim().slice(-400)}`);
  return r.status === 0;
}

/**
 * Installs the fixture script's tools when they are missing and this is root with apt; pigz is
 * optional (the script falls back to gzip). Returns whether the script can run.
 */
export function ensureTools(opts: { install: boolean; say: (s: string) => void }): boolean {
  let missing = missingTools();
  if (missing.length === 0) return true;
  opts.say(`missing tools: ${missing.join(', ')}`);
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!opts.install || !root || !has('apt-get')) {
    opts.say(opts.install ? 'not root or no apt-get: cannot install them' : 'installing was turned off');
    return false;
  }
  run('apt-get', ['update'], opts.say);
  if (!run('apt-get', ['install', '-y', ...PACKAGES, 'pigz'], opts.say))
    run('apt-get', ['install', '-y', ...PACKAGES], opts.say);
  missing = missingTools();
  if (missing.length > 0) opts.say(`still missing: ${missing.join(', ')}`);
  return missing.length === 0;
}

function names(version: string, series: string): { tgz: string; vhd: string } {
  const tgz = `bosh-stemcell-${version}-${series.replace(/^bosh-/, '')}.tgz`;
  return { tgz, vhd: tgz.replace(/\.tgz$/, '.root.vhd') };
}

function described(
  folder: string,
  sizeMiB: number,
  version: string,
  generator: Generator,
  buildSeconds: number,
): BenchStemcell {
  const n = names(version, SERIES);
  const tgzPath = join(folder, n.tgz);
  return {
    sizeMiB,
    series: SERIES,
    version,
    tgzPath,
    vhdPath: join(folder, n.vhd),
    archiveBytes: statSync(tgzPath).size,
    generator,
    buildSeconds,
    folder,
  };
}

/** A stemcell of this size and generator kept by an earlier `--keep` run, if complete. */
function kept(
  folder: string,
  sizeMiB: number,
  version: string,
  generator: Generator,
): BenchStemcell | undefined {
  const marker = join(folder, 'complete.json');
  if (!existsSync(marker)) return undefined;
  try {
    const m = JSON.parse(readFileSync(marker, 'utf8')) as { generator?: string; sizeMiB?: number };
    if (m.generator !== generator || m.sizeMiB !== sizeMiB) return undefined;
    const s = described(folder, sizeMiB, version, generator, 0);
    return existsSync(s.vhdPath) ? s : undefined;
  } catch {
    return undefined;
  }
}

export interface BuildOptions {
  scratch: string;
  sizeMiB: number;
  generator: Generator;
  script: string;
  /** Percent of the fill that does not compress; 38 gives a real-sized archive. */
  incompressiblePct: number;
  say: (s: string) => void;
}

export async function buildStemcell(o: BuildOptions): Promise<BenchStemcell> {
  // One version per size, so the job key and the blob name tell the sizes apart.
  const version = `1.${o.sizeMiB}`;
  const folder = join(o.scratch, 'stemcells', `${o.generator === 'js' ? 'js' : 'sh'}-${o.sizeMiB}`);
  const reuse = kept(folder, o.sizeMiB, version, o.generator);
  if (reuse) {
    o.say(`reusing the kept ${o.sizeMiB} MiB stemcell in ${folder}`);
    return reuse;
  }
  await rm(folder, { recursive: true, force: true });
  await mkdir(folder, { recursive: true });
  const t0 = performance.now();
  if (o.generator === 'make-stemcell.sh') await runScript(o, folder, version);
  else await writeJsStemcell(o, folder, version);
  const seconds = (performance.now() - t0) / 1000;
  await writeFile(
    join(folder, 'complete.json'),
    JSON.stringify({ generator: o.generator, sizeMiB: o.sizeMiB }),
  );
  const s = described(folder, o.sizeMiB, version, o.generator, seconds);
  o.say(
    `built ${o.sizeMiB} MiB stemcell (${(s.archiveBytes / 1e6).toFixed(0)} MB archive) in ${seconds.toFixed(1)} s`,
  );
  return s;
}

async function runScript(o: BuildOptions, folder: string, version: string): Promise<void> {
  o.say(
    `building a ${o.sizeMiB} MiB stemcell with make-stemcell.sh (INCOMPRESSIBLE_PCT=${o.incompressiblePct})`,
  );
  const child = spawnTied('bash', [o.script, folder, version, String(o.sizeMiB), SERIES], {
    env: { ...process.env, KEEP_VHD: '1', INCOMPRESSIBLE_PCT: String(o.incompressiblePct) },
    // Its report goes to our stderr: stdout is kept for the one JSON line.
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let tail = '';
  const keep = (d: Buffer): void => {
    tail = (tail + d.toString()).slice(-2000);
    process.stderr.write(d);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`make-stemcell.sh exited with ${code}: ${tail}`);
}

async function writeJsStemcell(o: BuildOptions, folder: string, version: string): Promise<void> {
  if (o.sizeMiB > JS_MAX_MIB) {
    throw new Error(
      `the in-memory generator builds at most ${JS_MAX_MIB} MiB; ${o.sizeMiB} MiB needs make-stemcell.sh`,
    );
  }
  o.say(`building a ${o.sizeMiB} MiB stemcell in memory (fallback: mostly zeros, not realistic)`);
  const s = makeStemcell({ vhdMiB: o.sizeMiB, series: SERIES, version, seed: `bench-${o.sizeMiB}` });
  const n = names(version, SERIES);
  await writeFile(join(folder, n.tgz), s.tgz);
  await writeFile(join(folder, n.vhd), s.vhd);
}

/** Removes the big files unless they are to be kept for the next run. */
export async function removeStemcell(s: BenchStemcell): Promise<void> {
  await rm(s.folder, { recursive: true, force: true });
}
