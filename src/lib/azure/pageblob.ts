/**
 * The sink of the VHD bytes: a Writable that puts only the non-zero parts into a page blob (a new
 * page blob reads as zeros), coalesced into Put Page calls of at most 4 MiB, with a bounded number
 * in flight. The write callback is held while the window is full, so a slow blob slows the download.
 */
import { Writable } from 'node:stream';
import type { PageBlobClient } from '@azure/storage-blob';
import { hasStatus, storageError } from '../core/azure-errors';
import { MirrorError } from '../core/errors';

/** Put Page requests in flight at once (the benchmark's upload floor uses the same). */
export const DEFAULT_PARALLELISM = 8;

/** A byte range of a page blob, `end` exclusive. */
export interface PageRange {
  start: number;
  end: number;
}

export interface PageWriterProgress {
  /** Every non-zero range below this offset is known to be in the blob. */
  watermark: number;
  /** Non-zero VHD bytes known in the blob, including those found already present on resume. */
  uploadedBytes: number;
  skippedZeroBytes: number;
  /** Bytes actually sent with Put Page by this writer. */
  sentBytes: number;
  /** Bytes received so far. */
  position: number;
}

export interface SparsePageWriterOptions {
  blob: PageBlobClient;
  /** The exact size of the blob (the VHD file, footer included); a multiple of 512. */
  size: number;
  resume?: { watermark: number; existingRanges: PageRange[] };
  parallelism?: number;
  maxPutBytes?: number;
  zeroRun?: number;
  onProgress?: (p: PageWriterProgress) => void;
}

export const MAX_PUT_BYTES = 4 * 1024 * 1024;
/** All-zero runs of this size are skipped, not sent (DESIGN: at most 64 KiB granularity). */
export const DEFAULT_ZERO_RUN = 64 * 1024;
const PAGE = 512;
const FOOTER = 512;

interface Op {
  start: number;
  done: boolean;
}

/** The blob's written ranges, sorted and merged (Azurite lists adjacent ranges separately). */
export async function listPageRanges(blob: PageBlobClient): Promise<PageRange[]> {
  const raw: PageRange[] = [];
  for await (const r of blob.listPageRanges()) {
    if (r.start !== undefined && r.end !== undefined) raw.push({ start: r.start, end: r.end + 1 });
  }
  return mergeRanges(raw);
}

export function mergeRanges(ranges: readonly PageRange[]): PageRange[] {
  const sorted = [...ranges].sort((a, b) => a.start - b.start);
  const out: PageRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) last.end = Math.max(last.end, r.end);
    else out.push({ ...r });
  }
  return out;
}

/** Index of the last range starting at or before `offset`, or -1. Ranges are merged and sorted. */
function rangeAt(ranges: readonly PageRange[], offset: number): number {
  let lo = 0;
  let hi = ranges.length - 1;
  let found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if ((ranges[mid]?.start ?? Infinity) <= offset) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return found;
}

function covers(ranges: readonly PageRange[], start: number, end: number): boolean {
  const r = ranges[rangeAt(ranges, start)];
  return r !== undefined && r.end >= end;
}

function overlaps(ranges: readonly PageRange[], start: number, end: number): boolean {
  const i = rangeAt(ranges, end - 1);
  const r = ranges[i];
  return r !== undefined && r.end > start;
}

export class SparsePageWriter extends Writable {
  private readonly blob: PageBlobClient;
  private readonly size: number;
  private readonly parallelism: number;
  private readonly maxPut: number;
  private readonly zeroRun: number;
  private readonly zeros: Buffer;
  private readonly onProgress: ((p: PageWriterProgress) => void) | undefined;
  private resume: { watermark: number; existingRanges: PageRange[] } | undefined;

  /** The run being filled when chunks do not end on a run boundary. */
  private readonly run: Buffer;
  private runFill = 0;
  /** Offset of the first byte not yet classified (the start of `run`). */
  private runStart = 0;
  private pending: { start: number; buf: Buffer; len: number } | undefined;
  private readonly pool: Buffer[] = [];
  private readonly ops: Op[] = [];
  private readonly settling = new Set<Promise<void>>();
  private active = 0;
  private slotWaiters: Array<() => void> = [];
  private failure: Error | undefined;
  private readonly footerBuf = Buffer.alloc(FOOTER);

  private position = 0;
  private uploadedBytes = 0;
  private skippedZeroBytes = 0;
  private sentBytes = 0;
  private resumedBlob = false;

  constructor(opts: SparsePageWriterOptions) {
    // Checked before super(): once constructed, the stream would start creating the blob.
    const maxPut = opts.maxPutBytes ?? MAX_PUT_BYTES;
    const zeroRun = opts.zeroRun ?? DEFAULT_ZERO_RUN;
    if (!Number.isSafeInteger(opts.size) || opts.size < FOOTER || opts.size % PAGE !== 0) {
      throw new MirrorError('VHD_INVALID', `A page blob's size must be a multiple of 512, got ${opts.size}`);
    }
    if (maxPut > MAX_PUT_BYTES || maxPut % PAGE !== 0 || maxPut <= 0) {
      throw new RangeError(`maxPutBytes must be a multiple of 512 up to ${MAX_PUT_BYTES}`);
    }
    if (zeroRun % PAGE !== 0 || zeroRun <= 0 || maxPut % zeroRun !== 0) {
      throw new RangeError('zeroRun must be a multiple of 512 that divides maxPutBytes');
    }
    super({ highWaterMark: 1024 * 1024 });
    this.blob = opts.blob;
    this.size = opts.size;
    this.parallelism = Math.max(1, opts.parallelism ?? DEFAULT_PARALLELISM);
    this.maxPut = maxPut;
    this.zeroRun = zeroRun;
    this.zeros = Buffer.alloc(zeroRun);
    this.run = Buffer.allocUnsafe(zeroRun);
    this.onProgress = opts.onProgress;
    this.resume = opts.resume && { ...opts.resume, existingRanges: mergeRanges(opts.resume.existingRanges) };
  }

  /** True when an existing blob of the right size was kept for a resume. */
  get resumed(): boolean {
    return this.resumedBlob;
  }

  progress(): PageWriterProgress {
    return {
      watermark: this.watermark(),
      uploadedBytes: this.uploadedBytes,
      skippedZeroBytes: this.skippedZeroBytes,
      sentBytes: this.sentBytes,
      position: this.position,
    };
  }

  /** The last 512 bytes written (the VHD footer), complete once the writer has finished. */
  footer(): Buffer {
    return Buffer.from(this.footerBuf);
  }

  /** Resolves once no Put Page is in flight (after an abort, before reading the checkpoint). */
  async settled(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
  }

  private watermark(): number {
    while (this.ops[0]?.done) this.ops.shift();
    let w = this.runStart;
    if (this.pending) w = Math.min(w, this.pending.start);
    const oldest = this.ops[0];
    if (oldest) w = Math.min(w, oldest.start);
    return w;
  }

  override _construct(cb: (e?: Error | null) => void): void {
    this.prepare().then(() => cb(), cb);
  }

  private async prepare(): Promise<void> {
    if (this.resume) {
      try {
        const props = await this.blob.getProperties();
        if (props.blobType === 'PageBlob' && props.contentLength === this.size) {
          this.resumedBlob = true;
          return;
        }
      } catch (e) {
        if (!hasStatus(e, 404)) throw storageError(e, 'Reading the staged blob failed');
      }
      // Whatever was there is gone once the blob is created anew: nothing can be skipped.
      this.resume = undefined;
    }
    try {
      // Create replaces an existing blob, so no stale page survives in a range this pass skips.
      await this.blob.create(this.size);
    } catch (e) {
      throw storageError(e, 'Creating the page blob failed');
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.consume(chunk).then(() => cb(), cb);
  }

  override _final(cb: (e?: Error | null) => void): void {
    this.finish().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    // In-flight Put Pages finish (they cannot be recalled) so the watermark is true afterwards;
    // bytes gathered but never sent hold the watermark where they start.
    if (this.pending) this.ops.push({ start: this.pending.start, done: false });
    this.pending = undefined;
    this.settled().then(
      () => cb(err),
      () => cb(err),
    );
  }

  private async consume(chunk: Buffer): Promise<void> {
    if (this.position + chunk.length > this.size) {
      throw new MirrorError('VHD_INVALID', `The VHD stream is longer than its declared ${this.size} bytes`);
    }
    this.captureFooter(chunk);
    this.position += chunk.length;
    let off = 0;
    while (off < chunk.length) {
      if (this.failure) throw this.failure;
      if (this.runFill === 0 && chunk.length - off >= this.zeroRun) {
        // Whole runs straight from the chunk, without a copy.
        await this.classify(chunk.subarray(off, off + this.zeroRun));
        off += this.zeroRun;
        continue;
      }
      const n = Math.min(this.zeroRun - this.runFill, chunk.length - off);
      chunk.copy(this.run, this.runFill, off, off + n);
      this.runFill += n;
      off += n;
      if (this.runFill === this.zeroRun) {
        this.runFill = 0;
        await this.classify(this.run);
      }
    }
  }

  private async finish(): Promise<void> {
    if (this.position !== this.size) {
      throw new MirrorError('VHD_INVALID', `The VHD stream ended at ${this.position} of ${this.size} bytes`);
    }
    if (this.runFill > 0) {
      const n = this.runFill;
      this.runFill = 0;
      await this.classify(this.run.subarray(0, n));
    }
    await this.flush();
    await this.settled();
    if (this.failure) throw this.failure;
    this.onProgress?.(this.progress());
  }

  private captureFooter(chunk: Buffer): void {
    const footerStart = this.size - FOOTER;
    const end = this.position + chunk.length;
    if (end <= footerStart) return;
    const from = Math.max(this.position, footerStart);
    chunk.copy(this.footerBuf, from - footerStart, from - this.position, chunk.length);
  }

  /** Decides what one run (`zeroRun` bytes, or the shorter last one) becomes. */
  private async classify(data: Buffer): Promise<void> {
    const start = this.runStart;
    const end = start + data.length;
    const ranges = this.resume?.existingRanges;
    const zero = data.equals(data.length === this.zeroRun ? this.zeros : this.zeros.subarray(0, data.length));
    if (zero) {
      this.skippedZeroBytes += data.length;
      await this.flush();
      this.runStart = end;
      // A kept blob may hold stale pages where this VHD has zeros: clear them, never leave them.
      if (ranges && overlaps(ranges, start, end)) await this.dispatch(start, end, undefined);
      return;
    }
    // Put Page is atomic, so a listed range holds what an earlier pass of this job wrote there:
    // below the watermark and beyond it, a run already in the blob is not sent again.
    if (this.resume && ranges && covers(ranges, start, end)) {
      this.uploadedBytes += data.length;
      await this.flush();
      this.runStart = end;
      return;
    }
    let p = this.pending;
    if (p && (p.start + p.len !== start || p.len + data.length > this.maxPut)) {
      await this.flush();
      p = undefined;
    }
    if (!p) {
      p = { start, buf: this.pool.pop() ?? Buffer.allocUnsafe(this.maxPut), len: 0 };
      this.pending = p;
    }
    data.copy(p.buf, p.len);
    p.len += data.length;
    this.runStart = end;
    if (p.len === this.maxPut) await this.flush();
  }

  private async flush(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    await this.dispatch(p.start, p.start + p.len, p.buf);
  }

  /** Starts one Put Page (or Clear Pages without a buffer) once a slot is free. */
  private async dispatch(start: number, end: number, buf: Buffer | undefined): Promise<void> {
    // Counted before it waits for a slot, so the watermark never passes bytes not yet sent.
    const op: Op = { start, done: false };
    this.ops.push(op);
    while (this.active >= this.parallelism) await new Promise<void>((r) => this.slotWaiters.push(r));
    if (this.failure) throw this.failure;
    // After destroy() (an abort) nothing new starts; what is in flight still finishes.
    if (this.destroyed) throw new Error('The page writer was destroyed');
    this.active++;
    const len = end - start;
    const request = buf
      ? this.blob.uploadPages(buf.subarray(0, len), start, len)
      : this.blob.clearPages(start, len);
    const settle = request.then(
      () => {
        op.done = true;
        if (buf) {
          this.sentBytes += len;
          this.uploadedBytes += len;
        }
      },
      (e: unknown) => {
        this.failure ??= storageError(e, `${buf ? 'Put Page' : 'Clear Pages'} at ${start}+${len} failed`);
      },
    );
    const tracked: Promise<void> = settle.finally(() => {
      this.settling.delete(tracked);
      this.active--;
      if (buf && buf.length === this.maxPut && this.pool.length < this.parallelism) this.pool.push(buf);
      const waiters = this.slotWaiters;
      this.slotWaiters = [];
      for (const w of waiters) w();
      this.onProgress?.(this.progress());
    });
    this.settling.add(tracked);
  }
}
