/**
 * A gallery shared with BOSH directors, and Resource Manager as it answers in the field, through the
 * whole app: the local host, the worker, Azurite and the strict fake ARM.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogLevel } from '../../src/lib/core/log';
import { MIRROR_STEMCELL_REFERENCE } from '../../src/lib/stemcell/cpi-image';
import { SERIES, postMirror, startWorld, type World } from '../support/world';

let world: World;
const lines: Array<{ level: LogLevel; line: string }> = [];
const sink = (level: LogLevel, line: string) => void lines.push({ level, line });

beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => world.close());

const mirror = (version: string, over: Record<string, string> = {}, body: Record<string, unknown> = {}) =>
  world.mirror(version, { over, body, sink, timeoutMs: 90_000 });

function tagsOf(version: string): Record<string, string> | undefined {
  return (world.arm.version(SERIES, version) as { tags?: Record<string, string> } | undefined)?.tags;
}

const versionPuts = (name: string) =>
  world.arm.requests.filter((r) => r.method === 'PUT' && r.path.endsWith(`/versions/${name}`));
const versionDeletes = () =>
  world.arm.requests.filter((r) => r.method === 'DELETE' && r.path.includes('/versions/'));
const DIRECTOR = 'bosh-azure-hyperv-ubuntu-jammy-go_agent-6.2-director-a1';

describe('a gallery shared with BOSH directors', () => {
  it('retention deletes only versions the mirror alone uses; a director’s own or shared ones stay, logged', async () => {
    for (const v of ['6.1', '6.2', '6.3']) {
      await world.addStemcell(v, { vhdMiB: 8 });
      expect((await mirror(v)).status).toBe('succeeded');
    }
    // A director created 6.0.0 itself, and started using the mirrored 6.2.0.
    world.arm.seedVersion(SERIES, '6.0.0', {
      stemcell_references: 'bosh-stemcell-0a1b',
      image_sha256: 'c'.repeat(64),
    });
    world.arm.setVersionTags(SERIES, '6.2.0', {
      ...tagsOf('6.2.0'),
      stemcell_references: `${MIRROR_STEMCELL_REFERENCE},${DIRECTOR}`,
    });
    await world.addStemcell('6.4', { vhdMiB: 8 });
    const deletesBefore = versionDeletes().length;
    expect((await mirror('6.4', { BASM_RETAIN_VERSIONS: '1' })).status).toBe('succeeded');

    const deleted = versionDeletes()
      .slice(deletesBefore)
      .map((r) => r.path.split('/').pop());
    expect(deleted.sort()).toEqual(['6.1.0', '6.3.0']);
    expect(world.arm.version(SERIES, '6.0.0')).toBeDefined();
    expect(tagsOf('6.2.0')?.stemcell_references).toContain(DIRECTOR);
    const kept = lines
      .map((l) => JSON.parse(l.line) as { event?: string; galleryVersion?: string; references?: string[] })
      .filter((l) => l.event === 'retention.kept-shared');
    expect(kept.map((l) => l.galleryVersion).sort()).toEqual(['6.0.0', '6.2.0']);
    expect(kept.find((l) => l.galleryVersion === '6.2.0')?.references).toContain(DIRECTOR);
  });

  it('refuses to force over a version a director uses, naming its references, and leaves the version', async () => {
    const before = JSON.stringify(world.arm.version(SERIES, '6.2.0'));
    const job = await mirror('6.2', {}, { force: true });
    expect(job.status).toBe('failed');
    expect(job.errorCode).toBe('GALLERY_CONFLICT');
    expect(job.errorMessage).toContain(DIRECTOR);
    expect(JSON.stringify(world.arm.version(SERIES, '6.2.0'))).toBe(before);
  });

  it('never un-publishes: a failing retention leaves the job succeeded, announced once, no failure dispatch', async () => {
    await world.addStemcell('6.6', { vhdMiB: 8 });
    await world.addStemcell('6.7', { vhdMiB: 8 });
    expect((await mirror('6.6')).status).toBe('succeeded');
    world.arm.failNext(3, 409, { code: 'Conflict', method: 'DELETE', pathIncludes: '/versions/' });
    const dispatches = world.github.dispatches.length;
    const job = await mirror('6.7', { BASM_RETAIN_VERSIONS: '1' });
    expect(job.status).toBe('succeeded');
    expect(job.errorCode).toBeUndefined();
    const sent = world.github.dispatches.slice(dispatches);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.inputs).toMatchObject({ stemcell_version: '6.7', gallery_image_version: '6.7.0' });
    expect(sent[0]!.inputs.status).not.toBe('failed');
    expect(lines.some((l) => l.line.includes('"event":"cleanup.failed"'))).toBe(true);
  });
});

describe('Resource Manager answers in the field, through the worker', () => {
  const cases: Array<{ name: string; version: string; setup: () => void; over: Record<string, string> }> = [
    {
      name: 'a concurrent write (409 ConflictingConcurrentWriteNotAllowed) on the version PUT',
      version: '7.1',
      setup: () =>
        world.arm.failNext(2, 409, {
          code: 'ConflictingConcurrentWriteNotAllowed',
          message: 'Another operation is in progress on the resource.',
          method: 'PUT',
          pathIncludes: '/versions/',
        }),
      over: {},
    },
    {
      name: 'a new definition not yet visible (404 ParentResourceNotFound)',
      version: '7.2',
      setup: () => {
        world.arm.reset();
        world.arm.setParentLag(2);
      },
      over: {},
    },
    {
      name: 'throttling with a Retry-After longer than the invocation’s budget (429)',
      version: '7.3',
      setup: () =>
        world.arm.failNext(1, 429, { retryAfterSeconds: 4, method: 'PUT', pathIncludes: '/versions/' }),
      over: { BASM_INVOCATION_BUDGET_SECONDS: '3' },
    },
  ];
  for (const c of cases) {
    it(`ends succeeded with one version created after ${c.name}`, async () => {
      await world.addStemcell(c.version, { vhdMiB: 8 });
      c.setup();
      const job = await mirror(c.version, c.over);
      expect(job.errorMessage ?? '').toBe('');
      expect(job.status).toBe('succeeded');
      const puts = versionPuts(`${c.version}.0`);
      expect(puts.filter((r) => r.status < 300)).toHaveLength(1);
      expect(puts.some((r) => r.status >= 400)).toBe(true);
    });
  }

  it('waits for a long Retry-After in a delayed continuation, not in a sleep', async () => {
    await world.addStemcell('7.4', { vhdMiB: 8 });
    world.arm.failNext(1, 429, { retryAfterSeconds: 1800, method: 'PUT', pathIncludes: '/versions/' });
    const host = await world.startHost({ sink });
    expect((await postMirror(host.url, { series: SERIES, version: '7.4' })).status).toBe(202);
    const waiting = await world.waitForJob('7.4', (j) => j.status === 'waiting' && j.errorCode !== undefined);
    expect(waiting.stage).toBe('publish');
    expect(waiting.errorCode).toBe('GALLERY_FAILED');
    expect(waiting.errorMessage).toContain('retry after 1800 s');
    expect(waiting.leaseOwner).toBeUndefined();
    expect(versionPuts('7.4.0')).toHaveLength(1);
  });
});
