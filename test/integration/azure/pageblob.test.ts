import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PageBlobClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { useBlobContainer } from '../../support/blobs';
import { isMirrorError } from '../../../src/lib/core/errors';
import {
  listPageRanges,
  mergeRanges,
  SparsePageWriter,
  type PageRange,
} from '../../../src/lib/azure/pageblob';
import { makeVhd, nonZeroRunBytes } from '../../support/stemcell-fixture';

const KIB = 1024;
const MIB = 1024 * KIB;

const bed = useBlobContainer('pages', 'blob');
const newBlob = (): PageBlobClient => bed.newBlob();

/** Chunks of uneven sizes, so runs and Put Pages never line up with them. */
function unevenChunks(buf: Buffer): Readable {
  const sizes = [1000, 70_000, 512, 333_333, 65_536, 4097];
  const parts: Buffer[] = [];
  for (let off = 0, i = 0; off < buf.length; i++) {
    const len = sizes[i % sizes.length]!;
    parts.push(buf.subarray(off, off + len));
    off += len;
  }
  return Readable.from(parts);
}

interface Put {
  offset: number;
  count: number;
}

/** Records each Put Page the writer makes on the real client, and how many overlap. */
function observe(blob: PageBlobClient, hold?: Promise<void>): { puts: Put[]; maxInFlight: () => number } {
  const puts: Put[] = [];
  let inFlight = 0;
  let max = 0;
  const real = blob.uploadPages.bind(blob);
  blob.uploadPages = async (body, offset, count, options) => {
    puts.push({ offset, count });
    max = Math.max(max, ++inFlight);
    try {
      if (hold) await hold;
      return await real(body, offset, count, options);
    } finally {
      inFlight--;
    }
  };
  return { puts, maxInFlight: () => max };
}

async function download(blob: PageBlobClient): Promise<Buffer> {
  return blob.downloadToBuffer();
}

function covered(ranges: PageRange[], start: number, end: number): boolean {
  return ranges.some((r) => r.start < end && r.end > start);
}

function failureOf(e: unknown): { code: string; permanent: boolean } {
  if (!isMirrorError(e)) throw e;
  return { code: e.code, permanent: e.permanent };
}

describe('SparsePageWriter', () => {
  it('writes the non-zero runs only, in aligned Put Pages of at most 4 MiB, and reads back equal', async () => {
    const vhd = makeVhd({ vhdMiB: 16, seed: 'pages' });
    const blob = newBlob();
    const seen = observe(blob);
    const writer = new SparsePageWriter({ blob, size: vhd.length, parallelism: 3 });
    await pipeline(unevenChunks(vhd), writer);

    expect((await download(blob)).equals(vhd)).toBe(true);
    const p = writer.progress();
    expect(p.position).toBe(vhd.length);
    expect(p.watermark).toBe(vhd.length);
    expect(p.sentBytes).toBe(nonZeroRunBytes(vhd));
    expect(p.uploadedBytes).toBe(p.sentBytes);
    expect(p.skippedZeroBytes).toBe(vhd.length - p.sentBytes);
    expect(writer.footer().equals(vhd.subarray(vhd.length - 512))).toBe(true);
    for (const put of seen.puts) {
      expect(put.offset % 512).toBe(0);
      expect(put.count % 512).toBe(0);
      expect(put.count).toBeLessThanOrEqual(4 * MIB);
    }
    expect(seen.puts.some((put) => put.count === 4 * MIB)).toBe(true);
    expect(seen.maxInFlight()).toBeLessThanOrEqual(3);

    const ranges = await listPageRanges(blob);
    const sum = ranges.reduce((s, r) => s + r.end - r.start, 0);
    expect(sum).toBe(p.sentBytes);
    // The long zero stretch between the first regions and the 4 MiB boundary was never written.
    expect(covered(ranges, 192 * KIB, 3 * MIB)).toBe(false);
  });

  it('keeps at most `parallelism` Put Pages in flight and holds the writer while they are', async () => {
    const data = Buffer.concat(Array.from({ length: 64 }, (_, i) => Buffer.alloc(256 * KIB, i + 1)));
    const blob = newBlob();
    let release!: () => void;
    const hold = new Promise<void>((r) => (release = r));
    const seen = observe(blob, hold);
    let pulled = 0;
    const source = Readable.from(
      (function* () {
        for (let off = 0; off < data.length; off += 64 * KIB) {
          pulled += 64 * KIB;
          yield data.subarray(off, off + 64 * KIB);
        }
      })(),
    );
    const writer = new SparsePageWriter({ blob, size: data.length, parallelism: 2, maxPutBytes: 256 * KIB });
    const done = pipeline(source, writer);
    for (let last = -1; last !== pulled;) {
      last = pulled;
      await sleep(50);
    }
    // Two Put Pages held, one pending buffer, the writable's own buffer: far from the 16 MiB input.
    expect(seen.maxInFlight()).toBe(2);
    expect(pulled).toBeLessThan(4 * MIB);
    release();
    await done;
    expect(seen.maxInFlight()).toBe(2);
    expect((await download(blob)).equals(data)).toBe(true);
  });

  it('on resume sends only what the blob lacks, below or above the watermark, clears stale pages, ends equal', async () => {
    const vhd = makeVhd({ vhdMiB: 16, seed: 'resume' });
    const blob = newBlob();
    await pipeline(unevenChunks(vhd), new SparsePageWriter({ blob, size: vhd.length }));
    // A stale page where this VHD has zeros, as a different earlier pass could leave.
    await blob.clearPages(2 * MIB, 512);
    await blob.uploadPages(Buffer.alloc(512, 0xee), 2 * MIB, 512);
    const watermark = 9 * MIB;
    // Above the watermark the kill came before these pages were written.
    const lostStart = 12 * MIB;
    const lostEnd = vhd.length - 512;
    await blob.clearPages(lostStart, lostEnd - lostStart);
    const existingRanges = await listPageRanges(blob);
    const seen = observe(blob);
    const writer = new SparsePageWriter({ blob, size: vhd.length, resume: { watermark, existingRanges } });
    await pipeline(unevenChunks(vhd), writer);

    expect(writer.resumed).toBe(true);
    const lost = nonZeroRunBytes(vhd.subarray(lostStart, lostEnd));
    expect(lost).toBeGreaterThan(0);
    expect(seen.puts.length).toBeGreaterThan(0);
    for (const put of seen.puts) expect(put.offset).toBeGreaterThanOrEqual(lostStart);
    expect(writer.progress().sentBytes).toBe(lost);
    expect(writer.progress().uploadedBytes).toBe(nonZeroRunBytes(vhd));
    expect((await download(blob)).equals(vhd)).toBe(true);
  });

  it('re-sends what the blob does not hold even below the watermark', async () => {
    const vhd = makeVhd({ vhdMiB: 8, seed: 'holes' });
    const blob = newBlob();
    await pipeline(unevenChunks(vhd), new SparsePageWriter({ blob, size: vhd.length }));
    await blob.clearPages(0, 64 * KIB); // lost, whatever the checkpoint says
    const writer = new SparsePageWriter({
      blob,
      size: vhd.length,
      resume: { watermark: vhd.length, existingRanges: await listPageRanges(blob) },
    });
    await pipeline(unevenChunks(vhd), writer);
    expect(writer.progress().sentBytes).toBe(64 * KIB);
    expect((await download(blob)).equals(vhd)).toBe(true);
  });

  it('creates the blob anew when the existing one has another size, and then skips nothing', async () => {
    const vhd = makeVhd({ vhdMiB: 8, seed: 'resize' });
    const blob = newBlob();
    await blob.create(vhd.length + MIB);
    await blob.uploadPages(Buffer.alloc(512, 1), 0, 512);
    const writer = new SparsePageWriter({
      blob,
      size: vhd.length,
      resume: { watermark: vhd.length, existingRanges: [{ start: 0, end: vhd.length }] },
    });
    await pipeline(unevenChunks(vhd), writer);
    expect(writer.resumed).toBe(false);
    expect(writer.progress().sentBytes).toBe(nonZeroRunBytes(vhd));
    expect((await blob.getProperties()).contentLength).toBe(vhd.length);
    expect((await download(blob)).equals(vhd)).toBe(true);
  });

  it('surfaces a failed Put Page as a storage error', async () => {
    const vhd = makeVhd({ vhdMiB: 8, seed: 'lease' });
    const blob = newBlob();
    let resumeFeed!: () => void;
    const fed = new Promise<void>((r) => (resumeFeed = r));
    const source = Readable.from(
      (async function* () {
        yield vhd.subarray(0, MIB);
        await fed;
        yield vhd.subarray(MIB);
      })(),
    );
    const writer = new SparsePageWriter({ blob, size: vhd.length, parallelism: 1 });
    const done = pipeline(source, writer);
    while (!(await blob.exists())) await sleep(10);
    // Someone else leases the blob: every Put Page without the lease id is refused (412).
    await blob.getBlobLeaseClient().acquireLease(-1);
    resumeFeed();
    const e = failureOf(
      await done.then(
        () => undefined,
        (err: unknown) => err,
      ),
    );
    expect(e).toEqual({ code: 'STORAGE_FAILED', permanent: false });
  });

  it('refuses a stream longer or shorter than the declared size', async () => {
    const vhd = makeVhd({ vhdMiB: 8, seed: 'len' });
    const long = pipeline(
      Readable.from([vhd, Buffer.alloc(512)]),
      new SparsePageWriter({ blob: newBlob(), size: vhd.length }),
    );
    await expect(long).rejects.toMatchObject({ code: 'VHD_INVALID' });
    const short = pipeline(
      Readable.from([vhd.subarray(0, vhd.length - 512)]),
      new SparsePageWriter({ blob: newBlob(), size: vhd.length }),
    );
    await expect(short).rejects.toMatchObject({ code: 'VHD_INVALID' });
    expect(() => new SparsePageWriter({ blob: newBlob(), size: 1000 })).toThrow(/multiple of 512/);
    expect(() => new SparsePageWriter({ blob: newBlob(), size: 1024, maxPutBytes: 8 * MIB })).toThrow(
      RangeError,
    );
  });
});

describe('listPageRanges', () => {
  it('merges the adjacent ranges Azurite lists separately', async () => {
    const blob = newBlob();
    await blob.create(MIB);
    await blob.uploadPages(Buffer.alloc(512, 1), 0, 512);
    await blob.uploadPages(Buffer.alloc(512, 1), 512, 512);
    await blob.uploadPages(Buffer.alloc(1024, 1), 4096, 1024);
    expect(await listPageRanges(blob)).toEqual([
      { start: 0, end: 1024 },
      { start: 4096, end: 5120 },
    ]);
    expect(
      mergeRanges([
        { start: 10, end: 20 },
        { start: 0, end: 10 },
        { start: 15, end: 30 },
      ]),
    ).toEqual([{ start: 0, end: 30 }]);
  });
});
