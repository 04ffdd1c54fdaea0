/**
 * The HTTP API as an operator calls it (DESIGN §3): POST /api/mirror and the status routes, served
 * by the local host from the real function files, against Azurite and the strict fakes. Requests the
 * API refuses must leave no job row and no queue message behind, so most of these tests run a host
 * that serves only the HTTP functions: nothing drains the queue, and a peek shows what was sent.
 */
import { request as httpRequest } from 'node:http';
import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS_TABLE } from '../../src/lib/azure/storage-clients';
import type { Job } from '../../src/lib/jobs/job';
import { closedPort } from '../support/ports';
import type { LocalHost } from '../../src/local/host';
import { makeStemcell } from '../support/stemcell-fixture';
import { SERIES, startWorld, type World } from '../support/world';

/** A second Azure series, used only for listing (its releases are never downloaded). */
const NOBLE = 'bosh-azure-hyperv-ubuntu-noble';

let world: World;
let host: LocalHost | undefined;

beforeAll(async () => {
  world = await startWorld();
  // The real stemcell of this file; the others below are API entries only.
  await world.addStemcell('1.682', { vhdMiB: 8 });
  for (const v of ['1.681', '1.680', '1.600']) {
    await world.boshio.addRelease({ series: SERIES, version: v, body: Buffer.from(`not a stemcell ${v}`) });
  }
  for (const v of ['1.1', '1.2', '1.3', '1.4', '1.5']) {
    await world.boshio.addRelease({ series: NOBLE, version: v, body: Buffer.from(`not a stemcell ${v}`) });
  }
});

afterAll(async () => world?.close());

/** Starts a host with the world's settings (plus `over`); `httpOnly` leaves the queues unpolled. */
async function startHost(httpOnly: boolean, over: Record<string, string> = {}): Promise<LocalHost> {
  host = await world.startHost({ over, kinds: httpOnly ? ['http'] : ['http', 'queue', 'timer'] });
  return host;
}

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

async function call(path: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${host!.url}${path}`, init);
  const text = await res.text();
  return {
    status: res.status,
    headers: res.headers,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

function post(body: unknown, contentType = 'application/json'): Promise<Answer> {
  return call('/api/mirror', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

function errorOf(a: Answer): { code: string; message: string } {
  return a.json.error as { code: string; message: string };
}

/** The messages waiting in the request queue, decoded as the Functions host decodes them. */
async function queued(): Promise<unknown[]> {
  const r = await world.queue.peekMessages({ numberOfMessages: 32 });
  return r.peekedMessageItems.map(
    (m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as unknown,
  );
}

async function allJobs(): Promise<Job[]> {
  const out: Job[] = [];
  let next: string | undefined;
  do {
    const page = await world.jobs.list({ limit: 200, ...(next ? { next } : {}) });
    out.push(...page.jobs);
    next = page.next;
  } while (next);
  return out;
}

/** Runs `act` and proves it created no job row and sent no message. */
async function createsNothing(act: () => Promise<Answer>): Promise<Answer> {
  await world.queue.clearMessages();
  const before = (await allJobs()).map((j) => `${j.series}/${j.version}`).sort();
  const answer = await act();
  expect(await queued()).toEqual([]);
  expect((await allJobs()).map((j) => `${j.series}/${j.version}`).sort()).toEqual(before);
  return answer;
}

/** A chunked POST without Content-Length, so only the bytes themselves can tell the size. */
function postChunked(body: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(`${host!.url}/api/mirror`);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: 'POST', headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          }),
        );
      },
    );
    req.on('error', reject);
    for (let i = 0; i < body.length; i += 1000) req.write(body.slice(i, i + 1000));
    req.end();
  });
}

describe('POST /api/mirror', () => {
  beforeAll(async () => {
    await startHost(true);
  });

  it('is registered with authLevel function, as are the status routes', () => {
    const http = host!.functions.filter((f) => f.kind === 'http');
    expect(http.map((f) => [f.name, f.route, f.methods, f.authLevel]).sort()).toEqual([
      ['mirrorRequest', 'mirror', ['POST'], 'function'],
      ['mirrorStatus', 'mirror/{series?}/{version?}', ['GET'], 'function'],
    ]);
  });

  it('resolves "latest" before answering 202 with Location, Retry-After and the status URL', async () => {
    await world.queue.clearMessages();
    const a = await post({ series: SERIES, version: 'latest' });
    expect(a.status).toBe(202);
    const statusUrl = `${host!.url}/api/mirror/${SERIES}/1.682`;
    expect(a.json).toMatchObject({ series: SERIES, version: '1.682', status: 'queued', statusUrl });
    expect(a.headers.get('location')).toBe(statusUrl);
    expect(Number(a.headers.get('retry-after'))).toBeGreaterThan(0);
    // The job is there before the worker ever runs, and one message names the resolved version.
    const status = await call(`/api/mirror/${SERIES}/1.682`);
    expect(status.status).toBe(200);
    expect(status.json).toMatchObject({
      series: SERIES,
      version: '1.682',
      status: 'queued',
      stage: 'queued',
    });
    expect(await queued()).toEqual([{ series: SERIES, version: '1.682' }]);
    await world.queue.clearMessages();
  });

  it('defaults the version to latest and carries force into the message', async () => {
    await world.queue.clearMessages();
    const a = await post({ series: NOBLE, force: true });
    expect(a.status).toBe(202);
    expect(a.json).toMatchObject({ series: NOBLE, version: '1.5' });
    expect(await queued()).toEqual([{ series: NOBLE, version: '1.5', force: true }]);
    await world.queue.clearMessages();
  });

  it('refuses a body that is not JSON by content type: 400, nothing created', async () => {
    const a = await createsNothing(() => post(SERIES, 'text/plain'));
    expect(a.status).toBe(400);
    expect(errorOf(a)).toEqual({ code: 'INVALID_REQUEST', message: expect.stringContaining('Content-Type') });
    const none = await createsNothing(() =>
      call('/api/mirror', { method: 'POST', body: new Blob([JSON.stringify({ series: SERIES })]) }),
    );
    expect(none.status).toBe(400);
    expect(errorOf(none).message).toContain('application/json');
  });

  it('accepts a charset on the JSON content type', async () => {
    await world.queue.clearMessages();
    const a = await post({ series: SERIES, version: '1.681' }, 'application/json; charset=utf-8');
    expect(a.status).toBe(202);
    expect(await queued()).toEqual([{ series: SERIES, version: '1.681' }]);
    await world.queue.clearMessages();
  });

  it('refuses malformed JSON with the reason', async () => {
    const a = await createsNothing(() => post('{"series": '));
    expect(a.status).toBe(400);
    expect(errorOf(a)).toEqual({ code: 'INVALID_REQUEST', message: 'the body is not valid JSON' });
  });

  it('refuses an unknown field, naming it', async () => {
    const a = await createsNothing(() => post({ series: SERIES, version: '1.682', serie: 'x' }));
    expect(a.status).toBe(400);
    expect(errorOf(a).message).toContain('unknown field "serie"');
    // The queue-only flag is not for callers either.
    const c = await createsNothing(() => post({ series: SERIES, version: '1.682', continuation: true }));
    expect(c.status).toBe(400);
    expect(errorOf(c).message).toContain('continuation');
  });

  it('refuses wrong types, a missing series, an array and a non-Azure series, each with the reason', async () => {
    const force = await createsNothing(() => post({ series: SERIES, force: 'yes' }));
    expect(force.status).toBe(400);
    expect(errorOf(force).message).toMatch(/force.*boolean/);
    const missing = await createsNothing(() => post({ version: '1.682' }));
    expect(missing.status).toBe(400);
    expect(errorOf(missing).message).toContain('series');
    const array = await createsNothing(() => post([SERIES]));
    expect(array.status).toBe(400);
    const aws = await createsNothing(() => post({ series: 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent' }));
    expect(aws.status).toBe(400);
    expect(errorOf(aws).message).toContain('not an Azure series');
    const version = await createsNothing(() => post({ series: SERIES, version: '1.682;x' }));
    expect(version.status).toBe(400);
    expect(errorOf(version).message).toContain('not a stemcell version');
  });

  it('refuses a body over 16 KiB', async () => {
    const big = JSON.stringify({ series: SERIES, version: '1.682', reason: 'x'.repeat(16 * 1024) });
    const declared = await createsNothing(() => post(big));
    expect(declared.status).toBe(400);
    expect(errorOf(declared).message).toContain('larger than 16384 bytes');
  });

  it('answers 411 to a chunked body, which the host hands over empty, whatever its size', async () => {
    const small = JSON.stringify({ series: SERIES, version: '1.682' });
    const big = JSON.stringify({ series: SERIES, version: '1.682', reason: 'x'.repeat(16 * 1024) });
    for (const body of [small, big]) {
      const before = (await allJobs()).length;
      await world.queue.clearMessages();
      const chunked = await postChunked(body);
      expect(chunked.status).toBe(411);
      expect(chunked.json.error).toEqual({
        code: 'INVALID_REQUEST',
        message: 'send the body with a Content-Length header: the Functions host drops a chunked body',
      });
      expect(await queued()).toEqual([]);
      expect((await allJobs()).length).toBe(before);
    }
  });

  it('answers 404 naming the closest versions for a typo in the version', async () => {
    const a = await createsNothing(() => post({ series: SERIES, version: '1.6820' }));
    expect(a.status).toBe(404);
    expect(errorOf(a).code).toBe('NOT_FOUND');
    expect(errorOf(a).message).toMatch(/closest: 1\.682\b/);
    expect(errorOf(a).message).toContain('latest is 1.682');
  });

  it('answers 404 naming the closest series for a typo in the series', async () => {
    const typo = 'bosh-azure-hyperv-ubuntu-jamy-go_agent';
    const a = await createsNothing(() => post({ series: typo, version: 'latest' }));
    expect(a.status).toBe(404);
    expect(errorOf(a).code).toBe('NOT_FOUND');
    expect(errorOf(a).message).toContain(typo);
    expect(errorOf(a).message).toMatch(new RegExp(`closest: ${SERIES}`));
  });
});

describe('GET /api/mirror', () => {
  const created: string[] = [];

  beforeAll(async () => {
    await startHost(true);
    // Jobs of one series created one after another: the list must give them back newest first.
    // An earlier test already asked for the latest (1.5), so that one is the oldest.
    const earlier = (await world.jobs.list({ series: NOBLE })).jobs.map((j) => j.version).reverse();
    created.push(...earlier);
    for (const v of ['1.1', '1.2', '1.3', '1.4', '1.5'].filter((x) => !earlier.includes(x))) {
      const a = await post({ series: NOBLE, version: v });
      expect(a.status).toBe(202);
      created.push(v);
      await new Promise((r) => setTimeout(r, 5));
    }
    await world.queue.clearMessages();
  });

  it('lists jobs newest first', async () => {
    const a = await call('/api/mirror?limit=200');
    expect(a.status).toBe(200);
    const jobs = a.json.jobs as Array<{ createdAt: string; series: string; version: string }>;
    expect(jobs.length).toBeGreaterThanOrEqual(created.length);
    const stamps = jobs.map((j) => j.createdAt);
    expect([...stamps].sort().reverse()).toEqual(stamps);
    expect(a.json.next).toBeUndefined();
  });

  it('filters by series and pages with limit and next until the cursor runs out', async () => {
    const seen: string[] = [];
    let path = `/api/mirror?series=${NOBLE}&limit=2`;
    const pages: number[] = [];
    for (;;) {
      const a = await call(path);
      expect(a.status).toBe(200);
      const jobs = a.json.jobs as Array<{ series: string; version: string }>;
      expect(jobs.every((j) => j.series === NOBLE)).toBe(true);
      pages.push(jobs.length);
      seen.push(...jobs.map((j) => j.version));
      if (typeof a.json.next !== 'string') break;
      path = `/api/mirror?series=${NOBLE}&limit=2&next=${encodeURIComponent(a.json.next)}`;
    }
    expect(pages).toEqual([2, 2, 1]);
    expect(seen).toEqual([...created].reverse());
  });

  it('filters by status', async () => {
    const job = (await world.jobs.get(NOBLE, '1.3'))!;
    await world.jobs.update(job, {
      status: 'failed',
      errorCode: 'CHECKSUM_MISMATCH',
      errorMessage: 'sha256 differs',
      errorPermanent: true,
    });
    const failed = await call(`/api/mirror?series=${NOBLE}&status=failed`);
    expect(failed.status).toBe(200);
    expect((failed.json.jobs as Array<{ version: string }>).map((j) => j.version)).toEqual(['1.3']);
    const q = await call(`/api/mirror?series=${NOBLE}&status=queued`);
    expect((q.json.jobs as Array<{ version: string }>).map((j) => j.version)).toEqual(
      [...created].reverse().filter((v) => v !== '1.3'),
    );
  });

  it("shows a failed job's error code and message, and progress with a percentage", async () => {
    const a = await call(`/api/mirror/${NOBLE}/1.3`);
    expect(a.status).toBe(200);
    expect(a.json).toMatchObject({
      series: NOBLE,
      version: '1.3',
      galleryVersion: '1.3.0',
      status: 'failed',
      error: { code: 'CHECKSUM_MISMATCH', message: 'sha256 differs' },
      progress: {
        downloadedBytes: 0,
        downloadTotalBytes: expect.any(Number),
        vhdBytes: 0,
        uploadedBytes: 0,
        skippedZeroBytes: 0,
        percent: 0,
      },
    });
    expect(Object.keys(a.json)).toEqual(
      expect.arrayContaining(['stage', 'attempts', 'createdAt', 'updatedAt']),
    );
  });

  it('refuses bad filters and cursors, and answers 404 for a job never requested', async () => {
    expect((await call('/api/mirror?status=done')).status).toBe(400);
    expect((await call('/api/mirror?series=not%20a%20series')).status).toBe(400);
    expect((await call('/api/mirror?next=bogus')).status).toBe(400);
    expect((await call('/api/mirror?limit=0')).status).toBe(400);
    expect((await call('/api/mirror?limit=201')).status).toBe(400);
    expect((await call('/api/mirror?limit=two')).status).toBe(400);
    const missing = await call(`/api/mirror/${NOBLE}/9.9`);
    expect(missing.status).toBe(404);
    expect(errorOf(missing).code).toBe('NOT_FOUND');
    expect((await call(`/api/mirror/${NOBLE}/not..a..version`)).status).toBe(400);
  });
});

describe('POST /api/mirror with the worker running', () => {
  beforeAll(async () => {
    await world.queue.clearMessages();
    await startHost(false);
  });

  const done = (j: Job) => ['succeeded', 'skipped', 'staged', 'failed'].includes(j.status);

  it('re-runs a failed job only with force', async () => {
    const fx = makeStemcell({ series: SERIES, version: '1.690', vhdMiB: 8 });
    // bosh.io first publishes a wrong checksum: the job fails for good.
    await world.boshio.addRelease({
      series: SERIES,
      version: '1.690',
      body: fx.tgz,
      publish: { sha256: 'e'.repeat(64) },
    });
    expect((await post({ series: SERIES, version: '1.690' })).status).toBe(202);
    const failed = await world.waitForJob('1.690', done);
    expect(failed.status).toBe('failed');
    expect(failed.errorCode).toBe('CHECKSUM_MISMATCH');
    const view = await call(`/api/mirror/${SERIES}/1.690`);
    expect(view.json).toMatchObject({
      status: 'failed',
      error: { code: 'CHECKSUM_MISMATCH', message: expect.any(String) },
    });

    // bosh.io fixes its entry. Asking again without force leaves a permanent failure alone.
    await world.boshio.addRelease({ series: SERIES, version: '1.690', body: fx.tgz });
    await world.queue.clearMessages();
    const again = await post({ series: SERIES, version: '1.690' });
    expect(again.status).toBe(202);
    expect(again.json.status).toBe('failed');
    expect(await queued()).toEqual([]);
    expect((await world.jobs.get(SERIES, '1.690'))!.status).toBe('failed');

    const forced = await post({ series: SERIES, version: '1.690', force: true });
    expect(forced.status).toBe(202);
    expect(forced.json.status).toBe('queued');
    const ok = await world.waitForJob(
      '1.690',
      (j) => j.status === 'succeeded' || (j.status === 'failed' && j.errorCode !== 'CHECKSUM_MISMATCH'),
    );
    expect(ok.status).toBe('succeeded');
    expect(world.arm.version(SERIES, '1.690.0')).toBeDefined();
  });

  it('without force, a version already in the gallery ends its new job skipped', async () => {
    expect((await post({ series: SERIES, version: '1.682' })).status).toBe(202);
    const first = await world.waitForJob('1.682', done);
    expect(first.status).toBe('succeeded');
    const puts = () =>
      world.arm.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/versions/1.682.0')).length;
    expect(puts()).toBe(1);

    // A new job row for a version the gallery already has (e.g. the table was lost).
    const table = TableClient.fromConnectionString(world.azurite.connectionString, JOBS_TABLE, {
      allowInsecureConnection: true,
    });
    await table.deleteEntity(SERIES, '1.682');
    expect((await post({ series: SERIES, version: '1.682' })).status).toBe(202);
    const skipped = await world.waitForJob('1.682', done);
    expect(skipped.status).toBe('skipped');
    expect(skipped.galleryImageVersionId).toBe(first.galleryImageVersionId);
    expect(puts()).toBe(1);
  });

  it('with force, re-mirrors a version the gallery has: deletes the image version and creates it again', async () => {
    const before = (await world.jobs.get(SERIES, '1.682'))!;
    expect(done(before)).toBe(true);
    const versionPath = (r: { path: string }) => r.path.endsWith('/versions/1.682.0');
    const mark = world.arm.requests.length;
    const submitted = Date.now();
    const a = await post({ series: SERIES, version: '1.682', force: true });
    expect(a.status).toBe(202);
    expect(a.json.status).toBe('queued');
    const job = await world.waitForJob('1.682', (j) => done(j) && Date.parse(j.updatedAt) >= submitted);
    expect(job.errorMessage).toBeUndefined();
    expect(job.status).toBe('succeeded');
    const after = world.arm.requests.slice(mark).filter(versionPath);
    const del = after.findIndex((r) => r.method === 'DELETE' && r.status < 300);
    const put = after.findIndex((r) => r.method === 'PUT' && r.status < 300);
    expect(del).toBeGreaterThanOrEqual(0);
    expect(put).toBeGreaterThan(del);
    expect(world.arm.version(SERIES, '1.682.0')).toBeDefined();
  });
});

describe('POST /api/mirror for a series bosh.io publishes only as light stemcells', () => {
  it('answers 400 saying there is no VHD to mirror, and creates nothing', async () => {
    const series = 'bosh-azure-hyperv-windows2019-go_agent';
    world.boshio.seed(series, [
      {
        name: series,
        version: '2019.90',
        light: {
          url: 'https://stemcells.example.test/light.tgz',
          size: 9000,
          md5: '',
          sha1: '',
          sha256: 'a'.repeat(64),
        },
      },
    ]);
    await startHost(true);
    const a = await createsNothing(() => post({ series, version: 'latest' }));
    expect(a.status).toBe(400);
    expect(errorOf(a).code).toBe('INVALID_REQUEST');
    expect(errorOf(a).message).toContain('only light stemcells');
    expect(errorOf(a).message).not.toContain('closest');
  });
});

describe('POST /api/mirror when bosh.io cannot be reached', () => {
  it('answers 503 and creates nothing', async () => {
    const closed = await closedPort();
    await startHost(true, { BASM_BOSH_IO_URL: `http://127.0.0.1:${closed}` });
    const a = await createsNothing(() => post({ series: SERIES, version: '1.681' }));
    expect(a.status).toBe(503);
    expect(errorOf(a).code).toBe('UPSTREAM_UNAVAILABLE');
  });
});

describe('POST /api/mirror during a storage outage', () => {
  /** The world's connection string with one service's endpoint on a port where nothing listens. */
  async function withoutService(service: 'Table' | 'Queue'): Promise<string> {
    const closed = await closedPort();
    return world.azurite.connectionString.replace(
      new RegExp(`${service}Endpoint=http://127\\.0\\.0\\.1:\\d+`),
      `${service}Endpoint=http://127.0.0.1:${closed}`,
    );
  }

  for (const service of ['Table', 'Queue'] as const) {
    it(`answers 503 STORAGE_FAILED when the ${service.toLowerCase()} service cannot be reached`, async () => {
      const cs = await withoutService(service);
      expect(cs).not.toBe(world.azurite.connectionString);
      await startHost(true, { AzureWebJobsStorage: cs });
      const a = await post({ series: SERIES, version: '1.680' });
      expect(a.status).toBe(503);
      expect(errorOf(a).code).toBe('STORAGE_FAILED');
      expect(errorOf(a).message).not.toMatch(/AccountKey|sig=/);
      expect(await queued()).not.toContainEqual(expect.objectContaining({ version: '1.680' }));
    });
  }
});
