/**
 * A small run of `npm run bench`: the compiled entry, a 128 MiB stemcell from the fixture script
 * (or, where its tools are missing, a 32 MiB in-memory one, which the output must then admit), one
 * mirror into Azurite. Checks the JSON contract of DESIGN §5 and the byte targets, which do not
 * depend on the machine's speed; the timing targets are the benchmark's business.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchOutput } from '../../bench/bench';
import { missingTools } from '../../bench/stemcells';
import { ensureBuilt, ROOT } from '../support/build';

const entry = join(ROOT, 'dist', 'bench', 'bench.js');
const script = join(ROOT, 'bench', 'make-stemcell.sh');
const MIB = 1024 * 1024;

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [entry, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
    child.once('close', (code) => done({ code, stdout, stderr }));
  });
}

const CONTRACT = [
  'vhdBytes',
  'seconds',
  'decompressOnlySeconds',
  'uploadOnlySeconds',
  'ratioToFloor',
  'nonZeroBytes64k',
  'sentBytes',
  'peakRssMiB',
  'tempDiskBytes',
] as const;

describe('npm run bench, small', () => {
  const useScript = existsSync(script) && missingTools().length === 0;
  const sizeMiB = useScript ? 128 : 32;
  const generator = useScript ? 'make-stemcell.sh' : 'js';
  let scratch: string;
  let out: { code: number | null; stdout: string; stderr: string };

  beforeAll(async () => {
    // The bench imports the fakes and support code too: any of them newer than the build rebuilds it.
    ensureBuilt(entry, ['src', 'bench', 'test/fakes', 'test/support']);
    expect(existsSync(entry)).toBe(true);
    scratch = mkdtempSync(join(tmpdir(), 'bench-smoke-'));
    out = await run([
      '--sizes',
      String(sizeMiB),
      '--generator',
      generator,
      '--no-install',
      '--resume',
      'off',
      '--rounds',
      '2',
      '--scratch',
      scratch,
    ]);
  }, 120_000);

  const result = () => (JSON.parse(out.stdout.trim()) as BenchOutput).results[0]!;

  afterAll(() => {
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('prints exactly one JSON object on stdout, with every contract field per size', () => {
    expect(out.code, out.stderr).toBe(0);
    const lines = out.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]!) as BenchOutput;
    expect(parsed.results).toHaveLength(1);
    const r = parsed.results[0]!;
    for (const k of CONTRACT) {
      expect(typeof r[k], k).toBe('number');
      expect(Number.isFinite(r[k]), k).toBe(true);
    }
    expect(r.generator).toBe(generator);
    expect(parsed.summary.generator).toBe(generator);
    if (!useScript) expect(parsed.summary.notes.join(' ')).toMatch(/fallback/);
  });

  it('measured a real mirror and both floors', () => {
    const r = result();
    expect(r.vhdBytes).toBe(sizeMiB * MIB + 512);
    for (const k of ['seconds', 'decompressOnlySeconds', 'uploadOnlySeconds', 'peakRssMiB'] as const)
      expect(r[k], k).toBeGreaterThan(0);
    expect(r.ratioToFloor).toBeCloseTo(r.seconds / Math.max(r.decompressOnlySeconds, r.uploadOnlySeconds), 2);
    // Two interleaved rounds: each figure is the median (here the mean) of its two samples.
    expect(r.rounds).toBe(2);
    for (const k of ['seconds', 'decompressOnlySeconds', 'uploadOnlySeconds'] as const) {
      const xs = r.samples[k];
      expect(xs, k).toHaveLength(2);
      expect(r[k], k).toBeCloseTo((xs[0]! + xs[1]!) / 2, 2);
    }
    expect(r.samples.ratioToFloor).toHaveLength(2);
    // A mostly empty disk: the sparse count is well below the size, and some data is there.
    expect(r.nonZeroBytes64k).toBeGreaterThan(0);
    expect(r.nonZeroBytes64k).toBeLessThan(r.vhdBytes);
  });

  it('sent no more than the non-zero 64 KiB runs, matching the blob, and used no temporary disk', () => {
    const r = result();
    expect(r.sentBytes).toBeGreaterThan(0);
    expect(r.sentBytes).toBeLessThanOrEqual(r.nonZeroBytes64k);
    expect(r.blobRangeBytes).toBe(r.sentBytes);
    expect(r.tempDiskBytes).toBe(0);
    expect(r.met.sentBytes).toBe(true);
    expect(r.met.tempDiskBytes).toBe(true);
  });
});
