/**
 * Faults, on loopback only and bounded in time: the worker process killed with SIGKILL at five
 * points of one job and restarted, the whole instance lost with its message hidden for the host's
 * 10 minutes, the same message delivered twice at once, and Azurite restarted mid-transfer. Each must end with one verified blob, one gallery version, one
 * notification.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/lib/jobs/job';
import { listPageRanges } from '../../src/lib/azure/pageblob';
import { encodeQueueMessage } from '../../src/lib/jobs/requests';
import { startAzurite } from '../../src/local/azurite';
import { ensureBuilt, LOCAL_MAIN } from '../support/build';
import type { StemcellFixture } from '../support/stemcell-fixture';
import { SERIES, startWorld, type World } from '../support/world';
import { spawnTied } from '../../src/local/tied-spawn';

const MIB = 1024 * 1024;

interface WorkerProcess {
  child: ChildProcess;
  lines: string[];
  url: string;
  exited: Promise<void>;
}

const running = new Set<WorkerProcess>();

/** The app as `npm start` runs it, pointed at the test world, with short leases and retries. */
async function startWorker(env: Record<string, string>, cwd: string): Promise<WorkerProcess> {
  const child = spawnTied(process.execPath, [LOCAL_MAIN], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '',
      NODE_EXTRA_CA_CERTS: process.env.NODE_EXTRA_CA_CERTS ?? '',
      ...env,
      // The host picks a free port and names it in its listing: no port to lose to another process.
      FUNCTIONS_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const collect = (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean));
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const w: WorkerProcess = { child, lines, url: '', exited };
  running.add(w);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const listening = lines.map((l) => /^Host listening on (http:\S+) \(Ctrl/.exec(l)?.[1]).find(Boolean);
    if (listening) return Object.assign(w, { url: listening });
    if (child.exitCode !== null) throw new Error(`worker exited: ${lines.slice(-10).join('\n')}`);
    if (Date.now() > deadline) throw new Error(`worker did not start: ${lines.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function kill9(w: WorkerProcess): Promise<void> {
  w.child.kill('SIGKILL');
  await w.exited;
  running.delete(w);
}

async function stopWorker(w: WorkerProcess): Promise<void> {
  w.child.kill('SIGTERM');
  const t = setTimeout(() => w.child.kill('SIGKILL'), 10_000);
  await w.exited;
  clearTimeout(t);
  running.delete(w);
}

async function presentBytes(world: World, job: Job | undefined): Promise<number> {
  if (!job?.blobName) return 0;
  const blob = world.container.getPageBlobClient(job.blobName);
  if (!(await blob.exists())) return 0;
  return (await listPageRanges(blob)).reduce((n, r) => n + (r.end - r.start), 0);
}

let world: World;
let cwd: string;

beforeAll(async () => {
  ensureBuilt();
  cwd = mkdtempSync(join(tmpdir(), 'basm-faults-'));
});
afterEach(async () => {
  await Promise.all([...running].map(kill9));
});
afterAll(() => rmSync(cwd, { recursive: true, force: true }));

function workerEnv(w: World, over: Record<string, string> = {}): Record<string, string> {
  return w.env({
    BASM_LEASE_SECONDS: '3',
    BASM_CHECKPOINT_MIB: '2',
    BASM_KEEP_SOURCE_VHD: 'true',
    BASM_GALLERY_POLL_SECONDS: '1',
    BASM_LOCAL_VISIBILITY_TIMEOUT_SECONDS: '1',
    BASM_LOCAL_MAX_POLLING_INTERVAL_MS: '200',
    BASM_LOCAL_MESSAGE_LOCK_SECONDS: '3',
    ...over,
  });
}

function assertMirrored(w: World, job: Job, fx: StemcellFixture, version: string, galleryVersion: string) {
  expect(job.status).toBe('succeeded');
  const puts = w.arm.requests.filter(
    (r) => r.method === 'PUT' && r.path.endsWith(`/versions/${galleryVersion}`),
  );
  expect(puts.filter((r) => r.status < 300)).toHaveLength(1);
  expect(w.github.dispatches.filter((d) => d.inputs.stemcell_version === version)).toHaveLength(1);
  expect((w.arm.version(SERIES, galleryVersion) as { tags: Record<string, string> }).tags.image_sha256).toBe(
    fx.imageSha256,
  );
}

/** POST /api/mirror for `version` of the test series, accepted. */
async function requestMirror(w: WorkerProcess, version: string): Promise<void> {
  const res = await fetch(`${w.url}/api/mirror`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ series: SERIES, version }),
  });
  expect(res.status).toBe(202);
}

/** Waits for the job to end; it must have succeeded, mirrored once and left the VHD byte for byte. */
async function expectMirroredIdentical(
  w: World,
  fx: StemcellFixture,
  version: string,
  galleryVersion: string,
): Promise<Job> {
  const done = await w.waitForJob(version, (j) => j.status === 'succeeded' || j.status === 'failed', 120_000);
  expect(done.status, `${done.errorCode ?? ''}: ${done.errorMessage ?? ''}`).toBe('succeeded');
  assertMirrored(w, done, fx, version, galleryVersion);
  expect((await w.container.getBlobClient(done.blobName!).downloadToBuffer()).equals(fx.vhd)).toBe(true);
  return done;
}

describe('worker killed with SIGKILL and restarted', () => {
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world.close());

  it(
    'finishes the job after a kill at each of five points, with one blob, one version, one notification',
    { timeout: 300_000 },
    async () => {
      const version = '3.1';
      const fx = await world.addStemcell(version, { vhdMiB: 64 });
      const env = workerEnv(world);
      world.boshio.throttle(2 * MIB);
      world.arm.setPollsUntilDone(8);
      const resumes: Array<{ point: string; watermark: number; presentBytes: number; sentBefore: number }> =
        [];

      let worker = await startWorker(env, cwd);
      await requestMirror(worker, version);

      const points: Array<{ point: string; when: (j: Job) => boolean; then?: () => void }> = [
        {
          point: 'mid-download',
          when: (j) => j.stage === 'transfer' && j.watermark > 0 && j.downloadedBytes > 0,
        },
        {
          point: 'mid-upload',
          when: (j) => j.stage === 'transfer' && j.watermark >= fx.vhd.length / 2,
          // The next two ARM calls (the publish step's) are throttled, holding the job in 'publish'.
          then: () => world.arm.failNext(2, 429, 2),
        },
        { point: 'between upload and publish', when: (j) => j.stage === 'publish' },
        {
          point: 'during gallery polling',
          when: (j) => j.stage === 'replicate',
          // The first dispatch hangs, holding the job in 'notify'.
          then: () => world.github.failNext(1, 'hang'),
        },
        { point: 'before notify', when: (j) => j.stage === 'notify' },
      ];
      for (const p of points) {
        const job = await world.waitForJob(version, (j) => p.when(j) || j.status === 'failed', 90_000);
        expect(job.status, `${p.point}: ${job.errorMessage ?? ''}`).not.toBe('failed');
        await kill9(worker);
        p.then?.();
        const after = (await world.jobs.get(SERIES, version))!;
        resumes.push({
          point: p.point,
          watermark: after.watermark,
          presentBytes: await presentBytes(world, after),
          sentBefore: after.sentBytes,
        });
        if (p.point === 'mid-upload') world.boshio.throttle(undefined);
        worker = await startWorker(env, cwd);
      }
      const done = await expectMirroredIdentical(world, fx, version, '3.1.0');
      await stopWorker(worker);
      // The pass after the mid-upload kill completes the transfer: it must send exactly what the blob
      // lacked at its start, plus at most the Put Pages that were in flight when the worker died.
      const [, midUpload, afterUpload] = resumes;
      const passSent = afterUpload!.sentBefore - midUpload!.sentBefore;
      const lacked = fx.nonZeroRunBytes - midUpload!.presentBytes;
      const reuploaded = passSent - lacked;
      expect(afterUpload!.presentBytes).toBe(fx.nonZeroRunBytes);
      expect(reuploaded).toBeGreaterThanOrEqual(0);
      expect(reuploaded).toBeLessThanOrEqual(8 * 4 * MIB);
      expect(done.uploadedBytes).toBe(fx.nonZeroRunBytes);
      console.log(
        JSON.stringify({ kills: resumes, nonZeroRunBytes: fx.nonZeroRunBytes, passSent, lacked, reuploaded }),
      );
    },
  );
});

describe('duplicate delivery', () => {
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world.close());

  it('does one transfer when the same message is delivered twice at once', { timeout: 120_000 }, async () => {
    const version = '3.2';
    const fx = await world.addStemcell(version, { vhdMiB: 32 });
    world.boshio.throttle(8 * MIB);
    const env = workerEnv(world);
    const [a, b] = await Promise.all([startWorker(env, cwd), startWorker(env, cwd)]);
    const text = encodeQueueMessage({ series: SERIES, version });
    await Promise.all([world.queue.sendMessage(text), world.queue.sendMessage(text)]);
    const done = await world.waitForJob(
      version,
      (j) => j.status === 'succeeded' || j.status === 'failed',
      90_000,
    );
    await Promise.all([stopWorker(a), stopWorker(b)]);
    assertMirrored(world, done, fx, version, '3.2.0');
    const downloads = world.boshio.requests.filter(
      (r) => r.path.includes(`${version}`) && r.path.startsWith('/d/'),
    );
    expect(downloads).toHaveLength(1);
    expect(done.passes).toBe(1);
    expect(done.sentBytes).toBe(fx.nonZeroRunBytes);
    const deferred = [...a.lines, ...b.lines].filter((l) => l.includes('job.lease-busy'));
    expect(deferred.length).toBeGreaterThanOrEqual(1);
  });
});

describe('Azurite restarted mid-transfer', () => {
  let location: string;
  beforeAll(async () => {
    location = mkdtempSync(join(tmpdir(), 'basm-azurite-'));
    world = await startWorld({ azuriteLocation: location });
  });
  afterAll(async () => {
    await world.close();
    rmSync(location, { recursive: true, force: true });
  });

  it('completes the job once storage is back', { timeout: 180_000 }, async () => {
    const version = '3.3';
    const fx = await world.addStemcell(version, { vhdMiB: 48 });
    world.boshio.throttle(3 * MIB);
    const worker = await startWorker(workerEnv(world), cwd);
    await world.queue.sendMessage(encodeQueueMessage({ series: SERIES, version }));
    await world.waitForJob(version, (j) => j.stage === 'transfer' && j.watermark > 4 * MIB, 60_000);
    const ports = world.azurite.ports;
    await world.azurite.stop();
    await new Promise((r) => setTimeout(r, 1500));
    world.azurite = await startAzurite({ location, ports });
    world.boshio.throttle(undefined);
    const done = await world.waitForJob(
      version,
      (j) => j.status === 'succeeded' || j.status === 'failed',
      120_000,
    );
    await stopWorker(worker);
    assertMirrored(world, done, fx, version, '3.3.0');
    expect((await world.container.getBlobClient(done.blobName!).downloadToBuffer()).equals(fx.vhd)).toBe(
      true,
    );
  });
});

/** The next event line at or after `from` that `match` accepts, within `limitMs`. */
async function nextEvent(
  w: WorkerProcess,
  from: number,
  match: (e: Record<string, unknown>) => boolean,
  limitMs = 60_000,
): Promise<{ event: Record<string, unknown>; index: number }> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    for (let i = from; i < w.lines.length; i++) {
      const l = w.lines[i]!;
      if (!l.startsWith('{')) continue;
      let e: Record<string, unknown>;
      try {
        e = JSON.parse(l) as Record<string, unknown>;
      } catch {
        continue;
      }
      if (match(e)) return { event: e, index: i };
    }
    if (Date.now() > deadline) throw new Error(`no matching event: ${w.lines.slice(-10).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the whole instance lost mid-transfer', () => {
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world.close());

  it(
    "is carried on by the run's watchdog, not after the host's 10-minute lock, and ends byte-identical",
    { timeout: 180_000 },
    async () => {
      const version = '3.6';
      const fx = await world.addStemcell(version, { vhdMiB: 16 });
      // About 20 s of download: the job is mid-transfer when the instance goes.
      world.boshio.throttle(Math.ceil(fx.tgz.length / 20));
      // As in Azure: nothing releases a message whose instance died; it stays hidden 10 minutes.
      const env = workerEnv(world, { BASM_LOCAL_MESSAGE_LOCK_SECONDS: '600' });
      let host = await startWorker(env, cwd);
      await requestMirror(host, version);
      const mid = await world.waitForJob(version, (j) => j.stage === 'transfer' && j.downloadedBytes > 0);
      await kill9(host);
      const killedAt = Date.now();
      world.boshio.throttle(undefined);
      host = await startWorker(env, cwd);
      const takeOver = await nextEvent(host, 0, (e) => e.event === 'job.watchdog-take-over', 60_000);
      expect(takeOver.event.deadOwner).toBe(mid.leaseOwner);
      await expectMirroredIdentical(world, fx, version, '3.6.0');
      await stopWorker(host);
      console.log(JSON.stringify({ takeOverAfterMs: Date.parse(String(takeOver.event.time)) - killedAt }));
    },
  );
});

describe('an invocation that outlives functionTimeout', () => {
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world.close());

  it(
    'restarts the worker process; the job carries on after its lease and ends byte-identical',
    { timeout: 180_000 },
    async () => {
      const version = '3.4';
      const fx = await world.addStemcell(version, { vhdMiB: 8 });
      // The whole download would take 40 s: the first invocation cannot end within the 10 s
      // timeout. Once it is lifted, each later invocation needs a few seconds, well inside it even
      // on a busy machine.
      world.boshio.throttle(Math.ceil(fx.tgz.length / 40));
      const env = workerEnv(world, {
        BASM_LOCAL_FUNCTION_TIMEOUT_SECONDS: '10',
        // The app's own budget would stop it in time; here the invocation must outlive the timeout.
        BASM_INVOCATION_BUDGET_SECONDS: '600',
      });
      const host = await startWorker(env, cwd);
      await world.queue.sendMessage(encodeQueueMessage({ series: SERIES, version }));
      const first = await nextEvent(host, 0, (e) => e.event === 'worker.started');
      const timedOut = await nextEvent(host, 0, (e) => e.event === 'function.timeout', 60_000);
      expect(timedOut.event.function).toBe('mirrorWorker');
      expect(timedOut.event.functionTimeout).toBe('00:00:10');
      const failed = await nextEvent(
        host,
        timedOut.index,
        (e) => e.event === 'function.failed' && e.function === 'mirrorWorker',
      );
      expect(String((failed.event.error as { message: string }).message)).toMatch(
        /Timeout value of 00:00:10 exceeded by function 'mirrorWorker'.*worker process was restarted/,
      );
      const second = await nextEvent(host, timedOut.index, (e) => e.event === 'worker.started');
      expect(second.event.pid).not.toBe(first.event.pid);
      world.boshio.throttle(undefined);
      const done = await expectMirroredIdentical(world, fx, version, '3.4.0');
      // The host itself never stopped: only its worker process was replaced.
      expect(host.child.exitCode).toBeNull();
      await stopWorker(host);
      expect(done.passes).toBeGreaterThanOrEqual(2);
    },
  );
});

describe('a message whose invocation crashes the process on every delivery', () => {
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world.close());

  it(
    'is poisoned on arrival after the maximum: job failed with POISONED, one failure notification',
    { timeout: 240_000 },
    async () => {
      const version = '3.5';
      const fx = await world.addStemcell(version, { vhdMiB: 16 });
      // Slow enough that every invocation is still running when the process dies.
      world.boshio.throttle(Math.ceil(fx.tgz.length / 60));
      const env = workerEnv(world, {
        // The lease ends before the message's lock does, so each delivery runs the job again
        // instead of finding it leased and deferring.
        BASM_LEASE_SECONDS: '2',
        BASM_LOCAL_MESSAGE_LOCK_SECONDS: '4',
      });
      let host = await startWorker(env, cwd);
      await requestMirror(host, version);
      const dequeueCounts: unknown[] = [];
      let poisoned: Record<string, unknown> | undefined;
      while (!poisoned) {
        const seen = await nextEvent(
          host,
          0,
          (e) =>
            e.event === 'queue.poisoned' ||
            (e.event === 'job.stage' && e.version === version && e.function === 'mirrorWorker'),
          60_000,
        );
        if (seen.event.event === 'queue.poisoned') {
          poisoned = seen.event;
          break;
        }
        dequeueCounts.push(seen.event.dequeueCount);
        // The process dies mid-invocation: nothing settles the message; its lock ends in 4 s.
        await kill9(host);
        host = await startWorker(env, cwd);
      }
      // The message's own deliveries, 1 to 5, and between them the watchdogs' take-overs (first
      // deliveries, so dequeue count 1): at most one per delivery of the message, never a chain.
      expect(dequeueCounts.filter((c) => c !== 1)).toEqual([2, 3, 4, 5]);
      const ones = dequeueCounts.filter((c) => c === 1).length;
      expect(ones).toBeGreaterThanOrEqual(1);
      expect(ones).toBeLessThanOrEqual(1 + 5);
      expect(poisoned.uninvoked).toBe(true);
      expect(String(poisoned.reason)).toMatch(/dequeued 6 times, more than maxDequeueCount 5/);
      const job = await world.waitForJob(version, (j) => j.status === 'failed', 60_000);
      expect(job.errorCode).toBe('POISONED');
      await nextEvent(host, 0, (e) => e.event === 'function.succeeded' && e.function === 'mirrorPoison');
      await stopWorker(host);
      const sent = world.github.dispatches.filter((d) => d.inputs.stemcell_version === version);
      expect(sent).toHaveLength(1);
      expect(sent[0]!.inputs).toMatchObject({ status: 'failed', error_code: 'POISONED' });
    },
  );
});
