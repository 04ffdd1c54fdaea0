/**
 * The whole product in one process: the local host serving the real function files, the worker
 * pulling from a real queue in Azurite, the real SDK clients talking to the strict fakes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli';
import type { LogLevel } from '../../src/lib/core/log';
import type { LocalHost } from '../../src/local/host';
import { GITHUB_TOKEN, NO_GALLERY, SERIES, postMirror, startWorld, type World } from '../support/world';

let world: World;
const lines: Array<{ level: LogLevel; line: string }> = [];

beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => world.close());

function startHost(over: Record<string, string> = {}): Promise<LocalHost> {
  return world.startHost({ over, sink: (level, line) => void lines.push({ level, line }) });
}

function post(h: LocalHost, body: unknown) {
  return postMirror(h.url, body);
}

async function blobNames(): Promise<string[]> {
  const names: string[] = [];
  if (!(await world.container.exists())) return names;
  for await (const b of world.container.listBlobsFlat()) names.push(b.name);
  return names;
}

describe('mirror end to end', () => {
  it('publishes a version from a POST: verified, tagged, replicated, notified once, source blob removed', async () => {
    const fx = await world.addStemcell('1.682', { vhdMiB: 24 });
    const h = await startHost();
    const accepted = await post(h, { series: SERIES, version: '1.682' });
    expect(accepted.status).toBe(202);
    expect(accepted.json).toMatchObject({ series: SERIES, version: '1.682', status: 'queued' });
    expect(accepted.headers.get('location')).toBe(`${h.url}/api/mirror/${SERIES}/1.682`);

    const job = await world.waitForJob('1.682', (j) => j.status === 'succeeded' || j.status === 'failed');
    expect(job.errorMessage).toBeUndefined();
    expect(job.status).toBe('succeeded');

    const v = world.arm.version(SERIES, '1.682.0') as {
      tags: Record<string, string>;
      properties: {
        publishingProfile: {
          targetRegions: Array<{ name: string; regionalReplicaCount: number }>;
          excludeFromLatest?: boolean;
        };
      };
    };
    expect(v.tags.image_sha256).toBe(fx.imageSha256);
    expect(v.tags.stemcell_sha256).toBe(fx.sha256);
    expect(v.properties.publishingProfile.targetRegions.map((t) => [t.name, t.regionalReplicaCount])).toEqual(
      [
        ['westeurope', 1],
        ['northeurope', 2],
      ],
    );
    expect(v.properties.publishingProfile.excludeFromLatest).toBe(false);
    expect(job.galleryImageVersionId).toMatch(
      /\/galleries\/stemcells\/images\/bosh-azure-hyperv-ubuntu-jammy-go_agent\/versions\/1\.682\.0$/,
    );
    // Uploaded exactly the non-zero 64 KiB runs, once.
    expect(job.uploadedBytes).toBe(fx.nonZeroRunBytes);
    expect(job.sentBytes).toBeLessThanOrEqual(fx.nonZeroRunBytes);
    expect(job.vhdBytes).toBe(fx.vhd.length);

    expect(world.github.dispatches).toHaveLength(1);
    expect(world.github.dispatches[0]!.inputs).toEqual({
      gallery_name: 'stemcells',
      gallery_image_name: SERIES,
      gallery_image_version: '1.682.0',
      gallery_subscription_id: expect.any(String),
      gallery_resource_group: 'rg-mirror',
      stemcell_series: SERIES,
      stemcell_version: '1.682',
    });
    expect(await blobNames()).toEqual([]);

    const status = await fetch(`${h.url}/api/mirror/${SERIES}/1.682`);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({
      status: 'succeeded',
      stage: 'done',
      galleryImageVersionId: job.galleryImageVersionId,
      progress: { vhdBytes: fx.vhd.length, uploadedBytes: fx.nonZeroRunBytes, percent: 100 },
    });

    // A repeated request for a finished job changes nothing.
    const again = await post(h, { series: SERIES, version: '1.682' });
    expect(again.status).toBe(202);
    expect(again.json.status).toBe('succeeded');
    await new Promise((r) => setTimeout(r, 500));
    expect(world.github.dispatches).toHaveLength(1);
    expect(
      world.arm.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/versions/1.682.0')),
    ).toHaveLength(1);

    // The token never reached a log line.
    expect(lines.length).toBeGreaterThan(10);
    expect(lines.some((l) => l.line.includes(GITHUB_TOKEN))).toBe(false);
  });

  it('back-fills an older version hidden from "latest", and skips one the gallery already has', async () => {
    await world.addStemcell('1.651', { vhdMiB: 16 });
    const h = await startHost({ BASM_BACKFILL_VERSIONS: '2' });
    const res = await fetch(`${h.url}/admin/functions/mirrorSchedule`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: '' }),
    });
    expect(res.status).toBe(202);
    const older = await world.waitForJob('1.651', (j) => j.status === 'succeeded' || j.status === 'failed');
    expect(older.status).toBe('succeeded');
    const v = world.arm.version(SERIES, '1.651.0') as {
      properties: { publishingProfile: { excludeFromLatest?: boolean } };
    };
    expect(v.properties.publishingProfile.excludeFromLatest).toBe(true);

    // A new job row for a version already published from the same archive ends skipped, no transfer.
    const before = world.boshio.requests.filter((r) => r.path.startsWith('/d/')).length;
    const row = (await world.jobs.get(SERIES, '1.651'))!;
    await world.jobs.update(row, { status: 'failed', errorPermanent: false });
    const forced = await post(h, { series: SERIES, version: '1.651' });
    expect(forced.status).toBe(202);
    const skipped = await world.waitForJob('1.651', (j) => j.status === 'skipped' || j.status === 'failed');
    expect(skipped.status).toBe('skipped');
    expect(world.boshio.requests.filter((r) => r.path.startsWith('/d/')).length).toBe(before);
  });

  it('names a gen2 definition one way everywhere: published, then skipped without a transfer, and listed', async () => {
    const fx = await world.addStemcell('1.660', { vhdMiB: 8, cloudProperties: { generation: 'gen2' } });
    const h = await startHost();
    expect((await post(h, { series: SERIES, version: '1.660' })).status).toBe(202);
    const published = await world.waitForJob(
      '1.660',
      (j) => j.status === 'succeeded' || j.status === 'failed',
    );
    expect(published.errorMessage).toBeUndefined();
    expect(published.definitionName).toBe(`${SERIES}-gen2`);
    expect(world.arm.version(`${SERIES}-gen2`, '1.660.0')).toBeDefined();
    expect(world.arm.version(SERIES, '1.660.0')).toBeUndefined();

    // A new request for the same archive finds it under the gen2 definition before any download.
    const downloads = world.boshio.requests.filter((r) => r.path.startsWith('/d/')).length;
    await world.jobs.update((await world.jobs.get(SERIES, '1.660'))!, {
      status: 'failed',
      errorPermanent: false,
    });
    expect((await post(h, { series: SERIES, version: '1.660' })).status).toBe(202);
    const again = await world.waitForJob('1.660', (j) => j.status === 'skipped' || j.status === 'failed');
    expect(again.status).toBe('skipped');
    expect(again.definitionName).toBe(`${SERIES}-gen2`);
    expect(world.boshio.requests.filter((r) => r.path.startsWith('/d/')).length).toBe(downloads);

    // The CLI's versions finds it there too.
    const out: string[] = [];
    const io: Io = { out: (t) => out.push(t), err: () => undefined, isTTY: false, env: world.env() };
    expect(await main(['versions', SERIES, '--json'], io)).toBe(0);
    const listed = JSON.parse(out.join('\n')) as {
      definitions: string[];
      versions: Array<{ version: string; gallery: string }>;
    };
    expect(listed.definitions).toEqual([SERIES, `${SERIES}-gen2`]);
    expect(listed.versions.find((v) => v.version === '1.660')?.gallery).toBe('Succeeded');
    expect(fx.manifestText).toContain('generation: gen2');
  });

  it('ends staged, blob kept byte for byte, when no gallery is configured', async () => {
    const fx = await world.addStemcell('1.700', { vhdMiB: 16, mfFirst: true });
    const h = await startHost(NO_GALLERY);
    expect((await post(h, { series: SERIES, version: '1.700' })).status).toBe(202);
    const job = await world.waitForJob('1.700', (j) => j.status === 'staged' || j.status === 'failed');
    expect(job.status).toBe('staged');
    const blob = await world.container.getBlobClient(job.blobName!).downloadToBuffer();
    expect(blob.equals(fx.vhd)).toBe(true);
  });

  it('fails a corrupt download cleanly: nothing published, nothing left, failure notified', async () => {
    const fx = await world.addStemcell('1.701', { vhdMiB: 16 });
    // bosh.io publishes a checksum the archive does not have.
    await world.boshio.addRelease({
      series: SERIES,
      version: '1.702',
      body: fx.tgz,
      publish: { sha256: 'f'.repeat(64) },
    });
    const dispatches = world.github.dispatches.length;
    const h = await startHost();
    expect((await post(h, { series: SERIES, version: '1.702' })).status).toBe(202);
    const job = await world.waitForJob('1.702', (j) => j.status === 'failed' || j.status === 'succeeded');
    expect(job.status).toBe('failed');
    expect(job.errorCode).toBe('CHECKSUM_MISMATCH');
    expect(world.arm.version(SERIES, '1.702.0')).toBeUndefined();
    expect(await blobNames()).not.toContain(`${SERIES}/1.702.vhd`);
    const sent = world.github.dispatches.slice(dispatches);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.inputs).toMatchObject({
      status: 'failed',
      error_code: 'CHECKSUM_MISMATCH',
      stemcell_version: '1.702',
    });
  });

  it('refuses bad requests without creating a job', async () => {
    const h = await startHost();
    const typo = await post(h, { series: SERIES, version: '1.6820' });
    expect(typo.status).toBe(404);
    const notAzure = await post(h, { series: 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent' });
    expect(notAzure.status).toBe(400);
    const unknown = await post(h, { series: SERIES, version: '1.682', extra: 1 });
    expect(unknown.status).toBe(400);
    const text = await fetch(`${h.url}/api/mirror`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: SERIES,
    });
    expect(text.status).toBe(400);
    expect(await world.jobs.get(SERIES, '1.6820')).toBeUndefined();
  });
});
