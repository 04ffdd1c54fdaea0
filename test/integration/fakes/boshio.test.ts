/** The fake bosh.io is only worth testing against if it is as strict as the real one. */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseRange, startFakeBoshIo, type BoshIoApiEntry, type FakeBoshIo } from '../../fakes/boshio';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';

/** The first entries of a real bosh.io answer for the jammy series, verbatim. */
const REAL: BoshIoApiEntry[] = [
  {
    name: SERIES,
    version: '1.682',
    regular: {
      url: 'https://storage.googleapis.com/bosh-core-stemcells/1.682/bosh-stemcell-1.682-azure-hyperv-ubuntu-jammy-go_agent.tgz',
      size: 1253467594,
      md5: '',
      sha1: 'c7d0acef5605a4c4e9dd55e03bbef5eb08b30137',
      sha256: '181fa9d348fd9af2d1ff55da9c081889873c39abb75a18b2e9622d92b2eae52f',
    },
  },
  {
    name: SERIES,
    version: '1.651',
    regular: {
      url: 'https://storage.googleapis.com/bosh-core-stemcells/1.651/bosh-stemcell-1.651-azure-hyperv-ubuntu-jammy-go_agent.tgz',
      size: 1252854456,
      md5: '',
      sha1: '1175e254f77f19c24b8a1550d3f2ad253a0a59e9',
      sha256: 'e41b0d0da9457b81f64b48985b4b99f1e7b1d043d170da346484c0bbf5a09ce2',
    },
  },
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  error?: Error;
}

/** A plain node:http GET (no client library between the test and the fake). */
function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      const done = (error?: Error) =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          ...(error ? { error } : {}),
        });
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => done());
      res.on('error', (e) => done(e));
    });
    req.on('error', reject);
    req.end();
  });
}

let fake: FakeBoshIo;
let body: Buffer;
let dl: string;

beforeAll(async () => {
  fake = await startFakeBoshIo();
  body = randomBytes(1024 * 1024 + 17);
  dl = (await fake.addRelease({ series: SERIES, version: '1.700', body })).regular.url;
});
afterAll(async () => {
  await fake.close();
});
beforeEach(() => fake.reset());

describe('API', () => {
  it('answers like bosh.io: the real entry shape, newest first, md5 empty', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-real-go_agent';
    fake.seed(series, REAL);
    const a = await get(`${fake.url}/api/v1/stemcells/${series}`);
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe('application/json');
    expect(JSON.parse(a.body.toString())).toEqual(REAL);
  });

  it('seeds from a saved answer', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boshio-'));
    try {
      const file = join(dir, 'answer.json');
      writeFileSync(file, JSON.stringify(REAL));
      fake.seedFromFile('bosh-azure-hyperv-ubuntu-file-go_agent', file);
      const a = await get(`${fake.url}/api/v1/stemcells/bosh-azure-hyperv-ubuntu-file-go_agent?all=1`);
      expect(JSON.parse(a.body.toString())).toEqual(REAL);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('caps the answer at 40 entries unless ?all=1', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-cap-go_agent';
    fake.seed(
      series,
      Array.from({ length: 45 }, (_, i) => ({ ...REAL[0]!, name: series, version: `1.${45 - i}` })),
    );
    const capped = JSON.parse(
      (await get(`${fake.url}/api/v1/stemcells/${series}`)).body.toString(),
    ) as unknown[];
    const all = JSON.parse(
      (await get(`${fake.url}/api/v1/stemcells/${series}?all=1`)).body.toString(),
    ) as unknown[];
    expect(capped).toHaveLength(40);
    expect(all).toHaveLength(45);
    expect(all.slice(0, 40)).toEqual(capped);
  });

  it('answers 200 [] for an unknown series, 404 for other paths, 405 for other methods', async () => {
    const a = await get(`${fake.url}/api/v1/stemcells/bosh-nothing-here?all=1`);
    expect([a.status, a.body.toString()]).toEqual([200, '[]']);
    expect((await get(`${fake.url}/api/v2/stemcells/x`)).status).toBe(404);
    expect((await get(`${fake.url}/api/v1/stemcells/a/b`)).status).toBe(404);
    expect((await get(`${fake.url}/api/v1/stemcells/${SERIES}`, {}, 'POST')).status).toBe(405);
  });

  it('publishes computed checksums, or wrong ones when told to', async () => {
    const e = await fake.addRelease({ series: SERIES, version: '1.701', body: Buffer.from('abc') });
    expect(e.regular).toMatchObject({
      size: 3,
      md5: '',
      sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d',
      sha256: createHash('sha256').update('abc').digest('hex'),
    });
    const wrong = await fake.addRelease({
      series: SERIES,
      version: '1.702',
      body: Buffer.from('abc'),
      publish: { sha256: '0'.repeat(64) },
    });
    expect(wrong.regular.sha256).toBe('0'.repeat(64));
    const list = JSON.parse(
      (await get(`${fake.url}/api/v1/stemcells/${SERIES}`)).body.toString(),
    ) as BoshIoApiEntry[];
    expect(list.map((x) => x.version)).toEqual(['1.702', '1.701', '1.700']);
  });
});

describe('downloads', () => {
  it('serves the whole object with ETag, Last-Modified and Accept-Ranges', async () => {
    const a = await get(dl);
    expect(a.status).toBe(200);
    expect(a.body.equals(body)).toBe(true);
    expect(a.headers['content-length']).toBe(String(body.length));
    expect(a.headers['accept-ranges']).toBe('bytes');
    expect(a.headers.etag).toMatch(/^"[0-9a-f]{16}-\d+"$/);
    expect(Number.isNaN(Date.parse(String(a.headers['last-modified'])))).toBe(false);
  });

  it('serves bytes=N-, N-M and suffix ranges as 206 with Content-Range', async () => {
    const open = await get(dl, { range: 'bytes=1000-' });
    expect(open.status).toBe(206);
    expect(open.headers['content-range']).toBe(`bytes 1000-${body.length - 1}/${body.length}`);
    expect(open.body.equals(body.subarray(1000))).toBe(true);
    const closed = await get(dl, { range: 'bytes=10-19' });
    expect([closed.status, closed.headers['content-range']]).toEqual([206, `bytes 10-19/${body.length}`]);
    expect(closed.body.equals(body.subarray(10, 20))).toBe(true);
    const clamped = await get(dl, { range: `bytes=5-${body.length + 100}` });
    expect(clamped.body.equals(body.subarray(5))).toBe(true);
    const suffix = await get(dl, { range: 'bytes=-7' });
    expect(suffix.body.equals(body.subarray(body.length - 7))).toBe(true);
  });

  it('answers 416 with bytes */size for an unsatisfiable range', async () => {
    const a = await get(dl, { range: `bytes=${body.length}-` });
    expect(a.status).toBe(416);
    expect(a.headers['content-range']).toBe(`bytes */${body.length}`);
    expect(a.body).toHaveLength(0);
  });

  it('ignores malformed and multi-part ranges (a full 200)', async () => {
    for (const range of ['bytes=5-2', 'items=0-1', 'bytes=0-1,5-6', 'bytes=-']) {
      const a = await get(dl, { range });
      expect([range, a.status, a.body.length]).toEqual([range, 200, body.length]);
    }
  });

  it('honours If-Range: the current ETag or date gives 206, anything else the full 200', async () => {
    const head = await get(dl, {}, 'HEAD');
    const etag = String(head.headers.etag);
    const date = String(head.headers['last-modified']);
    expect((await get(dl, { range: 'bytes=4-', 'if-range': etag })).status).toBe(206);
    expect((await get(dl, { range: 'bytes=4-', 'if-range': date })).status).toBe(206);
    const stale = await get(dl, { range: 'bytes=4-', 'if-range': '"0000000000000000-0"' });
    expect([stale.status, stale.body.length]).toEqual([200, body.length]);
    expect((await get(dl, { range: 'bytes=4-', 'if-range': `W/${etag}` })).status).toBe(200);
    expect((await get(dl, { range: 'bytes=4-', 'if-range': new Date(0).toUTCString() })).status).toBe(200);
  });

  it('gives replaced content a new ETag and Last-Modified, so an old If-Range no longer matches', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-replace-go_agent';
    const url = (await fake.addRelease({ series, version: '1.1', body: Buffer.from('old content') })).regular
      .url;
    const before = await get(url);
    await fake.replaceContent(series, '1.1', Buffer.from('new content!'));
    const after = await get(url, { range: 'bytes=4-', 'if-range': String(before.headers.etag) });
    expect(after.status).toBe(200);
    expect(after.body.toString()).toBe('new content!');
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(after.headers['last-modified']).not.toBe(before.headers['last-modified']);
  });

  it('serves a file body by ranges', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'boshio-'));
    try {
      const file = join(dir, 'x.tgz');
      writeFileSync(file, body);
      const url = (
        await fake.addRelease({
          series: 'bosh-azure-hyperv-ubuntu-file-go_agent',
          version: '1.1',
          body: { path: file },
        })
      ).regular.url;
      expect((await get(url)).body.equals(body)).toBe(true);
      expect(
        (await get(url, { range: 'bytes=100000-100009' })).body.equals(body.subarray(100000, 100010)),
      ).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('answers 404 for an object it does not hold', async () => {
    expect((await get(`${fake.url}/d/${SERIES}/9.9/x.tgz`)).status).toBe(404);
  });
});

describe('faults', () => {
  it('cuts the connection after N body bytes, once per queued cut', async () => {
    fake.cutAfter(5000);
    const cut = await get(dl);
    expect(cut.error).toBeDefined();
    expect(cut.body.length).toBe(5000);
    expect(cut.body.equals(body.subarray(0, 5000))).toBe(true);
    const next = await get(dl);
    expect(next.body.equals(body)).toBe(true);
    expect(fake.requests.map((r) => r.cutAfter)).toEqual([5000, undefined]);
    expect(fake.fired.cuts).toBe(1);
  });

  it('answers 5xx or 429 with Retry-After for the next K requests of a route', async () => {
    fake.failNext(2, { status: 429, retryAfter: '3', route: 'download' });
    const api = await get(`${fake.url}/api/v1/stemcells/${SERIES}`);
    const a = await get(dl);
    const b = await get(dl);
    const c = await get(dl);
    expect([api.status, a.status, b.status, c.status]).toEqual([200, 429, 429, 200]);
    expect(a.headers['retry-after']).toBe('3');
  });

  it('throttles without changing the bytes', async () => {
    fake.throttle(4 * 1024 * 1024);
    const a = await get(dl, { range: 'bytes=0-200000' });
    expect(a.body.equals(body.subarray(0, 200001))).toBe(true);
  });

  it('replaces the content mid-download and cuts, as a re-upload during a transfer would', async () => {
    const series = 'bosh-azure-hyperv-ubuntu-mid-go_agent';
    const url = (await fake.addRelease({ series, version: '1.1', body: randomBytes(300_000) })).regular.url;
    const etag = String((await get(url, {}, 'HEAD')).headers.etag);
    const next = randomBytes(300_000);
    fake.replaceMidDownload(1000, next);
    const cut = await get(url);
    expect(cut.body.length).toBe(1000);
    const resumed = await get(url, { range: 'bytes=1000-', 'if-range': etag });
    expect(resumed.status).toBe(200);
    expect(resumed.body.equals(next)).toBe(true);
    expect(fake.fired.replacements).toBe(1);
  });

  it('redirects downloads to another base URL', async () => {
    fake.redirectDownloads(`http://localhost:${fake.port}`);
    const a = await get(dl);
    expect(a.status).toBe(302);
    expect(a.headers.location).toBe(`http://localhost:${fake.port}${new URL(dl).pathname}`);
  });
});

describe('parseRange', () => {
  it('follows RFC 9110 for single ranges', () => {
    expect(parseRange(undefined, 10)).toEqual({ kind: 'full' });
    expect(parseRange('bytes=0-', 10)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=-0', 10)).toEqual({ kind: 'unsatisfiable' });
    expect(parseRange('bytes=-20', 10)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(parseRange('bytes=10-', 10)).toEqual({ kind: 'unsatisfiable' });
  });
});
