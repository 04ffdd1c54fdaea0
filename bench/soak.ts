/**
 * Soak and load (DESIGN §7), each against the local host in a process of its own (soak-host) on a
 * fresh in-memory Azurite, its blob endpoint behind a counting proxy:
 * - sequential: N mirrors in a row in one process; its RSS and open handles after each, measured
 *   after full collections, should stay flat;
 * - concurrentRequests: N forced `POST /api/mirror` for one version at once: one job, one transfer
 *   (one download, the VHD's pages put once), the blob byte-identical to the VHD;
 * - concurrentSeries: N series requested at once and mirrored together by one worker process:
 *   all staged and byte-identical, with the process's peak RSS.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { JOBS_TABLE, REQUEST_QUEUE } from '../src/lib/azure/storage-clients';
import { JobStore } from '../src/lib/jobs/store';
import { listPageRanges } from '../src/lib/azure/pageblob';
import { TRANSFER_NODE_ARGS } from '../src/lib/core/v8-options';
import { startAzurite, type Azurite } from '../src/local/azurite';
import type { FakeBoshIo } from '../test/fakes/boshio';
import { overlapBytes, type VhdScan } from './floors';
import { childEnv } from './mirror';
import { blobSha256 } from './resume';
import type { HarnessMessage, HostMessage, HostStats } from './soak-host';
import type { BenchStemcell } from './stemcells';
import { startThrottleProxy, viaProxy, type ThrottleProxy } from './throttle-proxy';

export interface SoakOptions {
  stemcell: BenchStemcell;
  scan: VhdScan;
  boshio: FakeBoshIo;
  scratch: string;
  mirrors: number;
  requests: number;
  series: number;
  say: (s: string) => void;
}

export interface SoakSnapshot {
  rssMiB: number;
  heapUsedMiB: number;
  activeResources: number;
  fds: number;
}

export interface SequentialResult {
  mirrors: number;
  /** The host idle before the first request. */
  idle: SoakSnapshot & { resources: Record<string, number> };
  /** After each mirror, in order. */
  seconds: number[];
  rssMiB: number[];
  heapUsedMiB: number[];
  activeResources: number[];
  fds: number[];
  /** The last mirror's RSS against the second's (the first one loads code and fills pools). */
  rssGrowth: number;
  /** Active resources and descriptors after the last mirror less after the first. */
  activeResourcesDelta: number;
  fdsDelta: number;
  /**
   * Highest count in the second half of the run less the highest in the first half. Pooled
   * keep-alive sockets come and go, so single samples wobble by one or two; a leak climbs.
   */
  activeResourcesRise: number;
  fdsRise: number;
  resourcesAfterLast: Record<string, number>;
  met: { rssFlat: boolean; handlesFlat: boolean; allStaged: boolean };
}

export interface ConcurrentRequestsResult {
  requests: number;
  /** HTTP status of each answer, counted. */
  answers: Record<string, number>;
  /** Job rows for the version. */
  jobs: number;
  status: string;
  passes: number;
  /** The job's Put Page bytes, and what the proxy saw reach the blob. */
  sentBytes: number;
  putPageBytes: number;
  nonZeroBytes64k: number;
  /** Download GETs of the archive that bosh.io answered. */
  downloads: number;
  byteIdentical: boolean;
  /** From the first request to the queue left empty (every message handled). */
  seconds: number;
  met: { oneJob: boolean; oneTransfer: boolean; byteIdentical: boolean };
}

export interface ConcurrentSeriesResult {
  series: number;
  batchSize: number;
  seconds: number;
  /** Peak RSS of the worker process over the run; `idleRssMiB` before it. */
  peakRssMiB: number;
  idleRssMiB: number;
  statuses: Record<string, number>;
  putPageBytes: number;
  byteIdentical: number;
  met: { allStaged: boolean; byteIdentical: boolean };
}

export interface SoakResult {
  stemcell: { sizeMiB: number; archiveBytes: number; vhdBytes: number; nonZeroBytes64k: number };
  sequential: SequentialResult;
  concurrentRequests: ConcurrentRequestsResult;
  concurrentSeries: ConcurrentSeriesResult;
}

const TERMINAL = new Set(['succeeded', 'skipped', 'staged', 'failed']);
const CONTAINER = 'stemcell';
const round = (n: number, digits = 1): number => Math.round(n * 10 ** digits) / 10 ** digits;

interface SoakHost {
  url: string;
  pid: number;
  stats(): Promise<HostStats>;
  stop(): Promise<void>;
}

/** Starts soak-host with these app settings; its log goes to a file in `workDir`. */
async function startHost(
  settings: Record<string, string>,
  batchSize: number,
  workDir: string,
): Promise<SoakHost> {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  const logFd = openSync(join(workDir, 'host.log'), 'w');
  let child: ChildProcess;
  try {
    child = fork(join(__dirname, 'soak-host.js'), [String(batchSize)], {
      cwd: workDir,
      env: childEnv(settings, workDir),
      execArgv: ['--expose-gc', ...TRANSFER_NODE_ARGS],
      stdio: ['ignore', logFd, logFd, 'ipc'],
    });
  } finally {
    closeSync(logFd);
  }
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const waiting = new Map<number, (s: HostStats) => void>();
  let nextId = 1;
  const url = await new Promise<string>((resolve, reject) => {
    child.on('message', (m: HostMessage) => {
      if (m.kind === 'ready') resolve(m.url);
      if (m.kind === 'stats') waiting.get(m.id)?.(m.stats);
    });
    child.once('exit', (code) =>
      reject(new Error(`the soak host exited with ${code}; see ${workDir}/host.log`)),
    );
  });
  const send = (m: HarnessMessage): void => void child.send(m);
  return {
    url,
    pid: child.pid ?? 0,
    stats: () =>
      new Promise((resolve) => {
        const id = nextId++;
        waiting.set(id, (s) => {
          waiting.delete(id);
          resolve(s);
        });
        send({ kind: 'stats', id });
      }),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) send({ kind: 'stop' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface JobView {
  series: string;
  version: string;
  status: string;
}

async function post(
  url: string,
  body: { series: string; version: string; force?: boolean },
): Promise<{ status: number; text: string }> {
  const res = await fetch(`${url}/api/mirror`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function jobOf(url: string, series: string, version: string): Promise<JobView | undefined> {
  const res = await fetch(`${url}/api/mirror/${series}/${version}`);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status !== 200) throw new Error(`GET status of ${series}/${version} answered ${res.status}`);
  return (await res.json()) as JobView;
}

async function until<T>(what: string, limitMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const finished = (url: string, series: string, version: string): Promise<JobView> =>
  until(`${series}/${version} to finish`, 15 * 60_000, async () => {
    const j = await jobOf(url, series, version);
    return j && TERMINAL.has(j.status) ? j : undefined;
  });

interface World {
  azurite: Azurite;
  proxy: ThrottleProxy;
  settings: Record<string, string>;
  blobs: ReturnType<BlobServiceClient['getContainerClient']>;
  stop(): Promise<void>;
}

async function world(o: SoakOptions, series: string[]): Promise<World> {
  const azurite = await startAzurite();
  const proxy = await startThrottleProxy({ targetPort: azurite.ports.blob });
  return {
    azurite,
    proxy,
    settings: {
      AzureWebJobsStorage: viaProxy(azurite.connectionString, proxy.port),
      BASM_BOSH_IO_URL: o.boshio.url,
      BASM_STEMCELL_SERIES: series.join(','),
      // Once a year: the schedule must not add requests of its own.
      BASM_SCHEDULE: '0 0 0 1 1 *',
      // Messages deferred behind a live lease come back when it would have expired, and each run's
      // watchdog 2 s after that: short, so the cases wait little for the queue to settle.
      BASM_LEASE_SECONDS: '3',
    },
    blobs: BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(CONTAINER),
    async stop() {
      await proxy.close();
      await azurite.stop();
    },
  };
}

/** Until the request queue holds no message, delayed ones (continuations, watchdogs) included. */
async function queueSettled(w: World): Promise<void> {
  const queue = new QueueClient(w.azurite.connectionString, REQUEST_QUEUE);
  await until('the request queue to empty', 5 * 60_000, async () => {
    const p = await queue.getProperties();
    return (p.approximateMessagesCount ?? 0) === 0 ? true : undefined;
  });
}

function snapshot(s: HostStats): SoakSnapshot {
  return {
    rssMiB: round(s.rssMiB),
    heapUsedMiB: round(s.heapUsedMiB),
    activeResources: s.resourceCount,
    fds: s.fds,
  };
}

async function sequential(o: SoakOptions): Promise<SequentialResult> {
  const { stemcell: s } = o;
  const versions = Array.from({ length: o.mirrors }, (_, i) => `2.${i + 1}`);
  for (const v of versions)
    await o.boshio.addRelease({ series: s.series, version: v, body: { path: s.tgzPath } });
  const w = await world(o, [s.series]);
  const host = await startHost(w.settings, 1, join(o.scratch, 'run', 'soak-sequential'));
  try {
    const idle = await host.stats();
    const after: HostStats[] = [];
    const seconds: number[] = [];
    let allStaged = true;
    for (const v of versions) {
      const t0 = performance.now();
      const answer = await post(host.url, { series: s.series, version: v });
      if (answer.status !== 202) throw new Error(`POST ${v} answered ${answer.status}: ${answer.text}`);
      const job = await finished(host.url, s.series, v);
      seconds.push(round((performance.now() - t0) / 1000, 2));
      allStaged &&= job.status === 'staged';
      // The staged blob goes (outside the host), so Azurite's memory does not pile up.
      await w.blobs.getPageBlobClient(`${s.series}/${v}.vhd`).deleteIfExists();
      // Sampled once the mirror's watchdog has come and gone: not while it is being handled.
      await queueSettled(w);
      after.push(await host.stats());
      const last = after[after.length - 1]!;
      o.say(
        `  soak ${v}: ${job.status} in ${seconds[seconds.length - 1]} s, RSS ${last.rssMiB.toFixed(0)} MiB, ` +
          `resources ${last.resourceCount}, fds ${last.fds}`,
      );
    }
    const first = after[0]!;
    const second = after[Math.min(1, after.length - 1)]!;
    const last = after[after.length - 1]!;
    const rssGrowth = last.rssMiB / second.rssMiB - 1;
    const half = Math.ceil(after.length / 2);
    const rise = (pick: (h: HostStats) => number): number =>
      Math.max(...after.slice(half).map(pick)) - Math.max(...after.slice(0, half).map(pick));
    const activeResourcesRise = after.length < 2 ? 0 : rise((h) => h.resourceCount);
    const fdsRise = after.length < 2 ? 0 : rise((h) => h.fds);
    return {
      mirrors: o.mirrors,
      idle: { ...snapshot(idle), resources: idle.resources },
      seconds,
      rssMiB: after.map((a) => round(a.rssMiB)),
      heapUsedMiB: after.map((a) => round(a.heapUsedMiB)),
      activeResources: after.map((a) => a.resourceCount),
      fds: after.map((a) => a.fds),
      rssGrowth: round(rssGrowth, 3),
      activeResourcesDelta: last.resourceCount - first.resourceCount,
      fdsDelta: last.fds - first.fds,
      activeResourcesRise,
      fdsRise,
      resourcesAfterLast: last.resources,
      met: {
        rssFlat: rssGrowth < 0.1,
        handlesFlat: activeResourcesRise <= 0 && fdsRise <= 0,
        allStaged,
      },
    };
  } finally {
    await host.stop();
    await w.stop();
  }
}

async function concurrentRequests(o: SoakOptions): Promise<ConcurrentRequestsResult> {
  const { stemcell: s, scan } = o;
  const version = '3.1';
  await o.boshio.addRelease({ series: s.series, version, body: { path: s.tgzPath } });
  const w = await world(o, [s.series]);
  // As many messages at once as the Functions host takes by default, so they race for the lease.
  const host = await startHost(w.settings, 16, join(o.scratch, 'run', 'soak-requests'));
  try {
    const downloadPath = `/${s.series}/${version}/`;
    const downloadsBefore = o.boshio.requests.filter(
      (r) => r.method === 'GET' && r.path.includes(downloadPath),
    ).length;
    const t0 = performance.now();
    const answers = await Promise.all(
      Array.from({ length: o.requests }, () => post(host.url, { series: s.series, version, force: true })),
    );
    const job = await finished(host.url, s.series, version);
    // Every message handled: the ones deferred behind the lease have come back and found the job done.
    await queueSettled(w);
    const seconds = (performance.now() - t0) / 1000;
    const list = (await (await fetch(`${host.url}/api/mirror?series=${s.series}`)).json()) as {
      jobs: JobView[];
    };
    const rows = list.jobs.filter((j) => j.version === version);
    const row = await jobRow(w, s.series, version);
    const blobName = `${s.series}/${version}.vhd`;
    const blob = w.blobs.getPageBlobClient(blobName);
    const putPageBytes = w.proxy.putPages().get(`/devstoreaccount1/${CONTAINER}/${blobName}`)?.bytes ?? 0;
    const downloads =
      o.boshio.requests.filter((r) => r.method === 'GET' && r.path.includes(downloadPath)).length -
      downloadsBefore;
    const covered = overlapBytes(await listPageRanges(blob), scan.nonZeroRanges);
    const byteIdentical = covered === scan.nonZeroBytes64k && (await blobSha256(blob)) === scan.sha256;
    const counted: Record<string, number> = {};
    for (const a of answers) counted[a.status] = (counted[a.status] ?? 0) + 1;
    const result: ConcurrentRequestsResult = {
      requests: o.requests,
      answers: counted,
      jobs: rows.length,
      status: job.status,
      passes: row.passes,
      sentBytes: row.sentBytes,
      putPageBytes,
      nonZeroBytes64k: scan.nonZeroBytes64k,
      downloads,
      byteIdentical,
      seconds: round(seconds, 2),
      met: {
        oneJob: rows.length === 1,
        oneTransfer: row.passes === 1 && downloads === 1 && putPageBytes <= scan.nonZeroBytes64k,
        byteIdentical,
      },
    };
    o.say(
      `  ${o.requests} forced requests: ${JSON.stringify(counted)}, ${rows.length} job(s) ${job.status}, ` +
        `${row.passes} pass(es), ${downloads} download(s), ${putPageBytes} B put (non-zero ${scan.nonZeroBytes64k}), ` +
        `byte-identical ${byteIdentical}, ${result.seconds} s`,
    );
    return result;
  } finally {
    await host.stop();
    await w.stop();
  }
}

/** The job row itself (passes and sentBytes are not in the status JSON). */
async function jobRow(
  w: World,
  series: string,
  version: string,
): Promise<{ passes: number; sentBytes: number }> {
  const store = new JobStore(
    TableClient.fromConnectionString(w.azurite.connectionString, JOBS_TABLE, {
      allowInsecureConnection: true,
    }),
  );
  const job = await store.get(series, version);
  if (!job) throw new Error(`no job row for ${series}/${version}`);
  return { passes: job.passes, sentBytes: job.sentBytes };
}

async function concurrentSeries(o: SoakOptions): Promise<ConcurrentSeriesResult> {
  const { stemcell: s, scan } = o;
  const version = '4.1';
  const series = Array.from({ length: o.series }, (_, i) => `bosh-azure-hyperv-ubuntu-soak${i + 1}-go_agent`);
  for (const name of series) await o.boshio.addRelease({ series: name, version, body: { path: s.tgzPath } });
  const w = await world(o, series);
  const host = await startHost(w.settings, o.series, join(o.scratch, 'run', 'soak-series'));
  try {
    const idle = await host.stats();
    const t0 = performance.now();
    const answers = await Promise.all(series.map((name) => post(host.url, { series: name, version })));
    const refused = answers.filter((a) => a.status !== 202);
    if (refused.length > 0) throw new Error(`requests refused: ${refused.map((a) => a.text).join('; ')}`);
    const jobs = await Promise.all(series.map((name) => finished(host.url, name, version)));
    const seconds = (performance.now() - t0) / 1000;
    const after = await host.stats();
    const statuses: Record<string, number> = {};
    for (const j of jobs) statuses[j.status] = (statuses[j.status] ?? 0) + 1;
    let identical = 0;
    for (const name of series) {
      const blob = w.blobs.getPageBlobClient(`${name}/${version}.vhd`);
      if ((await blobSha256(blob)) === scan.sha256) identical++;
      await blob.deleteIfExists();
    }
    const putPageBytes = [...w.proxy.putPages().values()].reduce((n, p) => n + p.bytes, 0);
    const result: ConcurrentSeriesResult = {
      series: o.series,
      batchSize: o.series,
      seconds: round(seconds, 2),
      peakRssMiB: round(after.peakRssMiB),
      idleRssMiB: round(idle.rssMiB),
      statuses,
      putPageBytes,
      byteIdentical: identical,
      met: { allStaged: statuses.staged === o.series, byteIdentical: identical === o.series },
    };
    o.say(
      `  ${o.series} series at once: ${JSON.stringify(statuses)} in ${result.seconds} s, peak RSS ` +
        `${result.peakRssMiB} MiB (idle ${result.idleRssMiB}), ${identical} byte-identical`,
    );
    return result;
  } finally {
    await host.stop();
    await w.stop();
  }
}

export async function runSoak(o: SoakOptions): Promise<SoakResult> {
  o.say(`— soak: ${o.mirrors} mirrors in a row in one host process (${o.stemcell.sizeMiB} MiB stemcell)`);
  const seq = await sequential(o);
  o.say(`— load: ${o.requests} concurrent forced requests for one version`);
  const req = await concurrentRequests(o);
  o.say(`— load: ${o.series} series at once in one worker process`);
  const ser = await concurrentSeries(o);
  return {
    stemcell: {
      sizeMiB: o.stemcell.sizeMiB,
      archiveBytes: o.stemcell.archiveBytes,
      vhdBytes: o.scan.vhdBytes,
      nonZeroBytes64k: o.scan.nonZeroBytes64k,
    },
    sequential: seq,
    concurrentRequests: req,
    concurrentSeries: ser,
  };
}
