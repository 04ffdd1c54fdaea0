import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { BoshIoClient, closestNames, type StemcellRelease } from '../../../src/lib/boshio/client';
import { MirrorError } from '../../../src/lib/core/errors';
import { createLogger } from '../../../src/lib/core/log';
import { closedPort } from '../../support/ports';
import { startFakeBoshIo, type BoshIoApiEntry, type FakeBoshIo } from '../../fakes/boshio';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
const SHA = (s: string) => createHash('sha256').update(s).digest('hex');

function entry(version: string, over: Partial<BoshIoApiEntry> = {}): BoshIoApiEntry {
  return {
    name: SERIES,
    version,
    regular: {
      url: `https://stemcells.example.test/${version}.tgz`,
      size: 1000,
      md5: '',
      sha1: '',
      sha256: SHA(version),
    },
    ...over,
  };
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function failure(p: Promise<unknown> | (() => unknown)): Promise<MirrorError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    expect(e).toBeInstanceOf(MirrorError);
    return e as MirrorError;
  }
  throw new Error('expected a failure');
}

let fake: FakeBoshIo;
let lines: string[];

function client(over: Partial<ConstructorParameters<typeof BoshIoClient>[0]> = {}): BoshIoClient {
  return new BoshIoClient({
    baseUrl: fake.url,
    allowedHosts: ['127.0.0.1'],
    log: createLogger((_l, line) => lines.push(line)),
    retryBaseMs: 1,
    retries: 3,
    timeoutMs: 5_000,
    ...over,
  });
}

beforeAll(async () => {
  fake = await startFakeBoshIo();
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => {
  fake.reset();
  lines = [];
});

describe('closestNames', () => {
  it('orders by edit distance, ties in the given order', () => {
    expect(closestNames('1.683', ['1.600', '1.682', '621.125', '1.681'], 2)).toEqual(['1.682', '1.681']);
    expect(closestNames('x', [], 3)).toEqual([]);
  });
});

describe('listReleases / resolve', () => {
  it('orders by numeric version, not by text or by the order bosh.io sent', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-order-go_agent';
    const versions = ['1.9', '621.125', '1.10', '1.2', '1.682', '0.5', '1.682.1'];
    fake.seed(
      series,
      versions.map((v) => ({ ...entry(v), name: series })),
    );
    const list = await client().listReleases(series);
    expect(list.map((r) => r.version)).toEqual(['621.125', '1.682.1', '1.682', '1.10', '1.9', '1.2', '0.5']);
    expect((await client().resolve(series, 'latest')).version).toBe('621.125');
    const exact = await client().resolve(series, '1.10');
    expect(exact).toEqual({
      series,
      version: '1.10',
      url: 'https://stemcells.example.test/1.10.tgz',
      size: 1000,
      sha256: SHA('1.10'),
      sha1: undefined,
    });
  });

  it('asks for ?all=1, so versions past the first 40 are found', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-many-go_agent';
    const entries = Array.from({ length: 45 }, (_, i) => ({ ...entry(`1.${45 - i}`), name: series }));
    fake.seed(series, entries);
    const list = await client().listReleases(series);
    expect(list).toHaveLength(45);
    expect((await client().resolve(series, '1.1')).version).toBe('1.1');
    expect(fake.requests.every((r) => new URL(r.path, 'http://x').searchParams.get('all') === '1')).toBe(
      true,
    );
  });

  it('skips malformed entries with a log line and keeps the good ones', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-bad-go_agent';
    const good = { ...entry('1.5'), name: series };
    fake.seed(series, [
      { ...entry('1.7'), name: 'bosh-other-series' },
      { ...entry('1.6'), name: series, version: '1.6-rc' },
      { ...entry('1.4'), name: series, regular: { ...good.regular, sha256: 'nothex' } },
      { ...entry('1.3'), name: series, regular: { ...good.regular, size: -1 } },
      { name: series, version: '1.2' } as unknown as BoshIoApiEntry,
      good,
      { ...good },
    ]);
    const list = await client().listReleases(series);
    expect(list.map((r) => r.version)).toEqual(['1.5']);
    const skipped = lines.filter((l) => l.includes('boshio.entry-skipped'));
    expect(skipped).toHaveLength(6);
    expect(skipped.join('\n')).toMatch(/bad sha256/);
    expect(skipped.join('\n')).toMatch(/duplicate version 1\.5/);
  });

  it('an unknown series is NOT_FOUND saying so', async () => {
    const e = await failure(client().resolve('bosh-azure-hyperv-ubuntu-nosuch-go_agent', 'latest'));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.permanent).toBe(true);
    expect(e.message).toMatch(/no stemcells for series "bosh-azure-hyperv-ubuntu-nosuch-go_agent"/);
  });

  it('a series bosh.io publishes only as light stemcells is INVALID_REQUEST saying it has no VHD', async () => {
    const series = 'bosh-azure-hyperv-windows2019-go_agent';
    fake.seed(
      series,
      ['2019.90', '2019.89'].map((version) => ({
        name: series,
        version,
        light: {
          url: `https://stemcells.example.test/light-${version}.tgz`,
          size: 9000,
          md5: '',
          sha1: '',
          sha256: SHA(version),
        },
      })),
    );
    const e = await failure(client().resolve(series, 'latest'));
    expect(e.code).toBe('INVALID_REQUEST');
    expect(e.permanent).toBe(true);
    expect(e.message).toMatch(
      /only light stemcells for "bosh-azure-hyperv-windows2019-go_agent" \(2 versions\)/,
    );
    expect(e.message).toContain('no VHD');
    expect(lines.filter((l) => l.includes('boshio.entry-skipped'))).toHaveLength(0);
  });

  it('an unknown version is NOT_FOUND naming the closest versions', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-close-go_agent';
    fake.seed(
      series,
      ['1.682', '1.681', '1.680', '1.600', '621.125'].map((v) => ({ ...entry(v), name: series })),
    );
    const e = await failure(client().resolve(series, '1.683'));
    expect(e.code).toBe('NOT_FOUND');
    expect(e.message).toContain('closest: 1.682, 1.681, 1.680');
    expect(e.message).toContain('latest is 621.125');
  });

  it('refuses malformed series and versions before any request', async () => {
    expect((await failure(client().resolve('../etc', 'latest'))).code).toBe('INVALID_REQUEST');
    expect((await failure(client().resolve(SERIES, '1.2/../x'))).code).toBe('INVALID_REQUEST');
    expect((await failure(client().listReleases('bosh-azure?x=1'))).code).toBe('INVALID_REQUEST');
    expect(fake.requests).toHaveLength(0);
  });

  it('retries 5xx and 429, then succeeds', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-retry-go_agent';
    fake.seed(series, [{ ...entry('1.1'), name: series }]);
    fake.failNext(1, { status: 503, route: 'api' });
    fake.failNext(1, { status: 429, retryAfter: '0', route: 'api' });
    fake.failNext(1, { status: 502, route: 'api' });
    expect((await client().resolve(series, 'latest')).version).toBe('1.1');
    expect(fake.requests.map((r) => r.status)).toEqual([503, 429, 502, 200]);
    expect(lines.filter((l) => l.includes('boshio.api-retry'))).toHaveLength(3);
  });

  it('is UPSTREAM_UNAVAILABLE (transient) when 5xx outlasts the retries', async () => {
    fake.failNext(3, { status: 500, route: 'api' });
    const e = await failure(client({ retries: 2 }).resolve(SERIES, 'latest'));
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.permanent).toBe(false);
    expect(e.message).toContain('HTTP 500');
    expect(fake.requests).toHaveLength(3);
  });

  it('is UPSTREAM_UNAVAILABLE (transient) when bosh.io cannot be reached', async () => {
    const port = await closedPort();
    const e = await failure(
      client({ baseUrl: `http://127.0.0.1:${port}`, retries: 1 }).resolve(SERIES, 'latest'),
    );
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.permanent).toBe(false);
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('refuses an API answer larger than 8 MiB instead of buffering it', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-huge-go_agent';
    fake.seed(
      series,
      Array.from({ length: 50_000 }, (_, i) => ({ ...entry(`1.${i}`), name: series })),
    );
    const e = await failure(client({ retries: 0 }).listReleases(series));
    expect(e.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(e.message).toContain('exceeds 8388608 bytes');
  });

  it('an answer that is not JSON, or JSON but not a list, is UPSTREAM_UNAVAILABLE', async () => {
    // A proxy's HTML error page with status 200, then an object where a list belongs.
    const answers = ['<html><body>Service temporarily unavailable</body></html>', '{"error":"maintenance"}'];
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(answers.shift());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const c = client({ baseUrl: `http://127.0.0.1:${port}`, retries: 0 });
      const notJson = await failure(c.listReleases(SERIES));
      expect(notJson).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', permanent: false });
      const notList = await failure(c.listReleases(SERIES));
      expect(notList).toMatchObject({ code: 'UPSTREAM_UNAVAILABLE', permanent: false });
      expect(notList.message).toMatch(/something other than a list/);
    } finally {
      server.close();
    }
  });

  it('refuses an API base that is plain http to a non-loopback host', () => {
    expect(() => new BoshIoClient({ baseUrl: 'http://bosh.example.test', allowedHosts: [] })).toThrow(
      /only https/,
    );
  });
});

describe('openDownload', () => {
  const SIZE = 4 * 1024 * 1024 + 123;
  let body: Buffer;
  let release: StemcellRelease;

  beforeAll(async () => {
    body = randomBytes(SIZE);
    await fake.addRelease({ series: SERIES, version: '1.100', body });
    release = await client().resolve(SERIES, '1.100');
    fake.reset();
  });

  it('downloads the published bytes', async () => {
    let seen = 0;
    const got = await buffer(client().openDownload(release, { onBytes: (n) => (seen = n) }));
    expect(sha256(got)).toBe(release.sha256);
    expect(seen).toBe(SIZE);
    expect(fake.requests.map((r) => [r.range, r.status])).toEqual([[undefined, 200]]);
  });

  describe('from a store that transcodes gzip-encoded objects', () => {
    let gz: StemcellRelease;
    beforeAll(async () => {
      await fake.addRelease({ series: SERIES, version: '1.101', body: gzipSync(randomBytes(256 * 1024)) });
      gz = await client().resolve(SERIES, '1.101');
      fake.reset();
    });

    it('asks for the stored bytes (Accept-Encoding: gzip) and gets exactly them', async () => {
      fake.transcode('honour');
      const got = await buffer(client().openDownload(gz));
      expect(sha256(got)).toBe(gz.sha256);
      expect(fake.requests.map((r) => r.acceptEncoding)).toEqual(['gzip']);
    });

    it('refuses a body that was transcoded anyway, as a transient DOWNLOAD_FAILED saying so', async () => {
      fake.transcode('always');
      const e = await failure(buffer(client().openDownload(gz)));
      expect(e.code).toBe('DOWNLOAD_FAILED');
      expect(e.permanent).toBe(false);
      expect(e.message).toContain('transcoded the archive');
    });
  });

  it('resumes with Range + If-Range after cuts at several offsets, byte-identical', async () => {
    fake.cutAfter(100_000);
    fake.cutAfter(1);
    fake.cutAfter(1_500_000);
    fake.cutAfter(SIZE - 1_600_001 - 7);
    const got = await buffer(client().openDownload(release, { maxResumes: 1 }));
    expect(sha256(got)).toBe(release.sha256);
    expect(fake.fired.cuts).toBe(4);
    const log = fake.requests;
    expect(log.map((r) => r.range)).toEqual([
      undefined,
      'bytes=100000-',
      'bytes=100001-',
      'bytes=1600001-',
      `bytes=${SIZE - 7}-`,
    ]);
    expect(log.map((r) => r.status)).toEqual([200, 206, 206, 206, 206]);
    const validators = log.slice(1).map((r) => r.ifRange);
    expect(validators[0]).toMatch(/^"[0-9a-f]{16}-\d+"$/);
    expect(new Set(validators).size).toBe(1);
    expect(lines.filter((l) => l.includes('boshio.download-resume'))).toHaveLength(4);
  });

  it('resumes after 5xx answers and a cut before any body byte', async () => {
    fake.failNext(2, { status: 503, route: 'download' });
    fake.cutAfter(0);
    const got = await buffer(client().openDownload(release));
    expect(sha256(got)).toBe(release.sha256);
    expect(fake.requests.map((r) => r.status)).toEqual([503, 503, 200, 200]);
  });

  it('gives up (transient DOWNLOAD_FAILED) after maxResumes failures without progress', async () => {
    fake.failNext(3, { status: 503, route: 'download' });
    const e = await failure(buffer(client().openDownload(release, { maxResumes: 2 })));
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.permanent).toBe(false);
    expect(e.message).toMatch(/3 times in a row/);
    expect(fake.requests).toHaveLength(3);
  });

  it('never splices two objects: content replaced mid-download fails the pass', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-swap-go_agent';
    const original = randomBytes(2 * 1024 * 1024);
    await fake.addRelease({ series, version: '2.1', body: original });
    const r = await client().resolve(series, '2.1');
    fake.replaceMidDownload(700_000, randomBytes(original.length));
    let received = 0;
    const e = await failure(buffer(client().openDownload(r, { onBytes: (n) => (received = n) })));
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.permanent).toBe(false);
    expect(e.message).toMatch(/not splicing/);
    expect(received).toBe(700_000);
    const downloads = fake.requests.filter((q) => q.path.startsWith('/d/'));
    expect(downloads).toHaveLength(2);
    const resume = downloads[1]!;
    expect(resume.range).toBe('bytes=700000-');
    expect(resume.ifRange).toMatch(/^"/);
    expect(resume.status).toBe(200);
  });

  it('fails when the server sends another size than bosh.io declares', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-size-go_agent';
    const b = randomBytes(300_000);
    await fake.addRelease({ series, version: '3.1', body: b, publish: { size: b.length - 10 } });
    const r = await client().resolve(series, '3.1');
    const e = await failure(buffer(client().openDownload(r)));
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.message).toContain(`serves ${b.length} bytes but bosh.io declares ${b.length - 10}`);
  });

  it('fails when more bytes arrive than bosh.io declares (no Content-Length to check first)', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-over-go_agent';
    const b = randomBytes(300_000);
    await fake.addRelease({ series, version: '3.2', body: b, publish: { size: 200_000 } });
    const r = await client().resolve(series, '3.2');
    fake.omitContentLength(true);
    let received = 0;
    const e = await failure(buffer(client().openDownload(r, { onBytes: (n) => (received = n) })));
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.message).toContain('more than the declared 200000 bytes');
    expect(received).toBeLessThanOrEqual(200_000);
  });

  it('resumes a chunked download (no Content-Length) by the size bosh.io declares', async () => {
    fake.omitContentLength(true);
    fake.cutAfter(250_000);
    const got = await buffer(client().openDownload(release));
    expect(sha256(got)).toBe(release.sha256);
    expect(fake.requests.map((r) => [r.range, r.status])).toEqual([
      [undefined, 200],
      ['bytes=250000-', 206],
    ]);
  });

  it('takes the size from the response when bosh.io gives none, and still resumes', async () => {
    fake.cutAfter(1_000_000);
    const got = await buffer(client().openDownload({ ...release, size: undefined }));
    expect(sha256(got)).toBe(release.sha256);
    expect(fake.requests.map((r) => r.status)).toEqual([200, 206]);
  });

  it('refuses a host that is not allowed, before any request', () => {
    const other = { ...release, url: release.url.replace('127.0.0.1', 'localhost') };
    let thrown: unknown;
    try {
      client().openDownload(other);
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(MirrorError);
    expect((thrown as MirrorError).code).toBe('DOWNLOAD_FAILED');
    expect((thrown as MirrorError).permanent).toBe(true);
    expect((thrown as MirrorError).message).toContain('"localhost"');
    expect(fake.requests).toHaveLength(0);
  });

  it('refuses plain http to a host that is not loopback, even when allowed', () => {
    const c = client({ allowedHosts: ['127.0.0.1', 'mirror.example.test'] });
    expect(() => c.openDownload({ ...release, url: 'http://mirror.example.test/x.tgz' })).toThrow(
      /only https/,
    );
  });

  it('refuses a redirect to a host that is not allowed', async () => {
    fake.redirectDownloads(`http://localhost:${fake.port}`);
    const e = await failure(buffer(client().openDownload(release)));
    expect(e.code).toBe('DOWNLOAD_FAILED');
    expect(e.permanent).toBe(true);
    expect(e.message).toContain('"localhost"');
    expect(fake.requests.map((r) => r.status)).toEqual([302]);
  });

  it('follows a redirect to an allowed host', async () => {
    fake.redirectDownloads(`http://localhost:${fake.port}`);
    const got = await buffer(client({ allowedHosts: ['127.0.0.1', 'localhost'] }).openDownload(release));
    expect(sha256(got)).toBe(release.sha256);
    expect(fake.requests.map((r) => [r.host, r.status])).toEqual([
      [`127.0.0.1:${fake.port}`, 302],
      [`localhost:${fake.port}`, 200],
    ]);
  });

  it('stops and closes the connection when the signal aborts mid-body', async () => {
    fake.throttle(256 * 1024);
    const ac = new AbortController();
    const s = client().openDownload(release, {
      signal: ac.signal,
      onBytes: (n) => {
        if (n >= 64 * 1024) ac.abort();
      },
    });
    const err = await buffer(s).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as Error).name).toBe('AbortError');
    expect(s.destroyed).toBe(true);
    await vi.waitFor(() => expect(fake.inFlight()).toBe(0));
  });

  it('stops during the backoff before a resume when the signal aborts', async () => {
    fake.failNext(1, { status: 503, route: 'download' });
    const ac = new AbortController();
    const s = client({ retryBaseMs: 600_000 }).openDownload(release, { signal: ac.signal });
    const done = buffer(s).then(
      () => undefined,
      (e: unknown) => e,
    );
    await vi.waitFor(() => expect(lines.some((l) => l.includes('boshio.download-resume'))).toBe(true));
    ac.abort();
    expect(((await done) as Error).name).toBe('AbortError');
    expect(fake.requests).toHaveLength(1);
  });

  it('pulls only as fast as it is read', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-slow-go_agent';
    const big = randomBytes(32 * 1024 * 1024);
    await fake.addRelease({ series, version: '4.1', body: big });
    const r = await client().resolve(series, '4.1');
    let received = 0;
    const s = client().openDownload(r, { onBytes: (n) => (received = n) });
    const first = await new Promise<Buffer>((resolve) =>
      s.once('readable', () => resolve(s.read(1) as Buffer)),
    );
    expect(first).toHaveLength(1);
    // Let the sender fill every buffer it can; a reader that does not read must stop it.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(received).toBeLessThan(big.length / 2);
    expect(s.readableLength).toBeLessThanOrEqual(2 * 1024 * 1024);
    const rest = await buffer(s);
    expect(sha256(Buffer.concat([first, rest]))).toBe(sha256(big));
  });
});
