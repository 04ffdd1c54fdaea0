import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS_TABLE } from '../../../src/lib/azure/storage-clients';
import { newJob } from '../../../src/lib/jobs/job';
import { JobStore, StaleJobError, leaseRemainingMs } from '../../../src/lib/jobs/store';
import { jobView } from '../../../src/lib/jobs/view';
import { startAzurite, type Azurite } from '../../../src/local/azurite';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
let azurite: Azurite;
let store: JobStore;

beforeAll(async () => {
  azurite = await startAzurite();
  store = new JobStore(
    TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, { allowInsecureConnection: true }),
  );
});
afterAll(async () => azurite.stop());

describe('JobStore', () => {
  it('creates once; a second create returns the existing row', async () => {
    const a = await store.create(newJob(SERIES, '1.100'));
    const b = await store.create({ ...newJob(SERIES, '1.100'), reason: 'second' });
    expect(a.created).toBe(true);
    expect(b.created).toBe(false);
    expect(b.job.etag).toBe(a.job.etag);
    expect(b.job.reason).toBeUndefined();
    expect(a.job.galleryVersion).toBe('1.100.0');
  });

  it('round-trips byte counts beyond 32 bits and removes cleared fields', async () => {
    const { job } = await store.create(newJob(SERIES, '1.101'));
    const big = 5 * 1024 ** 3 + 512;
    const u = await store.update(job, {
      vhdBytes: big,
      watermark: big - 512,
      errorCode: 'VHD_INVALID',
      errorMessage: 'x',
    });
    const cleared = await store.update(u, { errorCode: undefined, errorMessage: undefined });
    const read = (await store.get(SERIES, '1.101'))!;
    expect(read.vhdBytes).toBe(big);
    expect(read.watermark).toBe(big - 512);
    expect(read.errorCode).toBeUndefined();
    expect(read.etag).toBe(cleared.etag);
  });

  it('refuses a write from a stale ETag', async () => {
    const { job } = await store.create(newJob(SERIES, '1.102'));
    await store.update(job, { stage: 'resolve' });
    await expect(store.update(job, { stage: 'transfer' })).rejects.toBeInstanceOf(StaleJobError);
    expect((await store.get(SERIES, '1.102'))!.stage).toBe('resolve');
  });

  it('lets one of two racing claims win', async () => {
    const { job } = await store.create(newJob(SERIES, '1.103'));
    const results = await Promise.allSettled([
      store.claim(job, 'worker-a', 60),
      store.claim(job, 'worker-b', 60),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(1);
    expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(StaleJobError);
    const row = (await store.get(SERIES, '1.103'))!;
    expect(['worker-a', 'worker-b']).toContain(row.leaseOwner);
    expect(row.attempts).toBe(1);
    // The loser re-reads and sees a live lease held by someone else.
    const other = row.leaseOwner === 'worker-a' ? 'worker-b' : 'worker-a';
    const again = await store.claim(row, other, 60);
    expect(again.claimed).toBe(false);
    if (!again.claimed) expect(again.remainingMs).toBeGreaterThan(50_000);
  });

  it('lets a job be taken over once its lease expired', async () => {
    const { job } = await store.create(newJob(SERIES, '1.104'));
    const past = new Date(Date.now() - 120_000);
    const a = await store.claim(job, 'crashed-worker', 60, past);
    expect(a.claimed).toBe(true);
    const row = (await store.get(SERIES, '1.104'))!;
    expect(leaseRemainingMs(row)).toBe(0);
    const b = await store.claim(row, 'new-worker', 60);
    expect(b.claimed).toBe(true);
    expect(b.job.leaseOwner).toBe('new-worker');
    expect(b.job.attempts).toBe(2);
  });

  it('lists newest first, filters and pages with an opaque cursor', async () => {
    const other = 'bosh-azure-hyperv-ubuntu-noble';
    const base = Date.parse('2030-01-01T00:00:00Z');
    for (let i = 0; i < 5; i++) {
      const created = await store.create(newJob(other, `2.${i}`, new Date(base + i * 1000)));
      if (i % 2 === 0) await store.update(created.job, { status: 'failed' });
    }
    const p1 = await store.list({ series: other, limit: 2 });
    expect(p1.jobs.map((j) => j.version)).toEqual(['2.4', '2.3']);
    expect(p1.next).toBeTypeOf('string');
    const p2 = await store.list({ series: other, limit: 2, next: p1.next });
    expect(p2.jobs.map((j) => j.version)).toEqual(['2.2', '2.1']);
    const p3 = await store.list({ series: other, limit: 2, next: p2.next });
    expect(p3.jobs.map((j) => j.version)).toEqual(['2.0']);
    expect(p3.next).toBeUndefined();
    const failed = await store.list({ series: other, status: 'failed' });
    expect(failed.jobs.map((j) => j.version)).toEqual(['2.4', '2.2', '2.0']);
    await expect(store.list({ next: 'not-a-cursor' })).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('refuses keys that are not series/version names', async () => {
    await expect(store.get('bosh-azure/../x', '1.0')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    await expect(store.get(SERIES, '1.0/2')).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
  });

  it('refuses oversized strings instead of letting Table Storage fail obscurely', async () => {
    const { job } = await store.create(newJob(SERIES, '1.105'));
    await expect(store.update(job, { pollerState: 'x'.repeat(40_000) })).rejects.toMatchObject({
      code: 'INTERNAL',
    });
  });

  it('shows the public JSON shape', async () => {
    const { job } = await store.create(newJob(SERIES, '1.106'));
    const u = await store.update(job, {
      vhdBytes: 1000,
      watermark: 500,
      downloadTotalBytes: 300,
      status: 'running',
      stage: 'transfer',
    });
    const v = jobView(u);
    expect(v).toMatchObject({
      series: SERIES,
      version: '1.106',
      galleryVersion: '1.106.0',
      status: 'running',
      stage: 'transfer',
      progress: { vhdBytes: 1000, downloadTotalBytes: 300, percent: 50 },
    });
    expect(v).not.toHaveProperty('error');
    expect(v).not.toHaveProperty('etag');
    expect(v).not.toHaveProperty('leaseOwner');
  });
});

describe('JobStore: the schedule record', () => {
  it('has none at first, starts watching once, and keeps watchingSince when a run is recorded', async () => {
    expect(await store.getScheduleRecord()).toBeUndefined();
    const first = await store.watchSchedule(new Date('2026-11-30T01:00:00Z'));
    const second = await store.watchSchedule(new Date('2026-11-30T02:00:00Z'));
    expect(first).toEqual({ lastRunAt: undefined, watchingSince: '2026-11-30T01:00:00.000Z' });
    expect(second).toEqual(first);
    await store.recordScheduleRun(new Date('2026-11-30T06:00:00.010Z'));
    expect(await store.getScheduleRecord()).toEqual({
      lastRunAt: '2026-11-30T06:00:00.010Z',
      watchingSince: '2026-11-30T01:00:00.000Z',
    });
  });

  it('lives beside the jobs without showing up among them', async () => {
    await store.create(newJob(SERIES, '1.120'));
    await store.recordScheduleRun(new Date());
    const { jobs } = await store.list({ limit: 200 });
    const table = TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, {
      allowInsecureConnection: true,
    });
    const rows: string[] = [];
    for await (const e of table.listEntities()) rows.push(`${e.partitionKey}/${e.rowKey}`);
    expect(rows).toContain('schedule/mirrorSchedule');
    expect(jobs.map((j) => `${j.series}/${j.version}`).sort()).toEqual(
      rows.filter((r) => r !== 'schedule/mirrorSchedule').sort(),
    );
  });
});
