/**
 * The mirror of one (series, version), advanced one invocation at a time:
 * resolve → check → transfer (download, extract, upload, verify) → publish → replicate → notify → cleanup.
 * Every step starts from the job row and ends by writing it, so any invocation can pick up where
 * the last one stopped: after a crash, a timeout, a redeploy or a spent time budget.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { BoshIoClient, StemcellRelease } from '../boshio/client';
import type { Config } from '../config/config';
import { isMirrorError, MirrorError, toErrorInfo } from '../core/errors';
import type { GalleryPublisher } from '../azure/gallery';
import { cpiVersionTags, imageDefinitionFor, type ImageDefinitionSpec } from '../stemcell/cpi-image';
import { StaleJobError, TERMINAL, newJob, type Job, type JobStore } from '../jobs/store';
import type { Logger } from '../core/log';
import { compareVersions, toGalleryVersion } from '../core/names';
import type { Notifier, NotifyEvent } from '../notify/github';
import type { RequestSender } from '../jobs/request-queue';
import type { QueueMessage } from '../jobs/requests';
import { DownloadCache } from '../boshio/download-cache';
import { transferStemcell, type TransferCheckpoint, type TransferResult } from './transfer-pass';

export interface PipelineDeps {
  config: Config;
  jobs: JobStore;
  queue: RequestSender;
  boshio: BoshIoClient;
  container: ContainerClient;
  gallery: GalleryPublisher | undefined;
  notifier: Notifier | undefined;
  log: Logger;
  /** Identifies this worker in the lease. */
  workerId: string;
  /** Seconds between polls of a gallery operation. */
  pollDelaySeconds?: number;
  /** Called often during a transfer (the CLI's progress bar). */
  onProgress?: (job: Job, cp: TransferCheckpoint) => void;
}

export type RunOutcome =
  | { kind: 'finished'; job: Job }
  | { kind: 'continued'; job: Job }
  | { kind: 'deferred'; delaySeconds: number }
  | { kind: 'noop'; job: Job | undefined; why: string }
  | { kind: 'failed'; job: Job };

export interface RunOptions {
  /** Ends the invocation's work: checkpoint, enqueue a continuation, return. */
  budget: AbortSignal;
}

const LEASE_GRACE_SECONDS = 1;

/** Runs or advances the job a queue message names. Throws only for transient failures (the host retries). */
export async function runMirror(
  message: QueueMessage,
  deps: PipelineDeps,
  opts: RunOptions,
): Promise<RunOutcome> {
  const { log } = deps;
  const version =
    message.version === 'latest'
      ? (await deps.boshio.resolve(message.series, 'latest')).version
      : message.version;
  const jlog = log.child({ series: message.series, version });
  const job = await openJob(message, version, deps);
  if (TERMINAL.has(job.status)) {
    jlog.info('job.already-done', { status: job.status });
    return { kind: 'noop', job, why: `job is ${job.status}` };
  }
  // One owner per invocation: two deliveries in one process must not share a lease.
  const owner = `${deps.workerId}/${randomUUID().slice(0, 8)}`;
  const running = { status: 'running' as const, errorCode: undefined, errorMessage: undefined };
  const claim = await deps.jobs
    .claim(job, owner, deps.config.leaseSeconds, new Date(), running)
    .catch((e: unknown) => {
      if (e instanceof StaleJobError) return undefined;
      throw e;
    });
  if (claim === undefined || !claim.claimed) {
    // Someone else works on it: come back when their lease would have expired.
    const delaySeconds = claim
      ? Math.ceil(claim.remainingMs / 1000) + LEASE_GRACE_SECONDS
      : LEASE_GRACE_SECONDS;
    await deps.queue.send({ series: job.series, version: job.version, continuation: true }, delaySeconds);
    jlog.info('job.lease-busy', { stage: job.stage, delaySeconds });
    return { kind: 'deferred', delaySeconds };
  }
  const step = new Steps(claim.job, deps, opts, jlog);
  step.startHeartbeat();
  try {
    return await step.run();
  } catch (e) {
    return step.handleError(e);
  } finally {
    step.stopHeartbeat();
  }
}

/** Finds or creates the job; a new request re-arms a failed job (always with force, else if transient). */
async function openJob(message: QueueMessage, version: string, deps: PipelineDeps): Promise<Job> {
  const fresh = { ...newJob(message.series, version), force: message.force ?? false, reason: message.reason };
  const { job } = await deps.jobs.create(fresh);
  const rearm =
    job.status === 'failed' && !message.continuation && (message.force === true || !job.errorPermanent);
  if (!rearm) return job;
  deps.log.info('job.rearmed', { series: job.series, version, force: message.force ?? false });
  return deps.jobs.update(job, {
    ...rearmFields(),
    force: message.force ?? job.force,
    reason: message.reason ?? job.reason,
  });
}

/** A job started again: progress is kept, the staged blob's page ranges tell what is really there. */
export function rearmFields(): Partial<Job> {
  return {
    status: 'queued',
    stage: 'queued',
    errorCode: undefined,
    errorMessage: undefined,
    errorPermanent: false,
    pollerState: undefined,
    galleryImageVersionId: undefined,
    notify: 'off',
    notifyError: undefined,
    leaseOwner: undefined,
    leaseUntil: undefined,
  };
}

class Steps {
  constructor(
    private job: Job,
    private readonly deps: PipelineDeps,
    private readonly opts: RunOptions,
    private readonly log: Logger,
  ) {}

  private writes: Promise<unknown> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;

  /** Every write of the row goes through here, one at a time, so ETags never race each other. */
  private write(op: (job: Job) => Promise<Job>): Promise<Job> {
    const next = this.writes.then(async () => {
      this.job = await op(this.job);
      return this.job;
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  private save(changes: Partial<Job>): Promise<Job> {
    return this.write((j) => this.deps.jobs.renew(j, this.deps.config.leaseSeconds, changes));
  }

  /** Writes and gives the lease up: the next message may take the job at once. */
  private letGo(changes: Partial<Job>): Promise<Job> {
    this.stopHeartbeat();
    return this.write((j) => this.deps.jobs.release(j, changes));
  }

  /** Keeps the lease alive through long waits (a slow download, a throttled ARM call). */
  startHeartbeat(): void {
    const every = Math.max(1000, (this.deps.config.leaseSeconds * 1000) / 3);
    this.heartbeat = setInterval(() => {
      this.save({}).catch((e: unknown) => {
        this.log.warn('job.heartbeat-failed', { error: toErrorInfo(e) });
      });
    }, every);
    this.heartbeat.unref();
  }

  stopHeartbeat(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  async run(): Promise<RunOutcome> {
    for (;;) {
      const stage = this.job.stage;
      this.log.info('job.stage', { stage, attempts: this.job.attempts });
      switch (stage) {
        case 'queued':
        case 'resolve':
          await this.resolve();
          break;
        case 'check':
          if (await this.alreadyPublished()) return this.finish('skipped');
          await this.save({ stage: 'transfer' });
          break;
        case 'transfer': {
          const r = await this.transfer();
          if (r) return r;
          break;
        }
        case 'publish': {
          const r = await this.publish();
          if (r) return r;
          break;
        }
        case 'replicate': {
          const r = await this.replicate();
          if (r) return r;
          break;
        }
        case 'notify':
          await this.notifyPublished();
          await this.save({ stage: 'cleanup' });
          break;
        case 'cleanup':
          await this.cleanup();
          return this.finish('succeeded');
        case 'done':
          // Every path writes 'done' together with its final status, so this is only a safety net.
          return this.finish(this.deps.gallery ? 'succeeded' : 'staged');
      }
    }
  }

  private release(): StemcellRelease {
    const j = this.job;
    if (j.downloadUrl === undefined)
      throw new MirrorError('INTERNAL', 'transfer started before the release was resolved');
    return {
      series: j.series,
      version: j.version,
      url: j.downloadUrl,
      size: j.downloadTotalBytes,
      sha256: j.archiveSha256,
      sha1: j.archiveSha1,
    };
  }

  private async resolve(): Promise<void> {
    const r = await this.deps.boshio.resolve(this.job.series, this.job.version);
    await this.save({
      stage: 'check',
      downloadUrl: r.url,
      downloadTotalBytes: r.size,
      archiveSha256: r.sha256,
      archiveSha1: r.sha1,
    });
  }

  /** A version already in the gallery from this very archive needs no transfer. */
  private async alreadyPublished(): Promise<boolean> {
    const g = this.deps.gallery;
    const gc = this.deps.config.gallery;
    if (!g || !gc || this.job.force) return false;
    const definition = gc.imageName ?? this.job.series;
    const v = await g.getVersion(definition, this.job.galleryVersion);
    if (v?.provisioningState !== 'Succeeded') return false;
    const same = this.job.archiveSha256 !== undefined && v.tags.stemcell_sha256 === this.job.archiveSha256;
    if (same) {
      await this.save({ definitionName: definition, galleryImageVersionId: v.id });
    }
    return same;
  }

  private blobName(): string {
    return `${this.job.series}/${this.job.version}.vhd`;
  }

  private async transfer(): Promise<RunOutcome | undefined> {
    const { deps } = this;
    await deps.container.createIfNotExists();
    const blobName = this.job.blobName ?? this.blobName();
    const blob = deps.container.getPageBlobClient(blobName);
    const release = this.release();
    // A pass that got as far as the VHD left its size: its blob's pages count, whatever the watermark.
    const resume =
      this.job.vhdBytes !== undefined
        ? {
            watermark: this.job.watermark,
            downloadedBytes: 0,
            uploadedBytes: this.job.uploadedBytes,
            skippedZeroBytes: this.job.skippedZeroBytes,
            vhdBytes: this.job.vhdBytes,
            sentBytes: 0,
          }
        : undefined;
    const sentBefore = this.job.sentBytes;
    const cache = new DownloadCache({
      blob: deps.container.getBlockBlobClient(`${blobName}.download`),
      fetch: (start, signal) => deps.boshio.openDownload(release, { signal, start }),
      size: release.size,
      // 'resume': the first pass of a job keeps nothing, so an uninterrupted mirror pays nothing.
      record:
        deps.config.downloadCache === 'always' ||
        (deps.config.downloadCache === 'resume' && this.job.passes > 0),
      log: this.log,
    });
    const cachedBytes = deps.config.downloadCache === 'off' ? 0 : await cache.load();
    await this.save({ blobName, passes: this.job.passes + 1 });
    this.log.info('transfer.pass', { pass: this.job.passes, cachedBytes, watermark: this.job.watermark });
    let result: TransferResult;
    try {
      result = await transferStemcell({
        source: {
          open: (signal) => cache.open(signal),
          size: release.size,
          sha256: release.sha256,
          sha1: release.sha1,
        },
        blob,
        resume,
        signal: this.opts.budget,
        checkpointBytes: deps.config.checkpointMiB * 1024 * 1024,
        log: this.log,
        onCheckpoint: async (cp) => {
          await cache.commit();
          await this.save({ ...progressFields(cp), sentBytes: sentBefore + cp.sentBytes });
        },
        onProgress: deps.onProgress && ((cp) => deps.onProgress?.(this.job, cp)),
      });
    } catch (e) {
      throw await this.afterFailedPass(e, cache, cachedBytes);
    }
    const sent = (r: { checkpoint: TransferCheckpoint }) => ({
      ...progressFields(r.checkpoint),
      sentBytes: sentBefore + r.checkpoint.sentBytes,
    });
    if (!result.done) {
      await cache.commitAll();
      await this.letGo({ ...sent(result), status: 'waiting' });
      await deps.queue.send({ series: this.job.series, version: this.job.version, continuation: true });
      this.log.info('job.continued', { stage: 'transfer', watermark: result.checkpoint.watermark });
      return { kind: 'continued', job: this.job };
    }
    await cache.discard();
    this.log.info('transfer.verified', {
      vhdBytes: result.vhdBytes,
      sentBytes: result.sentBytes,
      imageSha256: result.imageSha256,
    });
    const verified: Partial<Job> = {
      ...sent(result),
      vhdBytes: result.vhdBytes,
      imageSha256: result.imageSha256,
      imageSha1: result.imageSha1,
      cloudProperties: JSON.stringify(result.manifest.cloudProperties),
    };
    // Without a gallery the verified blob is the result: one write, so no crash can split it.
    if (!deps.gallery) return this.finish('staged', verified);
    await this.save({ ...verified, stage: 'publish' });
    return undefined;
  }

  /**
   * Keeps what the pass downloaded for the retry, unless the failure is for good. A checksum
   * mismatch after reading a cached prefix may be the cache's fault: drop it and try once more clean.
   */
  private async afterFailedPass(e: unknown, cache: DownloadCache, cachedBytes: number): Promise<unknown> {
    const permanent = isMirrorError(e) && e.permanent;
    try {
      if (!permanent) await cache.commitAll();
      else await cache.discard();
    } catch (cacheError) {
      this.log.warn('download-cache.failed', { error: toErrorInfo(cacheError) });
    }
    if (isMirrorError(e) && e.code === 'CHECKSUM_MISMATCH' && cachedBytes > 0) {
      return new MirrorError(
        'DOWNLOAD_FAILED',
        `${e.message} (after ${cachedBytes} cached bytes: retrying without the cache)`,
        {
          permanent: false,
          cause: e,
        },
      );
    }
    return e;
  }

  private async publish(): Promise<RunOutcome | undefined> {
    const g = this.deps.gallery!;
    const gc = this.deps.config.gallery!;
    const spec = imageDefinitionFor(
      JSON.parse(this.job.cloudProperties ?? '{}') as Record<string, unknown>,
      gc,
    );
    await g.ensureImageDefinition(spec);
    const gv = this.job.galleryVersion;
    const existing = await g.getVersion(spec.name, gv);
    if (existing) {
      const same = existing.tags.image_sha256 === this.job.imageSha256;
      if (existing.provisioningState === 'Succeeded' && same && !this.job.force) {
        await this.save({ definitionName: spec.name, galleryImageVersionId: existing.id });
        await this.deleteStagedBlob();
        return this.finish('skipped');
      }
      if (existing.provisioningState === 'Succeeded' && !same && !this.job.force) {
        throw new MirrorError(
          'GALLERY_CONFLICT',
          `gallery image ${spec.name} version ${gv} already exists with different content ` +
            `(image_sha256 ${existing.tags.image_sha256 ?? 'not tagged'}, this stemcell ${this.job.imageSha256}); ` +
            'request it with force to replace it',
        );
      }
      if (['Creating', 'Updating'].includes(existing.provisioningState) && !this.job.force) {
        // Our own create from an invocation that died before it saved the poller: follow it.
        await this.save({ definitionName: spec.name, stage: 'replicate', pollerState: undefined });
        return undefined;
      }
      // force, or a Failed version: delete it, then create it again.
      this.log.info('gallery.replace', {
        definition: spec.name,
        galleryVersion: gv,
        state: existing.provisioningState,
      });
      const state = await g.beginDeleteVersion(spec.name, gv);
      while ((await g.pollDelete(state)) === 'running') {
        if (this.opts.budget.aborted) return this.wait({ definitionName: spec.name });
        await delay(this.pollDelayMs());
      }
    }
    const versions = await g.listVersions(spec.name);
    const excludeFromLatest = versions.some((v) => v.name !== gv && compareVersions(v.name, gv) > 0);
    const sourceUri = this.deps.container.getBlobClient(this.job.blobName ?? this.blobName()).url;
    const pollerState = await g.beginCreateVersion(spec.name, gv, {
      sourceUri,
      excludeFromLatest,
      tags: this.versionTags(spec, sourceUri),
    });
    this.log.info('gallery.version-started', {
      definition: spec.name,
      galleryVersion: gv,
      excludeFromLatest,
    });
    await this.save({ definitionName: spec.name, pollerState, stage: 'replicate', force: false });
    return undefined;
  }

  /** The tags the BOSH Azure CPI writes (so a director reuses the version), then what this mirror adds. */
  private versionTags(spec: ImageDefinitionSpec, sourceUri: string): Record<string, string> {
    const j = this.job;
    const tags = cpiVersionTags(JSON.parse(j.cloudProperties ?? '{}') as Record<string, unknown>, spec, {
      galleryName: this.deps.config.gallery!.galleryName,
      galleryVersion: j.galleryVersion,
      imageSha256: j.imageSha256 ?? '',
    });
    const ours: Record<string, string> = {
      // Lets a later request skip the transfer when bosh.io still serves this very archive.
      stemcell_sha256: j.archiveSha256 ?? '',
      stemcell_series: j.series,
      stemcell_version: j.version,
      staged_blob: sourceUri.split('?')[0] ?? '',
      source_url: j.downloadUrl ?? '',
    };
    // Azure allows 50 tags per resource.
    for (const [k, v] of Object.entries(ours))
      if (Object.keys(tags).length < 50 && v.length <= 256) tags[k] = v;
    return tags;
  }

  private async replicate(): Promise<RunOutcome | undefined> {
    const g = this.deps.gallery!;
    const definition = this.job.definitionName!;
    if (this.job.pollerState !== undefined) {
      const r = await g.pollVersion(this.job.pollerState);
      if (r.status === 'running') return this.wait({ pollerState: r.state });
      if (r.status === 'failed') {
        // The staged blob stays for a retry.
        throw new MirrorError(
          'GALLERY_FAILED',
          `image version creation failed: ${r.error.code}: ${r.error.message}`,
          {
            permanent: true,
          },
        );
      }
      await this.save({ galleryImageVersionId: r.version.id, pollerState: undefined, stage: 'notify' });
      return undefined;
    }
    const v = await g.getVersion(definition, this.job.galleryVersion);
    if (!v) {
      await this.save({ stage: 'publish' });
      return undefined;
    }
    if (v.provisioningState === 'Succeeded') {
      await this.save({ galleryImageVersionId: v.id, stage: 'notify' });
      return undefined;
    }
    if (v.provisioningState === 'Failed') {
      throw new MirrorError('GALLERY_FAILED', `image version ${definition}/${v.name} ended Failed`, {
        permanent: true,
      });
    }
    return this.wait({});
  }

  /** Saves, frees the lease and asks for another look after the poll delay. */
  private async wait(changes: Partial<Job>): Promise<RunOutcome> {
    await this.letGo({ ...changes, status: 'waiting' });
    await this.deps.queue.send(
      { series: this.job.series, version: this.job.version, continuation: true },
      this.deps.pollDelaySeconds ?? 30,
    );
    return { kind: 'continued', job: this.job };
  }

  private pollDelayMs(): number {
    return Math.min(5, this.deps.pollDelaySeconds ?? 5) * 1000;
  }

  private async notifyPublished(): Promise<void> {
    const n = this.deps.notifier;
    if (!n) {
      await this.save({ notify: 'off' });
      return;
    }
    if (this.job.notify === 'sent') return;
    // 'sending' marks a dispatch that may have left: a crash right after it sends it again (at least once).
    await this.save({ notify: 'sending' });
    const gc = this.deps.config.gallery;
    const event: NotifyEvent = {
      kind: 'published',
      series: this.job.series,
      version: this.job.version,
      ...(gc && this.job.definitionName
        ? {
            galleryImageName: this.job.definitionName,
            galleryImageVersion: this.job.galleryVersion,
            ...(this.job.galleryImageVersionId
              ? { galleryImageVersionId: this.job.galleryImageVersionId }
              : {}),
          }
        : {}),
    };
    try {
      await n.notify(event);
      await this.save({ notify: 'sent', notifyError: undefined });
    } catch (e) {
      // A lost notification never un-publishes: record it and carry on.
      const info = toErrorInfo(e);
      this.log.warn('notify.failed', { error: info });
      await this.save({ notify: 'failed', notifyError: `${info.code}: ${info.message}` });
    }
  }

  private async deleteStagedBlob(): Promise<void> {
    if (this.deps.config.keepSourceVhd || this.job.blobName === undefined) return;
    await this.deps.container.getBlobClient(this.job.blobName).deleteIfExists();
  }

  private async cleanup(): Promise<void> {
    await this.deleteStagedBlob();
    const keep = this.deps.config.retainVersions;
    const g = this.deps.gallery;
    if (!g || keep <= 0 || !this.job.definitionName) return;
    const latest = await this.deps.boshio.resolve(this.job.series, 'latest').catch(() => undefined);
    const versions = await g.listVersions(this.job.definitionName);
    const protect = [this.job.galleryVersion, ...(latest ? [toGalleryVersion(latest.version)] : [])];
    for (const v of g.selectForRetention(versions, keep, protect)) {
      this.log.info('retention.delete', { definition: this.job.definitionName, galleryVersion: v.name });
      await g.beginDeleteVersion(this.job.definitionName, v.name);
      const staged = v.tags.staged_blob;
      if (staged?.startsWith(this.deps.container.url)) {
        const name = decodeURIComponent(staged.slice(this.deps.container.url.length + 1));
        await this.deps.container.getBlobClient(name).deleteIfExists();
      }
    }
  }

  private async finish(status: Job['status'], changes: Partial<Job> = {}): Promise<RunOutcome> {
    await this.letGo({ ...changes, status, stage: 'done' });
    this.log.info('job.finished', { status });
    return { kind: 'finished', job: this.job };
  }

  /** Records the failure. Permanent: the job fails now. Transient: rethrown for the host's retry. */
  async handleError(e: unknown): Promise<RunOutcome> {
    this.stopHeartbeat();
    if (e instanceof StaleJobError) {
      this.log.warn('job.lost-lease', { stage: this.job.stage });
      return { kind: 'noop', job: undefined, why: 'another worker took the job' };
    }
    const info = toErrorInfo(e);
    const permanent = isMirrorError(e) && e.permanent;
    this.log.error(permanent ? 'job.failed' : 'job.error', { stage: this.job.stage, error: info });
    const fields = {
      errorCode: info.code,
      errorMessage: info.message.slice(0, 2000),
      errorPermanent: permanent,
    };
    try {
      if (!permanent) {
        await this.letGo({ ...fields, status: 'queued' });
        throw e;
      }
      await this.letGo({ ...fields, status: 'failed' });
    } catch (writeError) {
      if (writeError === e) throw e;
      this.log.error('job.record-failed', { error: toErrorInfo(writeError) });
      throw e;
    }
    await notifyFailure(this.job, this.deps);
    return { kind: 'failed', job: this.job };
  }
}

function progressFields(cp: TransferCheckpoint): Partial<Job> {
  return {
    watermark: cp.watermark,
    downloadedBytes: cp.downloadedBytes,
    uploadedBytes: cp.uploadedBytes,
    skippedZeroBytes: cp.skippedZeroBytes,
    vhdBytes: cp.vhdBytes,
  };
}

/** Tells downstream that a job failed for good (BASM_NOTIFY_ON_FAILURE). Never throws. */
export async function notifyFailure(
  job: Job,
  deps: Pick<PipelineDeps, 'notifier' | 'config' | 'log'>,
): Promise<void> {
  if (!deps.notifier || !deps.config.notify.onFailure) return;
  try {
    await deps.notifier.notify({
      kind: 'failed',
      series: job.series,
      version: job.version,
      error: { code: job.errorCode ?? 'INTERNAL', message: job.errorMessage ?? '' },
    });
  } catch (e) {
    deps.log.warn('notify.failed', { series: job.series, version: job.version, error: toErrorInfo(e) });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
