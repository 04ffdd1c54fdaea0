/**
 * The operator CLI run in-process through `main(argv, io)`, with the settings of a test world
 * (Azurite, fake bosh.io, fake ARM): exit codes, help, progress output, and what `status` and
 * `versions` print. One test runs the real bin script as a child process.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, type Io } from '../../src/cli';
import { NO_GALLERY, SERIES, startWorld, type World } from '../support/world';
import { ensureBuilt, ROOT, runBin } from '../support/build';

let world: World;

beforeAll(async () => {
  world = await startWorld();
  await world.addStemcell('1.900', { vhdMiB: 16 });
  await world.addStemcell('1.901', { vhdMiB: 8 });
  // The credential of the Azure SDK reads the managed-identity endpoint from the process environment.
  world.apply();
});
afterAll(async () => {
  await world?.close();
});

interface Run {
  code: number;
  out: string;
  err: string;
}

async function run(argv: string[], over: Record<string, string> = {}, isTTY = false): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (t) => out.push(t), err: (t) => err.push(t), isTTY, env: world.env(over) };
  const code = await main(argv, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('stemcell-mirror help and usage', () => {
  it('prints help for the program and each command with exit 0', async () => {
    const top = await run(['--help']);
    expect(top.code).toBe(0);
    expect(top.out).toMatch(/^Usage: stemcell-mirror <command>/);
    for (const cmd of ['mirror', 'status', 'versions']) {
      const h = await run([cmd, '--help']);
      expect(h.code).toBe(0);
      expect(h.out).toMatch(new RegExp(`^Usage: stemcell-mirror ${cmd}\\b`));
      const short = await run([cmd, '-h']);
      expect(short.out).toBe(h.out);
    }
  });

  it('exits 2 on a usage error, with the reason and the help of the command', async () => {
    const none = await run([]);
    expect(none.code).toBe(2);
    const unknown = await run(['mirorr', SERIES]);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown command "mirorr"');
    const noSeries = await run(['mirror']);
    expect(noSeries.code).toBe(2);
    expect(noSeries.err).toContain('mirror needs a series');
    expect(noSeries.err).toContain('Usage: stemcell-mirror mirror');
    const extra = await run(['mirror', SERIES, '1.900', 'again']);
    expect(extra.code).toBe(2);
    expect(extra.err).toContain('too many arguments');
    const flag = await run(['mirror', '--forse', SERIES]);
    expect(flag.code).toBe(2);
    expect(flag.err).toContain('--forse');
    const notAzure = await run(['mirror', 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent']);
    expect(notAzure.code).toBe(2);
    expect(notAzure.err).toContain('not an Azure series');
    expect((await run(['versions'])).code).toBe(2);
  });

  it('loads the ARM, identity and Key Vault SDKs only when configured to use them (start-up time)', () => {
    ensureBuilt();
    const probe = `require(${JSON.stringify(join(ROOT, 'dist', 'src', 'cli.js'))});
      const loaded = (p) => Object.keys(require.cache).some((f) => f.includes('/node_modules/' + p + '/'));
      console.log(JSON.stringify(['@azure/arm-compute', '@azure/identity', '@azure/keyvault-secrets', '@azure/storage-blob'].map(loaded)));`;
    const r = spawnSync(process.execPath, ['-e', probe], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    // storage-blob is there: the probe would see a module that is loaded.
    expect(JSON.parse(r.stdout) as boolean[]).toEqual([false, false, false, true]);
  });

  it('runs as the package bin in a child process', () => {
    const r = runBin(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: stemcell-mirror <command>');
    expect(r.stdout).toContain('versions <series>');
  });
});

describe('stemcell-mirror mirror', () => {
  it('without a gallery: ends staged, exit 0, plain progress lines when not on a terminal', async () => {
    const r = await run(['mirror', SERIES, '1.900'], NO_GALLERY);
    expect(r.err).not.toContain('error');
    expect(r.code).toBe(0);
    const view = JSON.parse(r.out) as { status: string; progress: { percent: number; vhdBytes: number } };
    expect(view.status).toBe('staged');
    expect(view.progress.percent).toBe(100);
    const progress = r.err.split('\n').filter((l) => /^transfer \d+%/.test(l));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    const pcts = progress.map((l) => Number(/^transfer (\d+)%/.exec(l)![1]));
    expect([...pcts].sort((a, b) => a - b)).toEqual(pcts);
    expect(r.err).toContain(`${SERIES} 1.900: staged`);
    expect((await world.jobs.get(SERIES, '1.900'))!.status).toBe('staged');
  });

  it('with a gallery: publishes, exit 0; on a terminal no plain progress lines', async () => {
    const r = await run(['mirror', SERIES, '1.901'], {}, true);
    expect(r.code).toBe(0);
    const view = JSON.parse(r.out) as { status: string; galleryImageVersionId?: string };
    expect(view.status).toBe('succeeded');
    expect(view.galleryImageVersionId).toMatch(/\/versions\/1\.901\.0$/);
    expect(world.arm.version(SERIES, '1.901.0')).toBeDefined();
    expect(r.err).not.toMatch(/^transfer \d+%/m);
  });

  it('exits 1 when the job fails, naming the error code', async () => {
    const fx = await world.addStemcell('1.902', { vhdMiB: 8 });
    await world.boshio.addRelease({
      series: SERIES,
      version: '1.902',
      body: fx.tgz,
      publish: { sha256: 'a'.repeat(64) },
    });
    const r = await run(['mirror', SERIES, '1.902']);
    expect(r.code).toBe(1);
    expect(r.err).toContain('failed: CHECKSUM_MISMATCH');
    expect(JSON.parse(r.out)).toMatchObject({ status: 'failed', error: { code: 'CHECKSUM_MISMATCH' } });
  });

  it('exits 1 for a version bosh.io does not have, naming the closest, and records no job', async () => {
    const r = await run(['mirror', SERIES, '1.9000']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/NOT_FOUND: .*closest: 1\.900\b/);
    expect(await world.jobs.get(SERIES, '1.9000')).toBeUndefined();
  });
});

describe('stemcell-mirror status and versions', () => {
  it('status lists jobs newest first and shows one job; a failed or missing job exits 1', async () => {
    const all = await run(['status']);
    expect(all.code).toBe(0);
    const [listing, scheduleLine] = all.out.split('\n\n');
    const rows = listing!.split('\n');
    expect(rows[0]).toMatch(/^SERIES\s+VERSION\s+STATUS\s+STAGE\s+PROGRESS\s+UPDATED$/);
    // No schedule run in this world: never ran, next due from the default schedule, not overdue.
    expect(scheduleLine).toMatch(/^schedule: last run never, next due \d{4}-\d\d-\d\dT\S+Z, on time$/);
    const versions = rows.slice(1).map((l) => l.split(/\s+/)[1]);
    expect(versions).toEqual(['1.902', '1.901', '1.900']);

    const one = await run(['status', SERIES, '1.901']);
    expect(one.code).toBe(0);
    expect(one.out).toContain(`${SERIES} 1.901 → gallery version 1.901.0`);
    expect(one.out).toContain('status succeeded, stage done');

    const failed = await run(['status', SERIES, '1.902', '--json']);
    expect(failed.code).toBe(1);
    expect(JSON.parse(failed.out)).toMatchObject({ status: 'failed', error: { code: 'CHECKSUM_MISMATCH' } });

    const listed = JSON.parse((await run(['status', '--json'])).out) as { schedule: unknown };
    expect(listed.schedule).toEqual({ lastRunAt: null, nextDueAt: expect.any(String), overdue: false });

    const filtered = await run(['status', '--status', 'staged', '--json']);
    expect(
      (JSON.parse(filtered.out) as { jobs: Array<{ version: string }> }).jobs.map((j) => j.version),
    ).toEqual(['1.900']);

    const missing = await run(['status', SERIES, '1.1']);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain(`no job for ${SERIES} 1.1`);
  });

  it('versions puts bosh.io versions beside the gallery versions and marks the missing ones', async () => {
    const r = await run(['versions', SERIES, '--json']);
    expect(r.code).toBe(0);
    const v = JSON.parse(r.out) as {
      definition: string;
      versions: Array<{ version: string; galleryVersion: string; boshIo: boolean; gallery: string }>;
    };
    expect(v.definition).toBe(SERIES);
    expect(v.versions).toEqual([
      { version: '1.902', galleryVersion: '1.902.0', boshIo: true, gallery: 'missing' },
      { version: '1.901', galleryVersion: '1.901.0', boshIo: true, gallery: 'Succeeded' },
      { version: '1.900', galleryVersion: '1.900.0', boshIo: true, gallery: 'missing' },
    ]);
    const text = await run(['versions', SERIES]);
    expect(text.out.split('\n')[0]).toMatch(/^VERSION\s+GALLERY VERSION\s+BOSH\.IO\s+GALLERY \(/);
    expect(text.out).toMatch(/^1\.900\s+1\.900\.0\s+yes\s+missing$/m);

    const noGallery = await run(['versions', SERIES, '--json'], NO_GALLERY);
    expect(
      (JSON.parse(noGallery.out) as { versions: Array<{ gallery: string }> }).versions.map((x) => x.gallery),
    ).toEqual(['no gallery', 'no gallery', 'no gallery']);
  });
});
