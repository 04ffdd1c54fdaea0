/**
 * The staging copy of the compressed download: a pass stopped by its time budget keeps what it
 * fetched, and the next pass reads that from storage and fetches only the rest from bosh.io.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BoshIoClient } from '../../../src/lib/boshio/client';
import { DownloadCache } from '../../../src/lib/boshio/download-cache';
import { silentLogger } from '../../../src/lib/core/log';
import { NO_GALLERY, postMirror, SERIES, startWorld, type World } from '../../support/world';

const MIB = 1024 * 1024;
/** What loopback sockets and stream buffers may hold when a pass stops. */
const IN_FLIGHT = 1024 * 1024;
let world: World;

beforeAll(async () => {
  world = await startWorld();
  await world.container.createIfNotExists();
});
afterAll(async () => world.close());

async function readAll(
  stream: AsyncIterable<Buffer>,
  stopAfter = Infinity,
  onStop?: () => void,
): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of stream) {
    parts.push(c);
    n += c.length;
    if (n >= stopAfter) {
      onStop?.();
      break;
    }
  }
  return Buffer.concat(parts);
}

/** A factory of caches over the same staging blob of `version`, fetching from the fake bosh.io. */
async function cacheFactory(version: string, blockBytes: number): Promise<() => DownloadCache> {
  const boshio = new BoshIoClient({ baseUrl: world.boshio.url, allowedHosts: ['127.0.0.1'] });
  const release = await boshio.resolve(SERIES, version);
  return () =>
    new DownloadCache({
      blob: world.container.getBlockBlobClient(`cache-test/${version}.tgz.download`),
      fetch: (start, signal) => boshio.openDownload(release, { signal, start }),
      size: release.size,
      blockBytes,
      log: silentLogger,
    });
}

describe('DownloadCache', () => {
  it('keeps what a stopped pass fetched and never fetches a byte twice', async () => {
    const fx = await world.addStemcell('4.1', { vhdMiB: 48 });
    const make = await cacheFactory('4.1', MIB);
    const served0 = world.boshio.servedBytes();
    // Paced like a real link, so little sits in socket buffers when the pass stops.
    world.boshio.throttle(8 * MIB);

    const first = make();
    expect(await first.load()).toBe(0);
    const ctl = new AbortController();
    const stopAt = Math.floor(fx.tgz.length / 3);
    const head = await readAll(first.open(ctl.signal), stopAt, () => ctl.abort());
    await first.commitAll();
    expect(head.equals(fx.tgz.subarray(0, head.length))).toBe(true);

    const second = make();
    const cached = await second.load();
    // Everything the stopped pass received is kept, whole blocks and the partial one at the stop
    // (the stream reads a little ahead of its consumer); only bytes still on the wire are lost.
    const servedFirst = world.boshio.servedBytes() - served0;
    expect(cached).toBeGreaterThanOrEqual(head.length);
    expect(cached).toBeLessThanOrEqual(servedFirst);
    expect(servedFirst - cached).toBeLessThanOrEqual(IN_FLIGHT);
    const whole = await readAll(second.open(new AbortController().signal));
    expect(createHash('sha256').update(whole).digest('hex')).toBe(fx.sha256);
    await second.commitAll();
    expect(await make().load()).toBe(fx.tgz.length);
    expect(world.boshio.servedBytes() - served0 - fx.tgz.length).toBe(servedFirst - cached);

    world.boshio.throttle(undefined);
    await second.discard();
    expect(await make().load()).toBe(0);
  });
});

describe('DownloadCache under checkpoints', () => {
  it('never loses a block to a commit that runs while blocks are being staged', async () => {
    const fx = await world.addStemcell('4.3', { vhdMiB: 32 });
    const make = await cacheFactory('4.3', 64 * 1024);
    const cache = make();
    await cache.load();
    const commits: Promise<void>[] = [];
    const parts: Buffer[] = [];
    // Checkpoints come from the VHD side whenever they like: commit on every chunk, not awaited.
    for await (const c of cache.open(new AbortController().signal) as AsyncIterable<Buffer>) {
      parts.push(c);
      commits.push(cache.commit());
    }
    await Promise.all(commits);
    await cache.commitAll();
    expect(Buffer.concat(parts).equals(fx.tgz)).toBe(true);
    expect(await make().load()).toBe(fx.tgz.length);
    const [stored] = await Promise.all([
      world.container.getBlobClient(`cache-test/4.3.tgz.download`).downloadToBuffer(),
    ]);
    expect(stored.equals(fx.tgz)).toBe(true);
  });
});

describe('time budget', () => {
  /** Mirrors `version` with 1 s invocations against a download of about 4 s; returns the job and bytes served. */
  async function mirrorInShortInvocations(version: string, cache: string) {
    const fx = await world.addStemcell(version, { vhdMiB: 48 });
    world.boshio.throttle(Math.ceil(fx.tgz.length / 4));
    const served0 = world.boshio.servedBytes();
    const host = await world.startHost({
      over: { ...NO_GALLERY, BASM_INVOCATION_BUDGET_SECONDS: '1', BASM_DOWNLOAD_CACHE: cache },
    });
    expect((await postMirror(host.url, { series: SERIES, version })).status).toBe(202);
    const job = await world.waitForJob(
      version,
      (j) => j.status === 'staged' || j.status === 'failed',
      90_000,
    );
    world.boshio.throttle(undefined);
    expect(job.errorMessage).toBeUndefined();
    expect(job.status).toBe('staged');
    expect(job.passes).toBeGreaterThanOrEqual(3);
    expect((await world.container.getBlobClient(job.blobName!).downloadToBuffer()).equals(fx.vhd)).toBe(true);
    // The staging copy is gone once the VHD is verified.
    expect(await world.container.getBlobClient(`${job.blobName!}.download`).exists()).toBe(false);
    return { job, fx, served: world.boshio.servedBytes() - served0 };
  }

  it(
    'finishes a job whose every invocation is shorter than the transfer, fetching each byte once (cache always)',
    { timeout: 120_000 },
    async () => {
      const { job, fx, served } = await mirrorInShortInvocations('4.2', 'always');
      // Each stop loses at most what was on the wire; everything received is never fetched again.
      const refetched = served - fx.tgz.length;
      expect(refetched).toBeGreaterThanOrEqual(0);
      expect(refetched).toBeLessThanOrEqual((job.passes - 1) * IN_FLIGHT);
    },
  );

  it(
    'finishes it too when the cache starts at the first interruption (cache resume)',
    { timeout: 120_000 },
    async () => {
      const { job, fx, served } = await mirrorInShortInvocations('4.4', 'resume');
      // Only the first pass's bytes are fetched again, once.
      const refetched = served - fx.tgz.length;
      expect(refetched).toBeGreaterThan(0);
      expect(refetched).toBeLessThanOrEqual(fx.tgz.length / 2 + (job.passes - 1) * IN_FLIGHT);
    },
  );
});
