/**
 * The compressed download, kept as it arrives in a staging block blob, so that a pass after a
 * crash or a spent time budget reads what it already has from storage and fetches only the rest
 * from bosh.io. Blocks are committed at checkpoints; the blob is deleted once the job no longer
 * needs it. Integrity rests on the whole-archive checksum the transfer verifies at the end.
 */
import { Readable } from 'node:stream';
import type { BlockBlobClient } from '@azure/storage-blob';
import { hasStatus, storageError } from '../core/azure-errors';
import type { Logger } from '../core/log';

export interface DownloadCacheOptions {
  blob: BlockBlobClient;
  /** The archive from byte `start` on (bosh.io with a Range request). */
  fetch(start: number, signal: AbortSignal): Readable;
  /** Archive size, when bosh.io declares it. */
  size: number | undefined;
  /** Bytes per staged block (8 MiB). */
  blockBytes?: number;
  /** False: read what is cached, but keep nothing new (the first pass of a job, by setting). */
  record?: boolean;
  log: Logger;
}

const BLOCK_BYTES = 8 * 1024 * 1024;

function blockId(index: number): string {
  // Block ids of one blob must all have the same length.
  return Buffer.from(`block-${String(index).padStart(8, '0')}`).toString('base64');
}

export class DownloadCache {
  private committed: string[] = [];
  private committedBytes = 0;
  /** Staged in storage, not yet committed: [id, bytes]. */
  private staged: Array<[string, number]> = [];
  private readonly blockBytes: number;
  private running: Promise<void> = Promise.resolve();
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly o: DownloadCacheOptions) {
    this.blockBytes = o.blockBytes ?? BLOCK_BYTES;
  }

  /** Reads what earlier passes committed; returns its length. */
  async load(): Promise<number> {
    try {
      const list = await this.o.blob.getBlockList('committed');
      const blocks = list.committedBlocks ?? [];
      // Only a prefix of well-formed, consecutive blocks is trusted.
      this.committed = [];
      this.committedBytes = 0;
      for (const [i, b] of blocks.entries()) {
        if (b.name !== blockId(i)) break;
        this.committed.push(b.name);
        this.committedBytes += b.size;
      }
    } catch (e) {
      if (!hasStatus(e, 404)) throw storageError(e, 'Reading the download cache failed');
    }
    if (this.o.size !== undefined && this.committedBytes > this.o.size) this.committedBytes = 0;
    return this.committedBytes;
  }

  /** The whole archive: committed bytes from storage, then the rest from bosh.io, kept as it passes. */
  open(signal: AbortSignal): Readable {
    if (this.committedBytes === 0 && this.o.record === false) {
      // Nothing to read from storage, nothing to keep: bosh.io's own stream, without a hop that
      // would copy every chunk (an async iterator joins whatever is buffered) and feed the GC.
      this.running = Promise.resolve();
      return this.o.fetch(0, signal);
    }
    return Readable.from(this.chunks(signal), { objectMode: false, highWaterMark: 1024 * 1024 });
  }

  /** Resolves once the stream of the last `open` has staged all it will stage. */
  settled(): Promise<void> {
    return this.running;
  }

  private async *chunks(signal: AbortSignal): AsyncGenerator<Buffer> {
    // Set when reading starts: a stream destroyed before its first read stages nothing.
    let finished!: () => void;
    this.running = new Promise((r) => (finished = r));
    try {
      yield* this.read(signal);
    } finally {
      finished();
    }
  }

  private async *read(signal: AbortSignal): AsyncGenerator<Buffer> {
    const cached = this.committedBytes;
    if (cached > 0) {
      try {
        const r = await this.o.blob.download(0, cached, { abortSignal: signal });
        for await (const chunk of r.readableStreamBody as AsyncIterable<Buffer>) yield chunk;
      } catch (e) {
        throw storageError(e, 'Reading the cached download failed');
      }
    }
    if (this.o.size !== undefined && cached >= this.o.size) return;
    if (this.o.record === false) {
      yield* this.o.fetch(cached, signal) as AsyncIterable<Buffer>;
      return;
    }
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let index = this.committed.length;
    const stage = async (): Promise<void> => {
      const data = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const id = blockId(index++);
      await this.serially(async () => {
        await this.o.blob.stageBlock(id, data, data.length).catch((e: unknown) => {
          throw storageError(e, 'Staging a block of the download cache failed');
        });
        this.staged.push([id, data.length]);
      });
    };
    try {
      for await (const chunk of this.o.fetch(cached, signal) as AsyncIterable<Buffer>) {
        pending.push(chunk);
        pendingBytes += chunk.length;
        // Staging is awaited: the download waits for storage, memory stays at one block.
        if (pendingBytes >= this.blockBytes) await stage();
        yield chunk;
      }
    } finally {
      // Stopped by the time budget or a failure: keep the bytes fetched so far too.
      if (pendingBytes > 0)
        await stage().catch((e: unknown) => this.o.log.warn('download-cache.stage-failed', { error: e }));
    }
  }

  /** Makes the staged blocks part of the blob (at a checkpoint, or before giving the job up). */
  commit(): Promise<void> {
    return this.serially(() => this.commitNow());
  }

  /** After the pass ended: waits for the last block of the stream, then commits. */
  async commitAll(): Promise<void> {
    await this.settled();
    await this.commit();
  }

  /**
   * Stage and commit never overlap: a commit drops every uncommitted block it does not list, so a
   * block staged while a commit is on its way would be lost and break the next commit.
   */
  private serially(op: () => Promise<void>): Promise<void> {
    const next = this.queue.then(op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async commitNow(): Promise<void> {
    if (this.staged.length === 0) return;
    const staged = this.staged;
    this.staged = [];
    const ids = [...this.committed, ...staged.map(([id]) => id)];
    await this.o.blob.commitBlockList(ids).catch((e: unknown) => {
      throw storageError(e, 'Committing the download cache failed');
    });
    this.committed = ids;
    this.committedBytes += staged.reduce((n, [, bytes]) => n + bytes, 0);
    this.o.log.info('download-cache.committed', { cachedBytes: this.committedBytes });
  }

  async discard(): Promise<void> {
    this.staged = [];
    await this.o.blob.deleteIfExists().catch((e: unknown) => {
      throw storageError(e, 'Deleting the download cache failed');
    });
  }
}
