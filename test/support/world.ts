/**
 * Everything an end-to-end test needs, real where it can be: Azurite, and the strict fakes of
 * bosh.io, ARM (with its managed-identity endpoint) and GitHub. `env()` gives the app settings that
 * point the app at them, for an in-process host or a child process alike.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { JOBS_TABLE, POISON_QUEUE, REQUEST_QUEUE } from '../../src/lib/azure/storage-clients';
import { resetConfig } from '../../src/lib/config/config';
import { TERMINAL, type Job } from '../../src/lib/jobs/job';
import { JobStore } from '../../src/lib/jobs/store';
import { resetServices } from '../../src/lib/mirror/services';
import type { LogSink } from '../../src/lib/core/log';
import { startAzurite, type Azurite } from '../../src/local/azurite';
import { startLocalHost, type LocalHost } from '../../src/local/host';
import { pageBlobFacts, startFakeArm, type FakeArm } from '../fakes/arm';
import { startFakeBoshIo, type FakeBoshIo } from '../fakes/boshio';
import { MIRROR_WORKFLOW_INPUTS, startFakeGithub, type FakeGithub } from '../fakes/github';
import { makeStemcell, type StemcellFixture, type StemcellFixtureOptions } from './stemcell-fixture';

export const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
export const SUBSCRIPTION = '00000000-0000-4000-8000-00000000c0de';
export const CLIENT_ID = '33333333-3333-4333-8333-333333333333';
export const GITHUB_TOKEN = 'ghp_worldTestToken0123456789abcdef';
export const GALLERY = 'stemcells';
export const RESOURCE_GROUP = 'rg-mirror';
/** Settings over the world's that leave the gallery out: jobs end `staged`. */
export const NO_GALLERY: Readonly<Record<string, string>> = {
  AZURE_SUBSCRIPTION_ID: '',
  AZURE_RESOURCE_GROUP: '',
  AZURE_REGION: '',
  AZURE_GALLERY_NAME: '',
};

export interface World {
  azurite: Azurite;
  boshio: FakeBoshIo;
  arm: FakeArm;
  github: FakeGithub;
  container: ContainerClient;
  jobs: JobStore;
  queue: QueueClient;
  poison: QueueClient;
  /** App settings pointing at this world; `over` wins, an empty string removes a setting. */
  env(over?: Record<string, string>): Record<string, string>;
  /** Puts the settings into process.env for in-process use and forgets cached config/services. */
  apply(over?: Record<string, string>): void;
  /** A stemcell made in memory and published on the fake bosh.io. */
  addStemcell(version: string, opts?: StemcellFixtureOptions): Promise<StemcellFixture>;
  /**
   * The app in this process (the local host serving the real function files) with the world's
   * settings plus `over`; replaces the host started before. `kinds` limits which triggers run.
   */
  startHost(opts?: HostOptions): Promise<LocalHost>;
  stopHost(): Promise<void>;
  /** Polls the job row until `done` says so or the time is up. */
  waitForJob(version: string, done: (j: Job) => boolean, timeoutMs?: number): Promise<Job>;
  /**
   * POST /api/mirror for `version` (plus `body`) to a host with the world's settings plus `over`,
   * then waits for the job to finish (`timeoutMs`, default 60 s); throws unless the POST answered 202.
   */
  mirror(
    version: string,
    o?: { over?: Record<string, string>; body?: Record<string, unknown>; sink?: LogSink; timeoutMs?: number },
  ): Promise<Job>;
  close(): Promise<void>;
}

export interface HostOptions {
  over?: Record<string, string>;
  kinds?: Array<'http' | 'queue' | 'timer'>;
  sink?: LogSink;
}

/** POST /api/mirror as a client would send it. */
export async function postMirror(
  hostUrl: string,
  body: unknown,
  contentType = 'application/json',
): Promise<{ status: number; json: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(`${hostUrl}/api/mirror`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
    headers: res.headers,
  };
}

export async function startWorld(opts: { azuriteLocation?: string } = {}): Promise<World> {
  const azurite = await startAzurite(opts.azuriteLocation ? { location: opts.azuriteLocation } : {});
  const service = BlobServiceClient.fromConnectionString(azurite.connectionString);
  const container = service.getContainerClient('stemcell');
  const boshio = await startFakeBoshIo();
  const arm = await startFakeArm({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RESOURCE_GROUP,
    galleryName: GALLERY,
    location: 'westeurope',
    userAssignedClientIds: [CLIENT_ID],
    pollsUntilDone: 2,
    blobExists: (uri) => pageBlobFacts(container, uri),
  });
  const github = await startFakeGithub({
    owner: 'acme',
    repo: 'platform',
    tokens: [GITHUB_TOKEN],
    refs: ['main'],
    workflows: {
      // The inputs a downstream workflow declares (the earlier mirror's, plus series, version and status).
      'stemcell.yml': { inputs: MIRROR_WORKFLOW_INPUTS },
    },
  });
  const jobs = new JobStore(
    TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, { allowInsecureConnection: true }),
  );
  const queue = new QueueClient(azurite.connectionString, REQUEST_QUEUE);
  const poison = new QueueClient(azurite.connectionString, POISON_QUEUE);
  await queue.createIfNotExists();
  await poison.createIfNotExists();
  const base = (): Record<string, string> => ({
    AzureWebJobsStorage: azurite.connectionString,
    BASM_STEMCELL_SERIES: SERIES,
    // Set by the infra in Azure, where the timer is not indexed without it; due once a year here.
    BASM_SCHEDULE: '0 0 0 1 1 *',
    BASM_BOSH_IO_URL: boshio.url,
    AZURE_SUBSCRIPTION_ID: SUBSCRIPTION,
    AZURE_RESOURCE_GROUP: RESOURCE_GROUP,
    AZURE_REGION: 'westeurope',
    AZURE_GALLERY_NAME: GALLERY,
    AZURE_MANAGED_IDENTITY_ID: CLIENT_ID,
    AZURE_RESOURCE_MANAGER_ENDPOINT: arm.endpoint,
    IDENTITY_ENDPOINT: arm.identityEndpoint,
    IDENTITY_HEADER: arm.identityHeader,
    BASM_GALLERY_TARGET_REGIONS: 'westeurope=1,northeurope=2',
    BASM_GALLERY_POLL_SECONDS: '1',
    BASM_LEASE_SECONDS: '10',
    BASM_NOTIFY_GITHUB_TOKEN: GITHUB_TOKEN,
    BASM_NOTIFY_GITHUB_API_URL: github.url,
    BASM_NOTIFY_GITHUB_OWNER: 'acme',
    BASM_NOTIFY_GITHUB_REPO: 'platform',
    BASM_NOTIFY_GITHUB_WORKFLOW: 'stemcell.yml',
    BASM_NOTIFY_GITHUB_REF: 'main',
  });
  const env = (over: Record<string, string> = {}) => {
    const e = { ...base(), ...over };
    for (const [k, v] of Object.entries(e)) if (v === '') delete e[k];
    return e;
  };
  let applied: string[] = [];
  let host: LocalHost | undefined;
  const apply = (over: Record<string, string> = {}) => {
    for (const k of applied) delete process.env[k];
    const e = env(over);
    Object.assign(process.env, e);
    applied = Object.keys(e);
    resetConfig();
    resetServices();
  };
  const stopHost = async () => {
    const h = host;
    host = undefined;
    await h?.close();
  };
  const world: World = {
    azurite,
    boshio,
    arm,
    github,
    container,
    jobs,
    queue,
    poison,
    env,
    apply,
    async startHost(o: HostOptions = {}) {
      await stopHost();
      apply(o.over);
      const kinds = o.kinds ?? ['http', 'queue', 'timer'];
      host = await startLocalHost({
        port: 0,
        sink: o.sink ?? (() => undefined),
        kinds,
        queueSettings: { visibilityTimeoutMs: 300, maxPollingIntervalMs: 200 },
        minPollingIntervalMs: 50,
        drainLimitMs: 5000,
      });
      return host;
    },
    stopHost,
    async addStemcell(version, o = {}) {
      const fx = makeStemcell({ series: SERIES, version, ...o });
      await boshio.addRelease({ series: SERIES, version, body: fx.tgz });
      return fx;
    },
    async waitForJob(version, done, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let last: Job | undefined;
      while (Date.now() < deadline) {
        last = await jobs.get(SERIES, version);
        if (last && done(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(
        `job ${version} did not reach the expected state; last: ${JSON.stringify(last && { status: last.status, stage: last.stage, error: last.errorMessage })}`,
      );
    },
    async mirror(version, o = {}) {
      const h = await world.startHost({
        ...(o.over ? { over: o.over } : {}),
        ...(o.sink ? { sink: o.sink } : {}),
      });
      const res = await postMirror(h.url, { series: SERIES, version, ...o.body });
      if (res.status !== 202)
        throw new Error(`POST /api/mirror answered ${res.status}: ${JSON.stringify(res.json)}`);
      return world.waitForJob(version, (j) => TERMINAL.has(j.status), o.timeoutMs ?? 60_000);
    },
    async close() {
      await stopHost();
      await Promise.allSettled([boshio.close(), arm.close(), github.close()]);
      // The one running now: a test may have restarted it.
      await world.azurite.stop();
    },
  };
  return world;
}
