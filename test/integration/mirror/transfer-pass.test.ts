import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, resolve } from 'node:path';
import { addAbortSignal, Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PageBlobClient } from '@azure/storage-blob';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { useBlobContainer } from '../../support/blobs';
import { isMirrorError } from '../../../src/lib/core/errors';
import { listPageRanges, type PageRange } from '../../../src/lib/azure/pageblob';
import {
  transferStemcell,
  type TransferCheckpoint,
  type TransferSource,
} from '../../../src/lib/mirror/transfer-pass';
import {
  makeStemcell,
  nonZeroRunBytes,
  type StemcellFixture,
  type StemcellFixtureOptions,
} from '../../support/stemcell-fixture';
import { spawnTied } from '../../../src/local/tied-spawn';

const KIB = 1024;
const MIB = 1024 * KIB;

const bed = useBlobContainer('stemcell', 'bosh-stemcell');
const newBlob = (): PageBlobClient => bed.newBlob();

interface SourceProbe {
  pulled: number;
}

/** The archive as a download would deliver it: 64 KiB chunks, abortable, optionally failing. */
function sourceOf(
  f: StemcellFixture,
  opts: { failAt?: number; probe?: SourceProbe; expect?: Partial<TransferSource> } = {},
): TransferSource {
  return {
    size: f.tgz.length,
    sha256: f.sha256,
    ...opts.expect,
    open(signal) {
      const tgz = f.tgz;
      const stream = Readable.from(
        (function* () {
          for (let off = 0; off < tgz.length; off += 64 * KIB) {
            if (opts.failAt !== undefined && off >= opts.failAt) throw new Error('socket hang up');
            if (opts.probe) opts.probe.pulled += Math.min(64 * KIB, tgz.length - off);
            yield tgz.subarray(off, off + 64 * KIB);
          }
        })(),
      );
      return addAbortSignal(signal, stream);
    },
  };
}

function observePuts(blob: PageBlobClient, hold?: Promise<void>): Array<{ offset: number; count: number }> {
  const puts: Array<{ offset: number; count: number }> = [];
  const real = blob.uploadPages.bind(blob);
  blob.uploadPages = async (body, offset, count, options) => {
    puts.push({ offset, count });
    if (hold) await hold;
    return real(body, offset, count, options);
  };
  return puts;
}

function overlaps(ranges: PageRange[], start: number, end: number): boolean {
  return ranges.some((r) => r.start < end && r.end > start);
}

/** Every non-zero 64 KiB run of `vhd` below `watermark` is inside the blob's listed ranges. */
function coversNonZeroBelow(vhd: Buffer, ranges: PageRange[], watermark: number): boolean {
  const zeros = Buffer.alloc(64 * KIB);
  for (let off = 0; off < watermark; off += 64 * KIB) {
    const run = vhd.subarray(off, Math.min(off + 64 * KIB, vhd.length));
    if (run.equals(zeros.subarray(0, run.length))) continue;
    if (!ranges.some((r) => r.start <= off && r.end >= off + run.length)) return false;
  }
  return true;
}

async function failureOf(
  p: Promise<unknown>,
): Promise<{ code: string; permanent: boolean; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isMirrorError(e)) return { code: e.code, permanent: e.permanent, message: e.message };
    throw e;
  }
  throw new Error('expected the transfer to fail');
}

describe('transferStemcell', () => {
  it('mirrors the VHD byte for byte, sending only non-zero runs, with checkpoints on the way', async () => {
    const f = makeStemcell({ vhdMiB: 32 });
    const blob = newBlob();
    const checkpoints: TransferCheckpoint[] = [];
    const truthful: boolean[] = [];
    const r = await transferStemcell({
      source: sourceOf(f),
      blob,
      checkpointBytes: 4 * MIB,
      onCheckpoint: async (cp) => {
        // Taken while the flow waits: what the checkpoint claims must already be in the blob.
        truthful.push(coversNonZeroBelow(f.vhd, await listPageRanges(blob), cp.watermark));
        checkpoints.push(cp);
      },
    });
    if (!r.done) throw new Error('expected done');
    expect((await blob.downloadToBuffer()).equals(f.vhd)).toBe(true);
    expect(r.vhdBytes).toBe(f.vhd.length);
    expect(r.sentBytes).toBeLessThanOrEqual(f.nonZeroRunBytes);
    expect(r.sentBytes).toBeGreaterThan(0);
    expect(r.archiveSha256).toBe(f.sha256);
    expect(r.imageSha1).toBe(f.imageSha1);
    expect(r.imageSha256).toBe(f.imageSha256);
    expect(r.manifest).toMatchObject({ name: f.series, version: f.version });
    expect(r.checkpoint).toMatchObject({
      watermark: f.vhd.length,
      downloadedBytes: f.tgz.length,
      uploadedBytes: f.nonZeroRunBytes,
      skippedZeroBytes: f.vhd.length - f.nonZeroRunBytes,
      vhdBytes: f.vhd.length,
    });
    const ranges = await listPageRanges(blob);
    expect(f.bigZeroGaps.length).toBeGreaterThan(1);
    for (const gap of f.bigZeroGaps) {
      // Runs are 64 KiB: the inside of every big gap stays unwritten.
      const inner = {
        start: Math.ceil(gap.start / (64 * KIB)) * 64 * KIB,
        end: Math.floor(gap.end / (64 * KIB)) * 64 * KIB,
      };
      expect(overlaps(ranges, inner.start, inner.end)).toBe(false);
    }
    expect(checkpoints.length).toBeGreaterThan(0);
    expect(truthful.every(Boolean)).toBe(true);
    for (let i = 1; i < checkpoints.length; i++) {
      expect(checkpoints[i]!.watermark - checkpoints[i - 1]!.watermark).toBeGreaterThanOrEqual(4 * MIB);
    }
  });

  it('takes stemcell.MF first, AppleDouble companions and pax headers in its stride', async () => {
    const f = makeStemcell({ vhdMiB: 8, mfFirst: true, appleDouble: true, pax: true });
    const blob = newBlob();
    const r = await transferStemcell({
      source: sourceOf(f, { expect: { sha256: undefined, sha1: f.sha1 } }),
      blob,
    });
    expect(r.done).toBe(true);
    expect((await blob.downloadToBuffer()).equals(f.vhd)).toBe(true);
  });

  it.each<[string, StemcellFixtureOptions, string]>([
    ['a dynamic VHD', { dynamicVhd: true }, 'VHD_INVALID'],
    ['a bad footer checksum', { badFooterChecksum: true }, 'VHD_INVALID'],
    ['a footer that disagrees with the entry size', { footerSizeMismatch: true }, 'VHD_INVALID'],
    ['no image entry', { missingImage: true }, 'ARCHIVE_INVALID'],
    ['a wrong stemcell.MF sha1', { wrongManifestSha1: true }, 'CHECKSUM_MISMATCH'],
    ['a truncated archive', { truncateAt: 0.7 }, 'ARCHIVE_INVALID'],
    ['two VHDs in image', { imageContent: 'twoVhds' }, 'ARCHIVE_INVALID'],
  ])('fails on %s and leaves no blob', async (_name, opts, code) => {
    const f = makeStemcell({ vhdMiB: 8, ...opts });
    const blob = newBlob();
    const e = await failureOf(transferStemcell({ source: sourceOf(f), blob }));
    expect(e.code).toBe(code);
    expect(e.permanent).toBe(true);
    expect(await blob.exists()).toBe(false);
  });

  it.each<[string, (f: StemcellFixture) => Partial<TransferSource>]>([
    ['sha256', () => ({ sha256: 'ab'.repeat(32) })],
    ['sha1 when no sha256 is published', () => ({ sha256: undefined, sha1: 'ab'.repeat(20) })],
    ['size', (f) => ({ size: f.tgz.length + 1 })],
  ])('fails when the download does not match its published %s, and leaves no blob', async (_n, expected) => {
    const f = makeStemcell({ vhdMiB: 8 });
    const blob = newBlob();
    const e = await failureOf(transferStemcell({ source: sourceOf(f, { expect: expected(f) }), blob }));
    expect(e.code).toBe('CHECKSUM_MISMATCH');
    expect(await blob.exists()).toBe(false);
  });

  it('keeps the blob on a transient download failure', async () => {
    const f = makeStemcell({ vhdMiB: 16 });
    const blob = newBlob();
    const e = await failureOf(transferStemcell({ source: sourceOf(f, { failAt: f.tgz.length / 2 }), blob }));
    expect(e).toMatchObject({ code: 'DOWNLOAD_FAILED', permanent: false });
    expect(e.message).toMatch(/socket hang up/);
    expect(await blob.exists()).toBe(true);
  });

  it('stops at the budget with a checkpoint, and a resumed pass uploads nothing below it and ends identical', async () => {
    const f = makeStemcell({ vhdMiB: 32, seed: 'resume' });
    const blob = newBlob();
    const budget = new AbortController();
    const first = await transferStemcell({
      source: sourceOf(f),
      blob,
      signal: budget.signal,
      checkpointBytes: MIB,
      onCheckpoint: async (cp) => {
        if (cp.watermark >= 12 * MIB) budget.abort();
      },
    });
    expect(first.done).toBe(false);
    const cp = first.checkpoint;
    expect(cp.watermark).toBeGreaterThanOrEqual(12 * MIB);
    expect(cp.watermark).toBeLessThan(f.vhd.length);
    expect(cp.vhdBytes).toBe(f.vhd.length);
    expect(cp.downloadedBytes).toBeLessThan(f.tgz.length);
    // The checkpoint tells the truth: every non-zero run below it is in the blob.
    expect(coversNonZeroBelow(f.vhd, await listPageRanges(blob), cp.watermark)).toBe(true);

    const puts = observePuts(blob);
    const second = await transferStemcell({ source: sourceOf(f), blob, resume: cp });
    if (!second.done) throw new Error('expected done');
    for (const put of puts) expect(put.offset).toBeGreaterThanOrEqual(cp.watermark);
    expect(second.sentBytes).toBeLessThanOrEqual(nonZeroRunBytes(f.vhd.subarray(cp.watermark)) + 64 * KIB);
    expect(second.checkpoint.uploadedBytes).toBe(f.nonZeroRunBytes);
    expect((await blob.downloadToBuffer()).equals(f.vhd)).toBe(true);
  });

  it('checkpoints with the VHD’s first bytes, so a pass stopped while an early Put Page lags resumes from the blob', async () => {
    const f = makeStemcell({ vhdMiB: 32, seed: 'lagging' });
    const blob = newBlob();
    const budget = new AbortController();
    const checkpoints: TransferCheckpoint[] = [];
    // The first Put Page hangs (a slow request) until the pass is stopped; the ones after it go on.
    let calls = 0;
    let done = 0;
    let putBytes = 0;
    const real = blob.uploadPages.bind(blob);
    const stopped = new Promise<void>((r) => budget.signal.addEventListener('abort', () => r()));
    blob.uploadPages = async (body, offset, count, options) => {
      const first = calls++ === 0;
      if (first) await stopped;
      const res = await real(body, offset, count, options);
      putBytes += count;
      if (!first && ++done === 6) budget.abort();
      return res;
    };
    const first = await transferStemcell({
      source: sourceOf(f),
      blob,
      signal: budget.signal,
      checkpointBytes: MIB,
      onCheckpoint: async (cp) => {
        checkpoints.push(cp);
      },
    });
    expect(first.done).toBe(false);
    // The lagging request held the watermark at its start, so no later checkpoint could be taken;
    // the first one, taken as the VHD began, already names the VHD.
    expect(checkpoints).toHaveLength(1);
    expect(checkpoints[0]).toMatchObject({ watermark: 0, vhdBytes: f.vhd.length });
    const present = await listPageRanges(blob);
    const presentBytes = present.reduce((n, r) => n + r.end - r.start, 0);
    // Seven Put Pages landed (the lagging one finished once the pass stopped): all in the blob.
    expect(calls).toBeGreaterThanOrEqual(7);
    expect(presentBytes).toBe(putBytes);

    const puts = observePuts(blob);
    const second = await transferStemcell({ source: sourceOf(f), blob, resume: checkpoints[0] });
    if (!second.done) throw new Error('expected done');
    for (const put of puts) expect(overlaps(present, put.offset, put.offset + put.count)).toBe(false);
    expect(second.sentBytes).toBe(f.nonZeroRunBytes - presentBytes);
    expect((await blob.downloadToBuffer()).equals(f.vhd)).toBe(true);
  });

  it('returns done:false at once when the budget is already spent', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    const budget = new AbortController();
    budget.abort();
    const resume = {
      watermark: MIB,
      downloadedBytes: 5,
      uploadedBytes: 7,
      skippedZeroBytes: 9,
      vhdBytes: f.vhd.length,
      sentBytes: 0,
    };
    const r = await transferStemcell({ source: sourceOf(f), blob: newBlob(), signal: budget.signal, resume });
    expect(r).toEqual({ done: false, checkpoint: { ...resume, downloadedBytes: 0 } });
  });

  it('does not read the download far ahead of a slow blob', async () => {
    const f = makeStemcell({ vhdMiB: 32, seed: 'slow' });
    const blob = newBlob();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const puts = observePuts(blob, held);
    const probe = { pulled: 0 };
    const done = transferStemcell({ source: sourceOf(f, { probe }), blob, parallelism: 2 });
    for (let last = -1; last !== probe.pulled || puts.length < 2;) {
      last = probe.pulled;
      await sleep(50);
    }
    const stalledAt = probe.pulled;
    release();
    const r = await done;
    expect(r.done).toBe(true);
    expect(puts.length).toBeGreaterThan(2);
    expect(stalledAt).toBeLessThan(f.tgz.length / 2);
    expect(probe.pulled).toBe(f.tgz.length);
  });
});

/**
 * Transpiles transfer.ts and the modules it imports (not the test support) to CommonJS in a
 * scratch folder, so a child process can run them under Node's permission model.
 */
function transpileTransfer(outDir: string): string {
  const srcDir = resolve(__dirname, '../../../src/lib');
  const pending = ['mirror/transfer-pass'];
  const done = new Set<string>();
  while (pending.length > 0) {
    const name = pending.pop()!;
    if (done.has(name)) continue;
    done.add(name);
    const source = readFileSync(join(srcDir, `${name}.ts`), 'utf8');
    for (const m of source.matchAll(/from '(\.\.?\/[a-z/-]+)'/g)) {
      pending.push(posix.join(posix.dirname(name), m[1]!));
    }
    const out = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    });
    mkdirSync(join(outDir, dirname(name)), { recursive: true });
    writeFileSync(join(outDir, `${name}.js`), out.outputText);
  }
  return join(outDir, 'mirror', 'transfer-pass.js');
}

const DRIVER = `
const fs = require('node:fs');
const os = require('node:os');
const { BlobServiceClient } = require('@azure/storage-blob');
const { transferStemcell } = require(process.argv[2]);
let probe = 'written';
try { fs.writeFileSync(os.tmpdir() + '/probe', 'x'); } catch (e) { probe = e.code; }
const [cs, container, name, sha256, size] = process.argv.slice(3);
const blob = BlobServiceClient.fromConnectionString(cs).getContainerClient(container).getPageBlobClient(name);
transferStemcell({ source: { open: () => process.stdin, sha256, size: Number(size) }, blob }).then(
  (r) => console.log(JSON.stringify({ probe, done: r.done, sentBytes: r.sentBytes })),
  (e) => { console.log(JSON.stringify({ probe, error: String(e) })); process.exitCode = 1; },
);
`;

describe('transferStemcell without a disk', () => {
  it('completes in a process that may not write any file', async () => {
    const f = makeStemcell({ vhdMiB: 16, seed: 'no-disk' });
    const scratch = mkdtempSync(join(tmpdir(), 'basm-transfer-'));
    try {
      const entry = transpileTransfer(scratch);
      writeFileSync(join(scratch, 'driver.js'), DRIVER);
      const blob = newBlob();
      const root = resolve(__dirname, '../../..');
      const child = spawnTied(
        process.execPath,
        [
          // Node 20 calls the permission model experimental; later releases drop the prefix.
          process.allowedNodeEnvironmentFlags.has('--permission')
            ? '--permission'
            : '--experimental-permission',
          '--allow-fs-read=*',
          join(scratch, 'driver.js'),
          entry,
          bed.connectionString,
          bed.container.containerName,
          blob.name,
          f.sha256,
          String(f.tgz.length),
        ],
        { env: { ...process.env, NODE_PATH: join(root, 'node_modules') }, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      child.stdin!.end(f.tgz);
      const code = await new Promise<number | null>((r) => child.on('close', r));
      expect(err).not.toMatch(/Error:/);
      expect(code).toBe(0);
      const result = JSON.parse(out.trim().split('\n').pop()!) as { probe: string; done: boolean };
      // The sandbox really refuses writes: a temp file anywhere in the transfer would have failed it.
      expect(result.probe).toBe('ERR_ACCESS_DENIED');
      expect(result.done).toBe(true);
      expect((await blob.downloadToBuffer()).equals(f.vhd)).toBe(true);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});
