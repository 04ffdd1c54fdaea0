/**
 * The two floors of DESIGN §7, each measured alone: D (the archive through Node's zlib and a tar
 * parser, nothing uploaded) and U (the VHD's non-zero ranges put into Azurite from memory by plain
 * keep-alive `node:http` PUTs to a SAS URL, chunked and parallel as the product does it).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { Agent, request } from 'node:http';
import { createGunzip } from 'node:zlib';
import {
  BlobSASPermissions,
  generateBlobSASQueryParameters,
  SASProtocol,
  StorageSharedKeyCredential,
  type ContainerClient,
} from '@azure/storage-blob';
import { Parser, type ReadEntry } from 'tar';
// The product's zlib chunk size, so the floor decompresses as the mirror does.
import { CHUNK as GUNZIP_CHUNK } from '../src/lib/stemcell/archive';
// The sparse writer's defaults, so the floor splits and sends the VHD as the mirror does.
import {
  DEFAULT_PARALLELISM as PARALLELISM,
  DEFAULT_ZERO_RUN as ZERO_RUN,
  MAX_PUT_BYTES,
  type PageRange,
} from '../src/lib/azure/pageblob';

export interface DecompressResult {
  seconds: number;
  vhdBytes: number;
}

function entryName(e: ReadEntry): string {
  return e.path.replace(/^(\.\/)+/, '');
}

/** D: outer tgz → `image` → gunzip → tar → the .vhd entry, drained. No hashing, no upload. */
export async function decompressOnly(tgzPath: string): Promise<DecompressResult> {
  const t0 = performance.now();
  let vhdBytes = 0;
  let innerDone: Promise<void> | undefined;
  await new Promise<void>((resolve, reject) => {
    const outer = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        if (entryName(entry) !== 'image') {
          entry.resume();
          return;
        }
        const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
        const inner = new Parser({
          strict: true,
          onReadEntry: (e) => {
            if (/\.vhd$/i.test(entryName(e))) e.on('data', (c: Buffer) => (vhdBytes += c.length));
            else e.resume();
          },
        });
        gunzip.on('error', reject);
        inner.on('error', reject);
        innerDone = new Promise((r) => inner.on('end', () => r()));
        entry.pipe(gunzip).pipe(inner);
      },
    });
    const source = createReadStream(tgzPath, { highWaterMark: 1024 * 1024 });
    const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK });
    source.on('error', reject);
    gunzip.on('error', reject);
    outer.on('error', reject);
    outer.on('end', () => resolve());
    source.pipe(gunzip).pipe(outer);
  });
  if (!innerDone) throw new Error(`${tgzPath} has no image entry`);
  await innerDone;
  if (vhdBytes === 0) throw new Error(`${tgzPath} holds no VHD`);
  return { seconds: (performance.now() - t0) / 1000, vhdBytes };
}

/** One Put Page as the product would send it, with its bytes when they were kept. */
export interface PutOp {
  start: number;
  length: number;
  data?: Buffer;
}

export interface VhdScan {
  vhdBytes: number;
  /** Non-zero bytes counted in whole 64 KiB runs (the last, shorter run at its own length). */
  nonZeroBytes64k: number;
  /** The non-zero runs, merged where they touch. */
  nonZeroRanges: PageRange[];
  ops: PutOp[];
  sha256: string;
}

/**
 * Reads the VHD once: its sha256, its non-zero 64 KiB runs, and the Put Pages the sparse writer
 * would make of them (contiguous non-zero runs coalesced up to 4 MiB, a zero run ends a put).
 */
export async function scanVhd(vhdPath: string, opts: { keepData: boolean }): Promise<VhdScan> {
  const fh = await open(vhdPath, 'r');
  const hash = createHash('sha256');
  const ops: PutOp[] = [];
  const ranges: PageRange[] = [];
  const zeros = Buffer.alloc(ZERO_RUN);
  const block = Buffer.allocUnsafe(MAX_PUT_BYTES);
  let pending: { start: number; buf: Buffer; len: number } | undefined;
  let offset = 0;
  let nonZero = 0;

  const flush = (): void => {
    if (!pending) return;
    const op: PutOp = { start: pending.start, length: pending.len };
    if (opts.keepData) op.data = Buffer.from(pending.buf.subarray(0, pending.len));
    ops.push(op);
    pending = undefined;
  };
  const pendingBuf = opts.keepData ? Buffer.allocUnsafe(MAX_PUT_BYTES) : Buffer.alloc(0);

  try {
    for (;;) {
      const { bytesRead } = await fh.read(block, 0, block.length, offset);
      if (bytesRead === 0) break;
      const chunk = block.subarray(0, bytesRead);
      hash.update(chunk);
      // Reads are 4 MiB at offsets that are multiples of 4 MiB, so runs never straddle two reads.
      for (let o = 0; o < chunk.length; o += ZERO_RUN) {
        const run = chunk.subarray(o, o + ZERO_RUN);
        const start = offset + o;
        if (run.equals(zeros.subarray(0, run.length))) {
          flush();
          continue;
        }
        nonZero += run.length;
        const last = ranges[ranges.length - 1];
        if (last && last.end === start) last.end += run.length;
        else ranges.push({ start, end: start + run.length });
        if (pending && (pending.start + pending.len !== start || pending.len + run.length > MAX_PUT_BYTES))
          flush();
        pending ??= { start, buf: pendingBuf, len: 0 };
        if (opts.keepData) run.copy(pending.buf, pending.len);
        pending.len += run.length;
        if (pending.len === MAX_PUT_BYTES) flush();
      }
      offset += bytesRead;
    }
    flush();
  } finally {
    await fh.close();
  }
  return {
    vhdBytes: offset,
    nonZeroBytes64k: nonZero,
    nonZeroRanges: ranges,
    ops,
    sha256: hash.digest('hex'),
  };
}

/** Bytes of `a` that `b` also covers; both sorted and merged. */
export function overlapBytes(a: readonly PageRange[], b: readonly PageRange[]): number {
  let i = 0;
  let j = 0;
  let total = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const lo = Math.max(x.start, y.start);
    const hi = Math.min(x.end, y.end);
    if (hi > lo) total += hi - lo;
    if (x.end < y.end) i++;
    else j++;
  }
  return total;
}

export function rangeBytes(ranges: readonly PageRange[]): number {
  return ranges.reduce((n, r) => n + (r.end - r.start), 0);
}

/** Account name and key of a shared-key connection string (Azurite's well-known account). */
export function sharedKey(connectionString: string): StorageSharedKeyCredential {
  const part = (k: string): string => {
    const m = new RegExp(`(?:^|;)${k}=([^;]+)`).exec(connectionString);
    if (!m?.[1]) throw new Error(`the connection string has no ${k}`);
    return m[1];
  };
  return new StorageSharedKeyCredential(part('AccountName'), part('AccountKey'));
}

export interface UploadResult {
  seconds: number;
  sentBytes: number;
  puts: number;
}

/**
 * U: creates a fresh page blob (not timed), then times the Put Pages alone: `parallelism` workers
 * over one keep-alive agent, each PUT with its body from memory.
 */
export async function uploadOnly(o: {
  container: ContainerClient;
  credential: StorageSharedKeyCredential;
  blobName: string;
  vhdBytes: number;
  ops: readonly PutOp[];
  parallelism?: number;
}): Promise<UploadResult> {
  const blob = o.container.getPageBlobClient(o.blobName);
  await blob.create(o.vhdBytes);
  const sas = generateBlobSASQueryParameters(
    {
      containerName: o.container.containerName,
      blobName: o.blobName,
      permissions: BlobSASPermissions.parse('rw'),
      startsOn: new Date(Date.now() - 60_000),
      expiresOn: new Date(Date.now() + 3_600_000),
      protocol: SASProtocol.HttpsAndHttp,
    },
    o.credential,
  );
  const url = new URL(`${blob.url}?comp=page&${sas.toString()}`);
  const parallelism = o.parallelism ?? PARALLELISM;
  const agent = new Agent({ keepAlive: true, maxSockets: parallelism });
  let next = 0;
  let sent = 0;

  const put = (op: PutOp): Promise<void> =>
    new Promise((resolve, reject) => {
      if (!op.data) throw new Error('uploadOnly needs the bytes of every put');
      const req = request(
        url,
        {
          method: 'PUT',
          agent,
          headers: {
            'x-ms-version': sas.version,
            'x-ms-page-write': 'update',
            'x-ms-range': `bytes=${op.start}-${op.start + op.length - 1}`,
            'content-length': op.length,
          },
        },
        (res) => {
          res.resume();
          res.on('end', () =>
            res.statusCode === 201
              ? resolve()
              : reject(new Error(`Put Page at ${op.start} answered ${res.statusCode}`)),
          );
        },
      );
      req.on('error', reject);
      req.end(op.data);
    });

  const worker = async (): Promise<void> => {
    for (;;) {
      const op = o.ops[next++];
      if (!op) return;
      await put(op);
      sent += op.length;
    }
  };
  const t0 = performance.now();
  try {
    await Promise.all(Array.from({ length: parallelism }, worker));
  } finally {
    agent.destroy();
  }
  return { seconds: (performance.now() - t0) / 1000, sentBytes: sent, puts: o.ops.length };
}
