/**
 * A strict, local bosh.io: the stemcell API (`/api/v1/stemcells/<series>`, capped at 40 entries
 * unless `?all=1`, `200 []` for an unknown series) and a download route that behaves like the
 * storage bucket behind it (ETag, Last-Modified, byte ranges, If-Range, 416). Faults are injected per
 * test and counted, and every request is logged so tests can assert what the client really sent.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { gunzipSync } from 'node:zlib';
import { compareVersions } from '../../src/lib/core/names';

/** One entry of bosh.io's answer, exactly as the API shapes it. */
export interface BoshIoApiEntry {
  name: string;
  version: string;
  regular: { url: string; size: number; md5: string; sha1: string; sha256: string };
}

/**
 * An entry with only a light stemcell, as bosh.io lists its Azure Windows series: a reference to an
 * image Azure hosts, no tarball with a VHD.
 */
export interface LightApiEntry {
  name: string;
  version: string;
  light: { url: string; size: number; md5: string; sha1: string; sha256: string };
}

export type ReleaseBody = Buffer | { path: string };

/**
 * How the storage behind the downloads treats an object stored with Content-Encoding: gzip, as
 * Cloud Storage does: 'honour' serves the stored bytes to a client that accepts gzip and decodes
 * them for one that does not (decompressive transcoding); 'always' decodes them for everyone, as a
 * misconfigured proxy would.
 */
export type Transcoding = 'off' | 'honour' | 'always';

export interface AddReleaseInput {
  series: string;
  version: string;
  body: ReleaseBody;
  /** Published values that differ from the real ones, to simulate a wrong bosh.io entry. */
  publish?: { size?: number; sha1?: string; sha256?: string; url?: string };
}

export interface RequestLogEntry {
  method: string;
  /** Path with query string. */
  path: string;
  host: string | undefined;
  range: string | undefined;
  ifRange: string | undefined;
  acceptEncoding: string | undefined;
  status: number;
  /** Body bytes written before the fake cut the connection; undefined when not cut. */
  cutAfter?: number;
}

export interface FakeBoshIoOptions {
  /** The host name used in URLs the fake publishes (it always listens on 127.0.0.1). */
  host?: '127.0.0.1' | 'localhost';
  /** API answers to start with (e.g. a recorded bosh.io answer), served in the given order. */
  seed?: { series: string; entries: BoshIoApiEntry[] }[];
}

export type FaultRoute = 'api' | 'download' | 'any';

export interface FakeBoshIo {
  /** Base URL, e.g. http://127.0.0.1:PORT (what BASM_BOSH_IO_URL would be). */
  readonly url: string;
  readonly port: number;
  readonly requests: RequestLogEntry[];
  /** Replaces a series' API answer with raw entries, in the given order (a recorded bosh.io answer). */
  seed(series: string, entries: Array<BoshIoApiEntry | LightApiEntry>): void;
  /** Seeds a series from a saved API answer (a JSON array; small, so read whole). */
  seedFromFile(series: string, path: string): void;
  /** Adds a downloadable release; its entry is inserted newest first and points at the fake. */
  addRelease(input: AddReleaseInput): Promise<BoshIoApiEntry>;
  /** Swaps the content of a release (new ETag and Last-Modified), as a re-upload would. */
  replaceContent(series: string, version: string, body: ReleaseBody): Promise<void>;
  /**
   * Destroys the socket after `afterBytes` body bytes, for the next `times` download GETs (queued:
   * each GET takes one; a cut beyond a response's length is used up without firing).
   */
  cutAfter(afterBytes: number, times?: number): void;
  /** Answers `status` for the next `times` requests of `route` (429 and 503 may carry Retry-After). */
  failNext(times: number, opts?: { status?: number; retryAfter?: string; route?: FaultRoute }): void;
  /** Serves downloads as objects stored with Content-Encoding: gzip (see Transcoding). */
  transcode(mode: Transcoding): void;
  /** Sends download bodies chunked, without Content-Length, as some servers and proxies do. */
  omitContentLength(on: boolean): void;
  /** Limits download bodies to this many bytes per second (undefined: no limit). */
  throttle(bytesPerSecond: number | undefined): void;
  /** On the next download request, after `afterBytes` body bytes: replace the content, then cut. */
  replaceMidDownload(afterBytes: number, body: ReleaseBody): void;
  /** Redirects downloads (302) to the same path on `baseUrl` for the next `times` requests. */
  redirectDownloads(baseUrl: string, times?: number): void;
  /** How many faults of each kind have fired. */
  readonly fired: { cuts: number; failures: number; redirects: number; replacements: number };
  /** Drops pending faults, fault counters and the request log (releases and API answers stay). */
  reset(): void;
  /** Responses not yet finished or closed (a cut or aborted download leaves none behind). */
  inFlight(): number;
  /** Download body bytes written to clients so far, over all requests. */
  servedBytes(): number;
  close(): Promise<void>;
}

interface StoredObject {
  body: ReleaseBody;
  size: number;
  etag: string;
  lastModified: string;
}

interface Release {
  series: string;
  version: string;
  object: StoredObject;
}

const API_PREFIX = '/api/v1/stemcells/';
const DOWNLOAD_PREFIX = '/d/';
const API_CAP = 40;
const CHUNK = 64 * 1024;
const FILE_CHUNK = 1024 * 1024;

/** sha1, sha256 and size of a body, streamed so large files are never read whole. */
async function digest(body: ReleaseBody): Promise<{ size: number; sha1: string; sha256: string }> {
  const h1 = createHash('sha1');
  const h256 = createHash('sha256');
  let size = 0;
  for await (const chunk of bodyStream(body, 0, undefined)) {
    const b = chunk as Buffer;
    h1.update(b);
    h256.update(b);
    size += b.length;
  }
  return { size, sha1: h1.digest('hex'), sha256: h256.digest('hex') };
}

function sizeOf(body: ReleaseBody): number {
  return Buffer.isBuffer(body) ? body.length : statSync(body.path).size;
}

/** Bytes [start, end] (inclusive) of a body; `end` undefined means to the last byte. */
function bodyStream(body: ReleaseBody, start: number, end: number | undefined): Readable {
  if (!Buffer.isBuffer(body)) {
    return createReadStream(body.path, {
      start,
      ...(end === undefined ? {} : { end }),
      highWaterMark: CHUNK,
    });
  }
  const last = end ?? body.length - 1;
  return Readable.from(
    (function* () {
      for (let o = start; o <= last; o += CHUNK) yield body.subarray(o, Math.min(o + CHUNK, last + 1));
    })(),
  );
}

type RangeAnswer =
  { kind: 'full' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/**
 * RFC 9110 §14: one `bytes=` range is served as 206; a malformed or multi-range header is ignored
 * (full 200, which a server may always do); a range starting at or beyond the end is 416.
 */
export function parseRange(header: string | undefined, size: number): RangeAnswer {
  if (header === undefined) return { kind: 'full' };
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return { kind: 'full' };
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return { kind: 'unsatisfiable' };
    return size === 0
      ? { kind: 'unsatisfiable' }
      : { kind: 'partial', start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return { kind: 'full' };
  if (start >= size) return { kind: 'unsatisfiable' };
  return { kind: 'partial', start, end };
}

/** If-Range holds when it names the current strong ETag or exactly the current Last-Modified date. */
function ifRangeHolds(ifRange: string | undefined, object: StoredObject): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('W/')) return false; // weak validators never match in If-Range
  if (v.startsWith('"')) return v === object.etag;
  return v === object.lastModified;
}

export async function startFakeBoshIo(opts: FakeBoshIoOptions = {}): Promise<FakeBoshIo> {
  const apiEntries = new Map<string, Array<BoshIoApiEntry | LightApiEntry>>();
  let transcodeMode: Transcoding = 'off';
  const releases = new Map<string, Release>();
  const requests: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  const fired = { cuts: 0, failures: 0, redirects: 0, replacements: 0 };
  const cuts: number[] = [];
  const failures: { status: number; retryAfter: string | undefined; route: FaultRoute }[] = [];
  const redirects: string[] = [];
  let midReplace: { afterBytes: number; body: ReleaseBody } | undefined;
  let bytesPerSecond: number | undefined;
  let chunked = false;
  let generation = 0;
  // Last-Modified has one-second resolution: each new object gets a later second so dates differ.
  let clock = Math.floor(Date.now() / 1000) * 1000 - 3_600_000;

  for (const s of opts.seed ?? []) apiEntries.set(s.series, [...s.entries]);

  let inFlight = 0;
  const server: Server = createServer((req, res) => {
    inFlight++;
    res.once('close', () => inFlight--);
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(e));
      } else {
        res.destroy();
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const url = `http://${opts.host ?? '127.0.0.1'}:${port}`;

  let served = 0;

  function log(req: IncomingMessage, status: number, cutAfter?: number): void {
    requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      host: req.headers.host,
      range: req.headers.range,
      ifRange: header(req, 'if-range'),
      acceptEncoding: header(req, 'accept-encoding'),
      status,
      ...(cutAfter === undefined ? {} : { cutAfter }),
    });
  }

  function header(req: IncomingMessage, name: string): string | undefined {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  }

  function send(
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    body: string,
    type = 'text/plain',
  ): void {
    log(req, status);
    res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function takeFailure(route: 'api' | 'download'): (typeof failures)[number] | undefined {
    const i = failures.findIndex((f) => f.route === route || f.route === 'any');
    if (i < 0) return undefined;
    fired.failures++;
    return failures.splice(i, 1)[0];
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const u = new URL(req.url ?? '/', 'http://fake');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      log(req, 405);
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': 0 });
      res.end();
      return;
    }
    const route = u.pathname.startsWith(API_PREFIX)
      ? 'api'
      : u.pathname.startsWith(DOWNLOAD_PREFIX)
        ? 'download'
        : undefined;
    if (route === undefined) return send(req, res, 404, 'not found');
    const failure = takeFailure(route);
    if (failure) {
      log(req, failure.status);
      res.writeHead(failure.status, {
        'content-type': 'text/plain',
        'content-length': 5,
        ...(failure.retryAfter === undefined ? {} : { 'retry-after': failure.retryAfter }),
      });
      res.end('fault');
      return;
    }
    if (route === 'api') return serveApi(req, res, u);
    return serveDownload(req, res, u);
  }

  function serveApi(req: IncomingMessage, res: ServerResponse, u: URL): void {
    const series = decodeURIComponent(u.pathname.slice(API_PREFIX.length));
    if (series === '' || series.includes('/')) return send(req, res, 404, 'not found');
    const all = u.searchParams.get('all') === '1';
    const entries = apiEntries.get(series) ?? [];
    send(req, res, 200, JSON.stringify(all ? entries : entries.slice(0, API_CAP)), 'application/json');
  }

  async function serveDownload(req: IncomingMessage, res: ServerResponse, u: URL): Promise<void> {
    const redirect = redirects.shift();
    if (redirect !== undefined) {
      fired.redirects++;
      log(req, 302);
      res.writeHead(302, { location: redirect + u.pathname, 'content-length': 0 });
      res.end();
      return;
    }
    const [, series, version] = u.pathname.slice(DOWNLOAD_PREFIX.length - 1).split('/');
    const release = releases.get(`${series ?? ''}/${version ?? ''}`);
    if (!release) return send(req, res, 404, 'no such object');
    const object = release.object;
    const common: Record<string, string> = {
      etag: object.etag,
      'last-modified': object.lastModified,
      'accept-ranges': 'bytes',
      'content-type': 'application/x-tar',
    };
    if (transcodeMode !== 'off') {
      const acceptsGzip = /\bgzip\b/i.test(header(req, 'accept-encoding') ?? '');
      if (transcodeMode === 'honour' && acceptsGzip) {
        common['content-encoding'] = 'gzip';
        common['x-goog-stored-content-encoding'] = 'gzip';
      } else {
        // Decompressive transcoding: decoded, whole, chunked, ranges ignored.
        const stored = Buffer.isBuffer(object.body) ? object.body : readFileSync(object.body.path);
        const decoded = gunzipSync(stored);
        log(req, 200);
        res.writeHead(200, {
          ...common,
          'x-goog-stored-content-encoding': 'gzip',
          warning: '214 UploadServer gunzipped',
        });
        res.end(req.method === 'HEAD' ? undefined : decoded);
        return;
      }
    }
    const ifRange = header(req, 'if-range');
    const range =
      req.headers.range !== undefined && ifRangeHolds(ifRange, object)
        ? parseRange(req.headers.range, object.size)
        : { kind: 'full' as const };
    if (range.kind === 'unsatisfiable') {
      log(req, 416);
      res.writeHead(416, { 'content-range': `bytes */${object.size}`, 'content-length': 0 });
      res.end();
      return;
    }
    const start = range.kind === 'partial' ? range.start : 0;
    const end = range.kind === 'partial' ? range.end : object.size - 1;
    const length = end - start + 1;
    const status = range.kind === 'partial' ? 206 : 200;
    const headers: Record<string, string | number> = {
      ...common,
      ...(chunked ? {} : { 'content-length': length }),
    };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${object.size}`;

    const replace = req.method === 'GET' ? midReplace : undefined;
    midReplace = undefined;
    const cut = req.method === 'GET' && replace === undefined ? cuts.shift() : undefined;
    const stopAt = replace?.afterBytes ?? cut;
    if (stopAt === undefined) log(req, status);
    else log(req, status, Math.min(stopAt, length));

    res.writeHead(status, headers);
    if (req.method === 'HEAD' || length === 0) {
      res.end();
      return;
    }
    res.flushHeaders();
    const written = await writeBody(res, object.body, start, end, stopAt);
    if (stopAt !== undefined && written >= Math.min(stopAt, length) && written < length) {
      if (replace) {
        await setObject(release, replace.body);
        fired.replacements++;
      } else {
        fired.cuts++;
      }
      res.socket?.destroy();
      return;
    }
    res.end();
  }

  /** Writes [start, end] with backpressure and throttling; stops after `stopAt` bytes. */
  async function writeBody(
    res: ServerResponse,
    body: ReleaseBody,
    start: number,
    end: number,
    stopAt: number | undefined,
  ): Promise<number> {
    let written = 0;
    if (bytesPerSecond === undefined && stopAt === undefined && !Buffer.isBuffer(body)) {
      // The plain case, kept lean: large reads piped with the socket's own backpressure, so this
      // loopback server takes little of the two cores the benchmark measures the mirror on.
      const file = createReadStream(body.path, { start, end, highWaterMark: FILE_CHUNK });
      file.on('data', (c: string | Buffer) => {
        written += c.length;
        served += c.length;
      });
      // A client that goes away ends the answer early; what was written is the answer.
      await pipeline(file, res, { end: false }).catch(() => undefined);
      return written;
    }
    const source = bodyStream(body, start, end);
    try {
      for await (const chunk of source) {
        let b = chunk as Buffer;
        if (stopAt !== undefined && written + b.length > stopAt) b = b.subarray(0, stopAt - written);
        while (b.length > 0) {
          const step = bytesPerSecond === undefined ? b.length : Math.max(1, Math.floor(bytesPerSecond / 20));
          const piece = b.subarray(0, step);
          b = b.subarray(piece.length);
          if (res.destroyed) return written;
          const flushed = new Promise<void>((resolve) => res.write(piece, () => resolve()));
          written += piece.length;
          served += piece.length;
          if (bytesPerSecond !== undefined || (stopAt !== undefined && written >= stopAt)) {
            // Wait until the bytes reached the socket: a cut must come after them, not before.
            await flushed;
          } else if (res.writableNeedDrain) {
            await new Promise<void>((resolve) => {
              const done = (): void => {
                res.off('drain', done);
                res.off('close', done);
                resolve();
              };
              res.once('drain', done);
              res.once('close', done);
            });
          }
          if (bytesPerSecond !== undefined) await sleep(50);
        }
        if (stopAt !== undefined && written >= stopAt) break;
      }
    } finally {
      source.destroy();
    }
    return written;
  }

  async function newObject(
    body: ReleaseBody,
  ): Promise<{ object: StoredObject; sums: Awaited<ReturnType<typeof digest>> }> {
    const sums = await digest(body);
    generation++;
    clock += 1000;
    return {
      object: {
        body,
        size: sizeOf(body),
        etag: `"${sums.sha256.slice(0, 16)}-${generation}"`,
        lastModified: new Date(clock).toUTCString(),
      },
      sums,
    };
  }

  async function setObject(release: Release, body: ReleaseBody): Promise<void> {
    release.object = (await newObject(body)).object;
  }

  return {
    url,
    port,
    requests,
    fired,
    transcode(mode) {
      transcodeMode = mode;
    },
    seed(series, entries) {
      apiEntries.set(series, [...entries]);
    },
    seedFromFile(series, path) {
      const parsed: unknown = JSON.parse(readFileSync(path, 'utf8'));
      if (!Array.isArray(parsed)) throw new Error(`${path} is not an API answer (expected a JSON array)`);
      apiEntries.set(series, parsed as BoshIoApiEntry[]);
    },
    async addRelease(input) {
      const { object, sums } = await newObject(input.body);
      releases.set(`${input.series}/${input.version}`, {
        series: input.series,
        version: input.version,
        object,
      });
      const flavour = input.series.replace(/^bosh-/, '');
      const entry: BoshIoApiEntry = {
        name: input.series,
        version: input.version,
        regular: {
          url:
            input.publish?.url ??
            `${url}${DOWNLOAD_PREFIX}${input.series}/${input.version}/bosh-stemcell-${input.version}-${flavour}.tgz`,
          size: input.publish?.size ?? sums.size,
          md5: '',
          sha1: input.publish?.sha1 ?? sums.sha1,
          sha256: input.publish?.sha256 ?? sums.sha256,
        },
      };
      const list = (apiEntries.get(input.series) ?? []).filter((e) => e.version !== input.version);
      list.push(entry);
      list.sort((a, b) => compareVersions(b.version, a.version));
      apiEntries.set(input.series, list);
      return entry;
    },
    async replaceContent(series, version, body) {
      const release = releases.get(`${series}/${version}`);
      if (!release) throw new Error(`no release ${series}/${version}`);
      await setObject(release, body);
    },
    cutAfter(afterBytes, times = 1) {
      for (let i = 0; i < times; i++) cuts.push(afterBytes);
    },
    failNext(times, o = {}) {
      for (let i = 0; i < times; i++)
        failures.push({ status: o.status ?? 503, retryAfter: o.retryAfter, route: o.route ?? 'any' });
    },
    omitContentLength(on) {
      chunked = on;
    },
    throttle(bps) {
      bytesPerSecond = bps;
    },
    replaceMidDownload(afterBytes, body) {
      midReplace = { afterBytes, body };
    },
    redirectDownloads(baseUrl, times = 1) {
      for (let i = 0; i < times; i++) redirects.push(baseUrl.replace(/\/+$/, ''));
    },
    reset() {
      cuts.length = 0;
      failures.length = 0;
      redirects.length = 0;
      midReplace = undefined;
      bytesPerSecond = undefined;
      chunked = false;
      transcodeMode = 'off';
      requests.length = 0;
      Object.assign(fired, { cuts: 0, failures: 0, redirects: 0, replacements: 0 });
    },
    inFlight: () => inFlight,
    servedBytes: () => served,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
