/**
 * Publishing outcomes through the whole app: retention, a version whose provisioning fails, a
 * notification that cannot be sent, and the token kept out of everything an operator can read.
 */
import { TableClient } from '@azure/data-tables';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS_TABLE } from '../../src/lib/azure/storage-clients';
import type { Job } from '../../src/lib/jobs/job';
import type { LogLevel } from '../../src/lib/core/log';
import { GITHUB_TOKEN, SERIES, postMirror, startWorld, type World } from '../support/world';

let world: World;
const lines: Array<{ level: LogLevel; line: string }> = [];
const sink = (level: LogLevel, line: string) => void lines.push({ level, line });
const ended = (j: Job) => ['succeeded', 'failed', 'skipped', 'staged'].includes(j.status);

beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => world.close());

const mirror = (version: string, over: Record<string, string> = {}): Promise<Job> =>
  world.mirror(version, { over, sink });

async function blobExists(name: string): Promise<boolean> {
  return world.container.getBlobClient(name).exists();
}

describe('retention', () => {
  it('keeps the newest N versions, never the one just published nor bosh.io’s latest, and deletes their blobs', async () => {
    for (const v of ['5.1', '5.2', '5.3']) await world.addStemcell(v, { vhdMiB: 8 });
    // bosh.io's latest (5.3) is mirrored first; older ones are back-filled after it.
    const keep = { BASM_KEEP_SOURCE_VHD: 'true' };
    expect((await mirror('5.3', keep)).status).toBe('succeeded');
    expect((await mirror('5.2', keep)).status).toBe('succeeded');
    expect(world.arm.version(SERIES, '5.2.0')).toBeDefined();
    // With N = 1 the newest (5.3) stays; 5.1 just published stays; 5.2 goes, with its blob.
    const last = await mirror('5.1', { ...keep, BASM_RETAIN_VERSIONS: '1' });
    expect(last.status).toBe('succeeded');
    // Deletion was started (Azure finishes it on its own; nothing waits for it).
    const deletes = world.arm.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/versions/'));
    expect(deletes.map((r) => r.path.split('/').pop())).toEqual(['5.2.0']);
    const gone = world.arm.version(SERIES, '5.2.0') as
      { properties: { provisioningState: string } } | undefined;
    expect(gone === undefined || gone.properties.provisioningState === 'Deleting').toBe(true);
    expect(world.arm.version(SERIES, '5.3.0')).toBeDefined();
    expect(world.arm.version(SERIES, '5.1.0')).toBeDefined();
    expect(await blobExists(`${SERIES}/5.2.vhd`)).toBe(false);
    expect(await blobExists(`${SERIES}/5.3.vhd`)).toBe(true);
    expect(await blobExists(`${SERIES}/5.1.vhd`)).toBe(true);
  });
});

describe('a version whose provisioning fails', () => {
  it('fails the job with Azure’s error and keeps the blob for a retry; force then publishes it', async () => {
    await world.addStemcell('5.4', { vhdMiB: 8 });
    world.arm.failVersion('5.4.0', {
      code: 'ReplicationFailed',
      message: 'Replication to northeurope failed',
    });
    const job = await mirror('5.4');
    expect(job.status).toBe('failed');
    expect(job.errorCode).toBe('GALLERY_FAILED');
    expect(job.errorMessage).toContain('ReplicationFailed');
    expect(job.errorMessage).toContain('Replication to northeurope failed');
    expect(await blobExists(`${SERIES}/5.4.vhd`)).toBe(true);
    const status = await fetch(`${(await world.startHost({ sink })).url}/api/mirror/${SERIES}/5.4`);
    expect(await status.json()).toMatchObject({ status: 'failed', error: { code: 'GALLERY_FAILED' } });

    world.arm.clearVersionFailure('5.4.0');
    const host = await world.startHost({ sink });
    expect((await postMirror(host.url, { series: SERIES, version: '5.4', force: true })).status).toBe(202);
    const retried = await world.waitForJob('5.4', (j) => j.status !== 'failed' && ended(j), 60_000);
    expect(retried.status).toBe('succeeded');
    expect(world.arm.version(SERIES, '5.4.0')).toMatchObject({
      properties: { provisioningState: 'Succeeded' },
    });
  });
});

describe('an identity whose role covers only the gallery', () => {
  it('follows the version by its provisioningState when the operation-status URL is forbidden', async () => {
    await world.addStemcell('5.7', { vhdMiB: 8 });
    world.arm.forbidOperationStatus(true);
    try {
      const job = await mirror('5.7');
      expect(job.errorMessage).toBeUndefined();
      expect(job.status).toBe('succeeded');
    } finally {
      world.arm.forbidOperationStatus(false);
    }
    const forbidden = world.arm.requests.filter((r) => r.status === 403 && /\/operations\//.test(r.path));
    expect(forbidden.length).toBeGreaterThan(0);
    expect(world.arm.version(SERIES, '5.7.0')).toMatchObject({
      properties: { provisioningState: 'Succeeded' },
    });
    expect(lines.some((l) => l.line.includes('gallery.poll-forbidden'))).toBe(true);
  });
});

describe('a notification that cannot be sent', () => {
  it('leaves the version published and shows the failure on the job', async () => {
    await world.addStemcell('5.5', { vhdMiB: 8 });
    world.github.failNext(20, 500);
    const job = await mirror('5.5', { BASM_LEASE_SECONDS: '30' });
    world.github.clearFaults();
    expect(job.status).toBe('succeeded');
    expect(job.notify).toBe('failed');
    expect(job.notifyError).toMatch(/NOTIFY_FAILED/);
    const host = await world.startHost({ sink });
    const view = (await (await fetch(`${host.url}/api/mirror/${SERIES}/5.5`)).json()) as Record<
      string,
      unknown
    >;
    expect(view).toMatchObject({ status: 'succeeded', notification: { status: 'failed' } });
  });
});

describe('secrets', () => {
  it('never puts the GitHub token in logs, job rows or status output', async () => {
    await world.addStemcell('5.6', { vhdMiB: 8 });
    world.github.failNext(1, 500);
    const job = await mirror('5.6');
    expect(job.status).toBe('succeeded');
    expect(world.github.dispatches.some((d) => d.inputs.stemcell_version === '5.6')).toBe(true);
    const host = await world.startHost({ sink });
    const outputs = [
      await (await fetch(`${host.url}/api/mirror`)).text(),
      await (await fetch(`${host.url}/api/mirror/${SERIES}/5.6`)).text(),
    ];
    const table = TableClient.fromConnectionString(world.azurite.connectionString, JOBS_TABLE, {
      allowInsecureConnection: true,
    });
    const rows: string[] = [];
    for await (const e of table.listEntities()) rows.push(JSON.stringify(e));
    expect(rows.length).toBeGreaterThan(3);
    expect(lines.length).toBeGreaterThan(50);
    for (const text of [...rows, ...outputs, ...lines.map((l) => l.line)])
      expect(text).not.toContain(GITHUB_TOKEN);
  });
});
