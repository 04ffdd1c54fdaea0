/**
 * A small run of `npm run bench`: the compiled entry, a 128 MiB stemcell from the fixture script
 * (or, where its tools are missing, a 32 MiB in-memory one, which the output must then admit), one
 * mirror into Azurite, one round under production's caps beside the earlier approach, and a short
 * soak. Checks the JSON contract of DESIGN §5 and what does not depend on the machine's speed (bytes,
 * job and transfer counts, byte-identical blobs); the timing targets are the benchmark's business.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BenchOutput } from '../../bench/bench';
import { missingTools } from '../../bench/stemcells';
import { ensureBuilt, ROOT } from '../support/build';
import { spawnTied } from '../../src/local/tied-spawn';

const entry = join(ROOT, 'dist', 'bench', 'bench.js');
const script = join(ROOT, 'bench', 'make-stemcell.sh');
const MIB = 1024 * 1024;
const SOAK = { mirrors: 3, requests: 10, series: 3 };

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawnTied(process.execPath, [entry, ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-8000)));
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
      '--capped-rounds',
      '1',
      '--soak-size',
      String(sizeMiB),
      '--soak-mirrors',
      String(SOAK.mirrors),
      '--soak-requests',
      String(SOAK.requests),
      '--soak-series',
      String(SOAK.series),
      '--scratch',
      scratch,
    ]);
  }, 400_000);

  const output = () => JSON.parse(out.stdout.trim()) as BenchOutput;
  const result = () => output().results[0]!;

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

  it('ran the mirror and the earlier approach under the caps, both putting every non-zero run', () => {
    const r = result();
    const c = r.capped!;
    expect(c.putPageMiBps).toBe(60);
    expect(c.downloadMBps).toBe(100);
    expect(c.sinkLimitSeconds).toBeCloseTo(
      Math.max(r.nonZeroBytes64k / (60 * MIB), r.archiveBytes / 100e6),
      2,
    );
    expect(r.ratioToSinkLimit).toBe(c.ratioToSinkLimit);
    expect(r.seedApproachSeconds).toBe(c.seedApproachSeconds);
    expect(c.samples).toHaveLength(1);
    const sample = c.samples[0]!;
    expect(sample.startUpSeconds).toBeGreaterThan(0);
    expect(sample.startUpSeconds).toBeLessThan(sample.seconds);
    expect(sample.ratioToSinkLimit).toBeCloseTo(
      (sample.seconds - sample.startUpSeconds) / c.sinkLimitSeconds,
      2,
    );
    expect(c.sentBytes).toBeLessThanOrEqual(r.nonZeroBytes64k);
    expect(c.sentBytes).toBe(r.sentBytes);
    expect(typeof r.met.ratioToSinkLimit).toBe('boolean');
    // The sink's idle time lies within the mirror's transfer; the sink's checksum is named.
    expect(c.putPageIdleSeconds).toBeGreaterThanOrEqual(0);
    expect(c.putPageIdleSeconds).toBeLessThan(sample.seconds);
    expect(c.sinkChecksum).toMatch(/crc64-nvme/);
    expect(c.sinkAnswerMs).toBeGreaterThan(0);
    // The earlier approach: the whole archive and the whole VHD on disk, every non-zero run put.
    const seed = c.seedApproach;
    expect(seed.complete).toBe(true);
    expect(seed.archiveBytes).toBe(r.archiveBytes);
    expect(seed.vhdBytes).toBe(r.vhdBytes);
    expect(seed.tempDiskBytes).toBeGreaterThan(r.vhdBytes + r.archiveBytes);
    expect(seed.sentBytes).toBeGreaterThanOrEqual(r.nonZeroBytes64k);
    // Whole 4 MiB chunks (the last one shorter: the VHD's footer).
    expect(seed.sentBytes).toBeLessThanOrEqual(seed.puts * 4 * MIB);
    expect(seed.sentBytes).toBeGreaterThan((seed.puts - 1) * 4 * MIB);
  });

  it('soak: mirrors in a row all staged, with memory and handles sampled after each', () => {
    const q = output().soak!.sequential;
    expect(q.mirrors).toBe(SOAK.mirrors);
    expect(q.met.allStaged).toBe(true);
    for (const k of ['seconds', 'rssMiB', 'heapUsedMiB', 'activeResources', 'fds'] as const) {
      expect(q[k], k).toHaveLength(SOAK.mirrors);
      for (const v of q[k]) expect(v, k).toBeGreaterThan(0);
    }
    expect(q.rssGrowth).toBeCloseTo(q.rssMiB[SOAK.mirrors - 1]! / q.rssMiB[1]! - 1, 2);
    expect(q.activeResourcesDelta).toBe(q.activeResources[SOAK.mirrors - 1]! - q.activeResources[0]!);
    const half = Math.ceil(SOAK.mirrors / 2);
    expect(q.fdsRise).toBe(Math.max(...q.fds.slice(half)) - Math.max(...q.fds.slice(0, half)));
    expect(q.met.handlesFlat).toBe(q.fdsRise <= 0 && q.activeResourcesRise <= 0);
    expect(typeof q.met.rssFlat).toBe('boolean');
    expect(typeof q.met.handlesFlat).toBe('boolean');
  });

  it('load: concurrent forced requests for one version make one job and one transfer', () => {
    const r = result();
    const c = output().soak!.concurrentRequests;
    expect(c.requests).toBe(SOAK.requests);
    expect(c.answers).toEqual({ 202: SOAK.requests });
    expect(c.jobs).toBe(1);
    expect(c.status).toBe('staged');
    expect(c.passes).toBe(1);
    expect(c.downloads).toBe(1);
    expect(c.nonZeroBytes64k).toBe(r.nonZeroBytes64k);
    expect(c.putPageBytes).toBe(c.sentBytes);
    expect(c.putPageBytes).toBeLessThanOrEqual(c.nonZeroBytes64k);
    expect(c.byteIdentical).toBe(true);
    expect(c.met).toEqual({ oneJob: true, oneTransfer: true, byteIdentical: true });
  });

  it('load: several series at once in one worker process all end staged and byte-identical', () => {
    const m = output().soak!.concurrentSeries;
    expect(m.series).toBe(SOAK.series);
    expect(m.statuses).toEqual({ staged: SOAK.series });
    expect(m.byteIdentical).toBe(SOAK.series);
    expect(m.putPageBytes).toBeLessThanOrEqual(SOAK.series * result().nonZeroBytes64k);
    expect(m.peakRssMiB).toBeGreaterThan(m.idleRssMiB);
    expect(output().summary.met.soak).toMatchObject({
      oneJob: true,
      oneTransfer: true,
      allStaged: true,
      byteIdentical: true,
    });
  });
});
