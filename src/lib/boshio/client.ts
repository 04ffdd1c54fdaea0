/**
 * bosh.io: which stemcells exist (the API) and their archives (a resumable download stream).
 * Every URL touched here passes the same host rule: https (http only on loopback) and an allowed
 * host, redirects included.
 */
import { distance } from 'fastest-levenshtein';
import got, { type Got, type Request } from 'got';
import type { IncomingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import { isLoopbackHost } from '../config/config';
import { MirrorError, type ErrorCode } from '../core/errors';
import { silentLogger, type Logger } from '../core/log';
import { compareVersions, isSeriesName, isStemcellVersion } from '../core/names';

export interface StemcellRelease {
  series: string;
  version: string;
  url: string;
  size: number | undefined;
  sha256: string | undefined;
  sha1: string | undefined;
}

export interface BoshIoClientOptions {
  /** bosh.io base URL (API under /api/v1/stemcells/<series>). */
  baseUrl: string;
  /** Host names downloads (and any redirect) may go to. The API host is always allowed for the API. */
  allowedHosts: readonly string[];
  log?: Logger;
  /** API request deadline, and the idle/connect/response-header deadline of downloads. */
  timeoutMs?: number;
  /** API retries on network errors, 5xx and 429. */
  retries?: number;
  /** First backoff delay; doubles per attempt. */
  retryBaseMs?: number;
}

export interface DownloadOptions {
  signal?: AbortSignal;
  /** Called with the archive bytes received so far. */
  onBytes?: (total: number) => void;
  /** Resumes allowed in a row without any byte of progress between them (default 8). */
  maxResumes?: number;
  /** Starts at this byte (the bytes before it come from elsewhere, e.g. a cached partial download). */
  start?: number;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const DEFAULT_RETRIES = 4;
const DEFAULT_RETRY_BASE_MS = 1_000;
const DEFAULT_MAX_RESUMES = 8;
const MAX_BACKOFF_MS = 30_000;
/** A Retry-After longer than this is not waited for inside one invocation: the job retries later. */
const MAX_RETRY_AFTER_MS = 60_000;
const MAX_API_BYTES = 8 * 1024 * 1024;
const RETRY_STATUS = [408, 429, 500, 502, 503, 504, 521, 522, 524];
const SHA256 = /^[0-9a-f]{64}$/i;
const SHA1 = /^[0-9a-f]{40}$/i;

/** Up to `max` candidates nearest to `input` by edit distance; ties keep the candidates' order. */
export function closestNames(input: string, candidates: readonly string[], max = 3): string[] {
  return candidates
    .map((c, i) => ({ c, i, d: distance(input, c) }))
    .sort((a, b) => a.d - b.d || a.i - b.i)
    .slice(0, Math.max(0, max))
    .map((x) => x.c);
}

function normalizeHost(h: string): string {
  return h.replace(/^\[|\]$/g, '').toLowerCase();
}

/**
 * Throws unless `url` is https (or http to a loopback host) and its host is allowed. The message
 * names the host so an operator knows what to add to the allow-list.
 */
export function assertAllowedUrl(url: string | URL, allowedHosts: readonly string[], code: ErrorCode): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new MirrorError(code, `"${String(url)}" is not a URL`, { permanent: true });
  }
  const host = normalizeHost(u.hostname);
  const httpOk = u.protocol === 'http:' && isLoopbackHost(host);
  if (u.protocol !== 'https:' && !httpOk) {
    throw new MirrorError(
      code,
      `refusing ${u.protocol}//${host}: only https (http only on loopback) is allowed`,
      {
        permanent: true,
      },
    );
  }
  if (!allowedHosts.some((a) => normalizeHost(a) === host)) {
    throw new MirrorError(code, `refusing host "${host}": it is not in the allowed download hosts`, {
      permanent: true,
    });
  }
  return u;
}

/**
 * Why a response is not the stored object, if it is not: Cloud Storage's decompressive transcoding
 * ("Transcoding of gzip-compressed files", cloud.google.com/storage/docs/transcoding) serves a
 * gzip-encoded object decoded, marked by `x-goog-stored-content-encoding: gzip` without a matching
 * `Content-Encoding`, and by a `Warning: 214` (Transformation Applied, RFC 7234 §5.5).
 */
function transcoding(h: IncomingHttpHeaders): string | undefined {
  const stored = String(h['x-goog-stored-content-encoding'] ?? '').toLowerCase();
  const served = String(h['content-encoding'] ?? 'identity').toLowerCase();
  if (stored !== '' && stored !== 'identity' && stored !== served) {
    return `stored with Content-Encoding ${stored}, served as ${served}`;
  }
  const warning = String(h.warning ?? '');
  if (/(^|,)\s*214\b/.test(warning)) return `Warning: ${warning}`;
  return undefined;
}

/** The MirrorError a hook threw, found through got's wrapping, if any. */
function mirrorCause(e: unknown): MirrorError | undefined {
  for (let c: unknown = e, i = 0; c !== undefined && c !== null && i < 5; i++) {
    if (c instanceof MirrorError) return c;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}

function describe(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

function statusOf(e: unknown): number | undefined {
  const s = (e as { response?: { statusCode?: unknown } } | undefined)?.response?.statusCode;
  return typeof s === 'number' ? s : undefined;
}

function backoff(baseMs: number, attempt: number): number {
  return Math.min(baseMs * 2 ** Math.max(0, attempt - 1), MAX_BACKOFF_MS);
}

/**
 * An entry with a light stemcell and no regular one (bosh.io's Azure Windows series): nothing to
 * mirror, which is not the same as a malformed entry.
 */
export function isLightOnly(series: string, raw: unknown): boolean {
  if (typeof raw !== 'object' || raw === null) return false;
  const e = raw as Record<string, unknown>;
  const has = (k: string) => typeof e[k] === 'object' && e[k] !== null;
  return e.name === series && has('light') && !has('regular');
}

/** One API entry as a release, or the reason it is unusable. */
export function parseEntry(series: string, raw: unknown): StemcellRelease | string {
  if (typeof raw !== 'object' || raw === null) return 'not an object';
  const e = raw as Record<string, unknown>;
  if (e.name !== series) return `name ${JSON.stringify(e.name)} is not the series`;
  if (typeof e.version !== 'string' || !isStemcellVersion(e.version))
    return `bad version ${JSON.stringify(e.version)}`;
  const r = e.regular;
  if (typeof r !== 'object' || r === null) return 'no regular stemcell';
  const reg = r as Record<string, unknown>;
  if (typeof reg.url !== 'string' || !URL.canParse(reg.url)) return `bad url ${JSON.stringify(reg.url)}`;
  let size: number | undefined;
  if (reg.size !== undefined && reg.size !== null) {
    if (typeof reg.size !== 'number' || !Number.isSafeInteger(reg.size) || reg.size <= 0) {
      return `bad size ${JSON.stringify(reg.size)}`;
    }
    size = reg.size;
  }
  const sha256 = digestField(reg.sha256, SHA256);
  const sha1 = digestField(reg.sha1, SHA1);
  if (sha256 === null) return `bad sha256 ${JSON.stringify(reg.sha256)}`;
  if (sha1 === null) return `bad sha1 ${JSON.stringify(reg.sha1)}`;
  return { series, version: e.version, url: reg.url, size, sha256, sha1 };
}

/** undefined when absent or empty (bosh.io leaves unused digests empty), null when malformed. */
function digestField(v: unknown, pattern: RegExp): string | undefined | null {
  if (v === undefined || v === null || v === '') return undefined;
  return typeof v === 'string' && pattern.test(v) ? v.toLowerCase() : null;
}

export class BoshIoClient {
  private readonly baseUrl: string;
  private readonly apiHosts: readonly string[];
  private readonly allowedHosts: readonly string[];
  private readonly log: Logger;
  private readonly timeoutMs: number;
  private readonly retries: number;
  private readonly retryBaseMs: number;
  private readonly got: Got;

  constructor(opts: BoshIoClientOptions) {
    this.allowedHosts = [...opts.allowedHosts];
    const base = new URL(opts.baseUrl);
    this.apiHosts = [base.hostname, ...this.allowedHosts];
    assertAllowedUrl(base, this.apiHosts, 'CONFIG_INVALID');
    this.baseUrl = base.toString().replace(/\/+$/, '');
    this.log = opts.log ?? silentLogger;
    this.timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.retries = opts.retries ?? DEFAULT_RETRIES;
    this.retryBaseMs = opts.retryBaseMs ?? DEFAULT_RETRY_BASE_MS;
    this.got = got.extend({
      maxRedirects: 5,
      // Raw bytes: the archive is checksummed as published, never re-encoded on the way.
      decompress: false,
      headers: { 'user-agent': 'bosh-azure-stemcell-mirror' },
    });
  }

  /** Every release of `series` bosh.io lists, newest first; malformed entries are skipped. */
  async listReleases(series: string): Promise<StemcellRelease[]> {
    if (!isSeriesName(series)) {
      throw new MirrorError('INVALID_REQUEST', `"${series}" is not a stemcell series name`);
    }
    const body = await this.fetchApi(series);
    if (!Array.isArray(body)) {
      throw new MirrorError(
        'UPSTREAM_UNAVAILABLE',
        `bosh.io answered for ${series} with something other than a list`,
      );
    }
    const seen = new Set<string>();
    const out: StemcellRelease[] = [];
    const lightOnly = body.filter((raw: unknown) => isLightOnly(series, raw)).length;
    if (lightOnly > 0 && lightOnly === body.length) {
      throw new MirrorError(
        'INVALID_REQUEST',
        `bosh.io publishes only light stemcells for "${series}" (${lightOnly} versions): a light stemcell ` +
          'points at an image Azure already hosts and carries no VHD to mirror',
      );
    }
    body.forEach((raw: unknown, index) => {
      const r = parseEntry(series, raw);
      if (typeof r === 'string') {
        this.log.warn('boshio.entry-skipped', { series, index, reason: r });
      } else if (seen.has(r.version)) {
        this.log.warn('boshio.entry-skipped', { series, index, reason: `duplicate version ${r.version}` });
      } else {
        seen.add(r.version);
        out.push(r);
      }
    });
    return out.sort((a, b) => compareVersions(b.version, a.version));
  }

  /** The release for `version` ('latest' = highest version), or NOT_FOUND with a helpful message. */
  async resolve(series: string, version: string): Promise<StemcellRelease> {
    if (version !== 'latest' && !isStemcellVersion(version)) {
      throw new MirrorError(
        'INVALID_REQUEST',
        `"${version}" is not a stemcell version (expected e.g. 1.682 or latest)`,
      );
    }
    const releases = await this.listReleases(series);
    const newest = releases[0];
    if (newest === undefined) {
      throw new MirrorError(
        'NOT_FOUND',
        `bosh.io lists no stemcells for series "${series}": is the series name right?`,
      );
    }
    if (version === 'latest') return newest;
    const hit = releases.find((r) => r.version === version);
    if (hit) return hit;
    const close = closestNames(
      version,
      releases.map((r) => r.version),
    );
    throw new MirrorError(
      'NOT_FOUND',
      `bosh.io has no version "${version}" of ${series}; closest: ${close.join(', ')} (latest is ${newest.version})`,
    );
  }

  /**
   * The whole archive as one stream that survives cut connections: it resumes with Range + If-Range
   * and fails the pass (DOWNLOAD_FAILED, transient) rather than splice two different objects.
   * Throws at once, before any request, when the URL is not allowed.
   */
  openDownload(release: StemcellRelease, opts: DownloadOptions = {}): Readable {
    const url = assertAllowedUrl(release.url, this.allowedHosts, 'DOWNLOAD_FAILED');
    return new ResumableDownload({
      got: this.got,
      url,
      size: release.size,
      allowedHosts: this.allowedHosts,
      log: this.log.child({ series: release.series, version: release.version }),
      timeoutMs: this.timeoutMs,
      retryBaseMs: this.retryBaseMs,
      maxResumes: opts.maxResumes ?? DEFAULT_MAX_RESUMES,
      signal: opts.signal,
      onBytes: opts.onBytes,
      start: opts.start ?? 0,
    });
  }

  /**
   * The API answer for `series`, parsed. Retries network errors and RETRY_STATUS answers itself,
   * one got request per attempt: got 14's own retry of a refused connection ends, on Node 24, in a
   * bare "Socket closed before the connection was established" that hides the cause. A Retry-After
   * is honoured up to MAX_RETRY_AFTER_MS; a longer one fails the call (transient) instead.
   */
  private async fetchApi(series: string): Promise<unknown> {
    const url = `${this.baseUrl}/api/v1/stemcells/${encodeURIComponent(series)}`;
    for (let attempt = 1; ; attempt++) {
      const r = await this.fetchApiOnce(series, url);
      if ('body' in r) return r.body;
      const wait = r.retryAfterMs ?? backoff(this.retryBaseMs, attempt);
      if (!r.retriable || attempt > this.retries || wait > MAX_RETRY_AFTER_MS) throw r.error;
      this.log.warn('boshio.api-retry', { series, attempt, error: r.error.message });
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
  }

  private async fetchApiOnce(
    series: string,
    url: string,
  ): Promise<{ body: unknown } | { error: MirrorError; retriable: boolean; retryAfterMs?: number }> {
    let tooLarge = false;
    try {
      const req = this.got(url, {
        searchParams: { all: 1 },
        headers: { accept: 'application/json' },
        timeout: { request: this.timeoutMs },
        retry: { limit: 0 },
        hooks: {
          beforeRedirect: [(o) => void assertAllowedUrl(o.url as URL, this.apiHosts, 'UPSTREAM_UNAVAILABLE')],
        },
      });
      // The answer is buffered to parse it: bound it so a broken or hostile server cannot fill memory.
      void req.on('downloadProgress', ({ transferred }) => {
        if (transferred > MAX_API_BYTES && !tooLarge) {
          tooLarge = true;
          req.cancel();
        }
      });
      return { body: await req.json<unknown>() };
    } catch (e) {
      const refused = mirrorCause(e);
      if (refused) return { error: refused, retriable: false };
      const status = statusOf(e);
      const what = tooLarge
        ? `the answer exceeds ${MAX_API_BYTES} bytes`
        : status === undefined
          ? describe(e)
          : `HTTP ${status}`;
      const error = new MirrorError('UPSTREAM_UNAVAILABLE', `bosh.io API for ${series} failed: ${what}`, {
        cause: e,
      });
      const retriable =
        !tooLarge && (status === undefined ? isNetworkError(e) : RETRY_STATUS.includes(status));
      const retryAfter = retryAfterMsOf(e);
      return { error, retriable, ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }) };
    }
  }
}

/** A request that got no answer (connection refused or cut, a timeout), worth another try. */
function isNetworkError(e: unknown): boolean {
  return e instanceof Error && !(e instanceof MirrorError) && statusOf(e) === undefined;
}

/** The Retry-After of an HTTP error answer, in ms (delta-seconds or an HTTP date, RFC 9110 §10.2.3). */
function retryAfterMsOf(e: unknown): number | undefined {
  const h = (e as { response?: { headers?: IncomingHttpHeaders } } | undefined)?.response?.headers?.[
    'retry-after'
  ];
  const raw: unknown = Array.isArray(h) ? h[0] : h;
  const v = typeof raw === 'string' ? raw.trim() : undefined;
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

interface DownloadParams {
  got: Got;
  url: URL;
  size: number | undefined;
  allowedHosts: readonly string[];
  log: Logger;
  timeoutMs: number;
  retryBaseMs: number;
  maxResumes: number;
  signal: AbortSignal | undefined;
  onBytes: ((total: number) => void) | undefined;
  start: number;
}

/** What to do after a request ended or failed. */
type Outcome = { retry: string } | { fail: MirrorError };

/**
 * A Readable over successive ranged GETs of one object. It pulls from the current request only as
 * fast as it is read (pause/resume), so memory stays bounded whatever the consumer's speed.
 */
class ResumableDownload extends Readable {
  private readonly p: DownloadParams;
  private source: Request | undefined;
  private started = false;
  private received = 0;
  private total: number | undefined;
  private etag: string | undefined;
  private lastModified: string | undefined;
  /** Failures in a row without a byte of progress. */
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly onAbort = (): void => {
    const reason: unknown = this.p.signal?.reason;
    this.destroy(reason instanceof Error ? reason : new Error('download aborted'));
  };

  constructor(p: DownloadParams) {
    super({ highWaterMark: 1024 * 1024 });
    this.p = p;
    this.total = p.size;
    this.received = p.start;
    if (p.signal?.aborted) {
      queueMicrotask(this.onAbort);
    } else {
      p.signal?.addEventListener('abort', this.onAbort, { once: true });
    }
  }

  override _read(): void {
    if (!this.started) {
      this.started = true;
      this.request();
    } else {
      this.source?.resume();
    }
  }

  override _destroy(err: Error | null, cb: (e?: Error | null) => void): void {
    clearTimeout(this.timer);
    this.p.signal?.removeEventListener('abort', this.onAbort);
    const s = this.source;
    this.source = undefined;
    s?.destroy();
    cb(err);
  }

  private request(): void {
    const offset = this.received;
    // The stored bytes, whatever the object's Content-Encoding: a storage service that transcodes
    // (Cloud Storage decompresses gzip-encoded objects for clients that do not accept gzip) would
    // otherwise hand over other bytes than those bosh.io's checksum covers. `decompress: false` keeps
    // them as they arrive.
    const headers: Record<string, string> = { 'accept-encoding': 'gzip' };
    if (offset > 0) {
      headers.range = `bytes=${offset}-`;
      const validator = this.etag ?? this.lastModified;
      if (validator !== undefined) headers['if-range'] = validator;
    }
    const t = this.p.timeoutMs;
    const req = this.p.got.stream(this.p.url, {
      headers,
      throwHttpErrors: false,
      retry: { limit: 0 },
      timeout: { lookup: t, connect: t, secureConnect: t, response: t, socket: t },
      hooks: {
        beforeRedirect: [(o) => void assertAllowedUrl(o.url as URL, this.p.allowedHosts, 'DOWNLOAD_FAILED')],
      },
    });
    this.source = req;
    let progressed = false;
    const current = (): boolean => this.source === req && !this.destroyed;

    req.once('response', (res: { statusCode: number; headers: IncomingHttpHeaders }) => {
      if (!current()) return;
      const outcome = this.checkResponse(offset, res.statusCode, res.headers);
      if (outcome) this.settle(req, progressed, outcome);
    });
    req.on('data', (chunk: Buffer) => {
      if (!current()) return;
      progressed = true;
      this.received += chunk.length;
      if (this.total !== undefined && this.received > this.total) {
        const fail = new MirrorError(
          'DOWNLOAD_FAILED',
          `received more than the declared ${this.total} bytes from ${this.p.url.host}`,
          { permanent: false },
        );
        this.settle(req, progressed, { fail });
        return;
      }
      this.p.onBytes?.(this.received);
      if (!this.push(chunk)) req.pause();
    });
    req.once('end', () => {
      if (!current()) return;
      if (this.total === undefined || this.received === this.total) {
        this.source = undefined;
        this.p.signal?.removeEventListener('abort', this.onAbort);
        this.push(null);
      } else {
        this.settle(req, progressed, {
          retry: `connection ended at ${this.received} of ${this.total} bytes`,
        });
      }
    });
    req.once('error', (e: unknown) => {
      if (!current()) return;
      const refused = mirrorCause(e);
      this.settle(req, progressed, refused ? { fail: refused } : { retry: describe(e) });
    });
  }

  /** Undefined when the response may be streamed; otherwise why not. */
  private checkResponse(offset: number, status: number, h: IncomingHttpHeaders): Outcome | undefined {
    const host = this.p.url.host;
    const transient = (msg: string): Outcome => ({
      fail: new MirrorError('DOWNLOAD_FAILED', msg, { permanent: false }),
    });
    if (RETRY_STATUS.includes(status)) return { retry: `HTTP ${status}` };
    const transcoded = transcoding(h);
    if (transcoded) {
      return transient(
        `${host} transcoded the archive (${transcoded}): those are not the bytes bosh.io's checksum covers; trying again later`,
      );
    }
    if (offset === 0) {
      if (status !== 200) {
        return {
          fail: new MirrorError(
            'DOWNLOAD_FAILED',
            `${host} answered HTTP ${status} for ${this.p.url.pathname}`,
            {
              permanent: status >= 400 && status < 500,
            },
          ),
        };
      }
      const length = h['content-length'] === undefined ? undefined : Number(h['content-length']);
      if (length !== undefined && this.total !== undefined && length !== this.total) {
        return transient(`${host} serves ${length} bytes but bosh.io declares ${this.total}`);
      }
      this.total ??= length;
      const etag = h.etag;
      // A weak ETag cannot be used in If-Range; Last-Modified then guards the resume.
      this.etag = etag !== undefined && !etag.startsWith('W/') ? etag : undefined;
      this.lastModified = h['last-modified'];
      return undefined;
    }
    if (status === 200) {
      return transient(
        `${host} sent the whole object again when resuming at byte ${offset}: it changed since the download ` +
          `started (or ignores ranges); not splicing two objects, restart the pass`,
      );
    }
    if (status !== 206) return transient(`${host} answered HTTP ${status} when resuming at byte ${offset}`);
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(h['content-range'] ?? '');
    const start = m ? Number(m[1]) : NaN;
    const total = m && m[3] !== '*' ? Number(m[3]) : undefined;
    if (start !== offset || (this.total !== undefined && total !== this.total)) {
      return transient(
        `${host} answered a resume at byte ${offset} with Content-Range "${h['content-range'] ?? ''}" ` +
          `(expected bytes ${offset}-…/${this.total ?? '?'}): the object changed, restart the pass`,
      );
    }
    if (this.etag !== undefined && h.etag !== undefined && h.etag !== this.etag) {
      return transient(`${host} changed the object's ETag during the download; restart the pass`);
    }
    this.total ??= total;
    // A download that started past byte 0 learns its validators from its first ranged answer.
    if (this.etag === undefined && this.lastModified === undefined) {
      this.etag = h.etag !== undefined && !h.etag.startsWith('W/') ? h.etag : undefined;
      this.lastModified = h['last-modified'];
    }
    return undefined;
  }

  /** Ends the current request and either resumes after a backoff or fails the stream. */
  private settle(req: Request, progressed: boolean, outcome: Outcome): void {
    this.source = undefined;
    req.destroy();
    if ('fail' in outcome) {
      this.destroy(outcome.fail);
      return;
    }
    if (progressed) this.failures = 0;
    this.failures++;
    if (this.failures > this.p.maxResumes) {
      this.destroy(
        new MirrorError(
          'DOWNLOAD_FAILED',
          `download from ${this.p.url.host} failed ${this.failures} times in a row without progress ` +
            `(at byte ${this.received}): ${outcome.retry}`,
          { permanent: false },
        ),
      );
      return;
    }
    if (
      this.received > 0 &&
      this.etag === undefined &&
      this.lastModified === undefined &&
      this.total === undefined
    ) {
      this.destroy(
        new MirrorError(
          'DOWNLOAD_FAILED',
          `cannot resume: ${this.p.url.host} gave neither a validator nor a size`,
          {
            permanent: false,
          },
        ),
      );
      return;
    }
    const delay = backoff(this.p.retryBaseMs, this.failures);
    this.p.log.warn('boshio.download-resume', {
      host: this.p.url.host,
      receivedBytes: this.received,
      totalBytes: this.total,
      attempt: this.failures,
      delayMs: delay,
      reason: outcome.retry,
    });
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (!this.destroyed) this.request();
    }, delay);
  }
}
