/**
 * The stemcell archive, read as one stream: outer tgz → `image` (itself a tgz) → the one `.vhd`,
 * which is handed to the caller as a Readable while it is still being decompressed. stemcell.MF is
 * captured whichever order it comes in; everything else is drained. Backpressure holds end to end:
 * a slow VHD consumer pauses the input.
 */
import { createHash } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { buffer } from 'node:stream/consumers';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { isScalar, parseDocument } from 'yaml';
import { ensureError, MirrorError } from '../core/errors';
import { checkVhdEntrySize, checkVhdHead, VHD_FOOTER_SIZE } from './vhd';

export interface StemcellManifest {
  name: string;
  version: string;
  sha1: string;
  operatingSystem?: string;
  cloudProperties: Record<string, unknown>;
}

export interface ExtractResult {
  manifest: StemcellManifest;
  imageSha1: string;
  imageSha256: string;
  vhdName: string;
  vhdSize: number;
}

export interface ExtractOptions {
  /** Consumes the VHD bytes; must read the stream to its end before resolving. */
  onVhd(entry: Readable, info: { name: string; size: number }): Promise<void>;
  signal?: AbortSignal;
}

export const MAX_MANIFEST_BYTES = 1024 * 1024;
// Large zlib chunks: per-chunk callbacks cost more main-thread time than the inflate itself (bench).
export const CHUNK = 512 * 1024;
const FILE_TYPES: ReadonlySet<string> = new Set(['File', 'OldFile', 'ContiguousFile']);

function invalid(message: string, cause?: unknown): MirrorError {
  return new MirrorError('ARCHIVE_INVALID', message, { cause });
}

/** Entry path without a leading `./`, as tar tools write either. */
function entryName(entry: ReadEntry): string {
  return entry.path.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

/** macOS tar adds `._name` AppleDouble companions; they carry no stemcell data. */
function isAppleDouble(name: string): boolean {
  return /(^|\/)\._/.test(name);
}

/**
 * A Writable in front of a tar Parser, so it can sit in a pipeline: write callbacks are held while
 * the current entry's consumer is paused, which is what carries backpressure upstream.
 */
class TarSink extends Writable {
  private readonly parser: Parser;

  constructor(label: string, onEntry: (entry: ReadEntry) => void) {
    super({ highWaterMark: CHUNK });
    this.parser = new Parser({
      strict: true,
      onReadEntry: (entry) => {
        try {
          onEntry(entry);
        } catch (e) {
          this.destroy(e instanceof MirrorError ? e : invalid(`${label}: ${String(e)}`, e));
        }
      },
    });
    this.parser.on('error', (e: Error) =>
      this.destroy(invalid(`${label} is not a valid tar: ${e.message}`, e)),
    );
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    if (this.parser.write(chunk)) cb();
    else this.parser.once('drain', () => cb());
  }

  override _final(cb: (e?: Error | null) => void): void {
    // The parser's 'end' comes after its last entry has been handed out and consumed.
    this.parser.once('end', () => cb());
    this.parser.end();
  }
}

/**
 * A Node Readable over a tar entry with backpressure both ways: the entry is paused while the
 * reader is full. `inspect` sees every chunk first and may throw to refuse the entry.
 */
function entryReadable(
  entry: ReadEntry,
  inspect: (chunk: Buffer) => void,
  onError: (e: unknown) => void,
): Readable {
  const out = new Readable({
    highWaterMark: CHUNK,
    read: () => void entry.resume(),
  });
  entry.on('data', (chunk: Buffer) => {
    try {
      inspect(chunk);
    } catch (e) {
      out.destroy(e as Error);
      onError(e);
      return;
    }
    if (!out.push(chunk)) entry.pause();
  });
  entry.on('end', () => out.push(null));
  return out;
}

/** Only zlib's own errors mean bad data; a pipeline also hands on the errors of its neighbours. */
function zlibError(e: Error, what: string): Error {
  const code = (e as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('Z_'))
    return invalid(`${what} is not a valid gzip stream: ${e.message}`, e);
  return e;
}

function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The extraction was aborted', { cause: signal.reason }), {
    name: 'AbortError',
  });
}

async function collect(entry: ReadEntry, limit: number, what: string): Promise<Buffer> {
  if (entry.size > limit) throw invalid(`${what} is ${entry.size} bytes, more than the ${limit} allowed`);
  return buffer(entry);
}

/** A top-level scalar as written: YAML would read `1.680` as the number 1.68. */
function scalarText(doc: ReturnType<typeof parseDocument>, key: string): string | undefined {
  const node: unknown = doc.get(key, true);
  if (!isScalar(node) || node.value === null || node.value === undefined) return undefined;
  if (typeof node.value === 'string') return node.value;
  if (typeof node.value === 'number' && typeof node.source === 'string') return node.source;
  return typeof node.value === 'number' ? String(node.value) : undefined;
}

export function parseManifest(text: string): StemcellManifest {
  const doc = parseDocument(text);
  if (doc.errors.length > 0) throw invalid(`stemcell.MF is not valid YAML: ${doc.errors[0]?.message ?? ''}`);
  let body: unknown;
  try {
    body = doc.toJS({ maxAliasCount: 16 });
  } catch (e) {
    // The YAML library throws a plain ReferenceError for alias bombs and unresolved aliases: that is
    // bad content, not a transient fault to retry.
    throw invalid(`stemcell.MF cannot be read: ${ensureError(e).message}`, e);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw invalid('stemcell.MF is not a mapping');
  const name = scalarText(doc, 'name');
  const version = scalarText(doc, 'version');
  const sha1 = scalarText(doc, 'sha1');
  const os = scalarText(doc, 'operating_system');
  const cloud = (body as Record<string, unknown>).cloud_properties;
  if (!name) throw invalid('stemcell.MF has no name');
  if (!version) throw invalid('stemcell.MF has no version');
  if (!sha1 || !/^[0-9a-f]{40}$/i.test(sha1)) throw invalid('stemcell.MF has no valid sha1');
  if (cloud === null || typeof cloud !== 'object' || Array.isArray(cloud)) {
    throw invalid('stemcell.MF has no cloud_properties mapping');
  }
  return {
    name,
    version,
    sha1: sha1.toLowerCase(),
    ...(os ? { operatingSystem: os } : {}),
    cloudProperties: cloud as Record<string, unknown>,
  };
}

export async function extractStemcell(input: Readable, opts: ExtractOptions): Promise<ExtractResult> {
  let firstError: Error | undefined;
  const streams: Array<{ destroy(e?: Error): unknown }> = [input];
  const tasks: Array<Promise<unknown>> = [];

  const fail = (e: unknown): void => {
    if (firstError !== undefined) return;
    firstError = ensureError(e);
    for (const s of streams) s.destroy(firstError);
  };
  const track = (p: Promise<unknown>): void => {
    tasks.push(p.catch(fail));
  };

  let manifest: StemcellManifest | undefined;
  let manifestSeen = false;
  let image: { sha1: string; sha256: string } | undefined;
  let imageSeen = false;
  let vhd: { name: string; size: number } | undefined;

  const onVhdEntry = (entry: ReadEntry, name: string): void => {
    if (vhd) throw invalid(`image holds two VHDs (${vhd.name} and ${name})`);
    checkVhdEntrySize(entry.size);
    vhd = { name, size: entry.size };
    let head = Buffer.alloc(0);
    let headChecked = false;
    const checkHead = (chunk: Buffer): void => {
      if (headChecked) return;
      head = Buffer.concat([head, chunk]);
      if (head.length >= VHD_FOOTER_SIZE) {
        headChecked = true;
        checkVhdHead(head);
      }
    };
    const readable = entryReadable(entry, checkHead, fail);
    streams.push(readable);
    const info = { name, size: entry.size };
    track(
      opts.onVhd(readable, info).then(() => {
        if (!readable.readableEnded)
          throw new Error('The VHD consumer returned before reading the whole VHD');
      }),
    );
  };

  const onInnerEntry = (entry: ReadEntry): void => {
    const name = entryName(entry);
    if (isAppleDouble(name) || entry.type === 'Directory' || name === '' || name === '.') {
      entry.resume();
      return;
    }
    if (name.includes('/')) throw invalid(`image holds an unexpected nested entry ${JSON.stringify(name)}`);
    if (!FILE_TYPES.has(entry.type)) throw invalid(`image holds an unexpected ${entry.type} entry ${name}`);
    if (/\.vhd$/i.test(name)) onVhdEntry(entry, name);
    else if (/\.(tgz|tar|gz|zip|vhdx?)$/i.test(name))
      throw invalid(`image holds an unexpected archive ${name}`);
    else entry.resume();
  };

  const onImageEntry = (entry: ReadEntry): void => {
    if (imageSeen) throw invalid('The stemcell holds two image entries');
    imageSeen = true;
    const sha1 = createHash('sha1');
    const sha256 = createHash('sha256');
    const hashed = entryReadable(
      entry,
      (c) => {
        sha1.update(c);
        sha256.update(c);
      },
      fail,
    );
    const gunzip = createGunzip({ chunkSize: CHUNK });
    gunzip.on('error', (e) => fail(zlibError(e, 'image')));
    const sink = new TarSink('image', onInnerEntry);
    streams.push(hashed, gunzip, sink);
    track(
      pipeline(hashed, gunzip, sink).then(() => {
        image = { sha1: sha1.digest('hex'), sha256: sha256.digest('hex') };
      }),
    );
  };

  const onOuterEntry = (entry: ReadEntry): void => {
    const name = entryName(entry);
    const isFile = FILE_TYPES.has(entry.type);
    if (isFile && name === 'image') {
      onImageEntry(entry);
    } else if (isFile && name === 'stemcell.MF') {
      if (manifestSeen) throw invalid('The stemcell holds two stemcell.MF entries');
      manifestSeen = true;
      track(
        collect(entry, MAX_MANIFEST_BYTES, 'stemcell.MF').then((b) => {
          manifest = parseManifest(b.toString('utf8'));
        }),
      );
    } else {
      entry.resume();
    }
  };

  const gunzip = createGunzip({ chunkSize: CHUNK });
  gunzip.on('error', (e) => fail(zlibError(e, 'The stemcell')));
  const sink = new TarSink('The stemcell', onOuterEntry);
  streams.push(gunzip, sink);
  track(pipeline(input, gunzip, sink, ...(opts.signal ? [{ signal: opts.signal }] : [])));

  // Entries add tasks while earlier ones run; every task ends once `fail` has destroyed the streams.
  for (let i = 0; i < tasks.length; i++) await tasks[i];
  // Streams torn down by an abort report it in their own words; the caller needs to see an abort.
  if (opts.signal?.aborted) throw abortError(opts.signal);
  if (firstError !== undefined) throw firstError;

  if (!imageSeen || !image) throw invalid('The stemcell has no image entry');
  if (!vhd) throw invalid('image holds no .vhd file');
  if (!manifestSeen || !manifest) throw invalid('The stemcell has no stemcell.MF');
  if (manifest.sha1 !== image.sha1) {
    throw new MirrorError(
      'CHECKSUM_MISMATCH',
      `stemcell.MF says the image's sha1 is ${manifest.sha1}, the image entry's is ${image.sha1}`,
    );
  }
  return { manifest, imageSha1: image.sha1, imageSha256: image.sha256, vhdName: vhd.name, vhdSize: vhd.size };
}
