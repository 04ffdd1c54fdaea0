/**
 * Publishing to an Azure Compute Gallery: the image definition named the way the BOSH Azure CPI
 * names its own, image versions created from the staged page blob, and deletes for retention.
 *
 * Long-running operations are never waited on here (except definitions, which are quick): a begin
 * call returns the poller's serialized state, the job stores it, and a later invocation advances it
 * one poll at a time, so no invocation outlives its time budget.
 */
import type * as ArmCompute from '@azure/arm-compute';
import type { ComputeManagementClient, GalleryImage, GalleryImageVersion } from '@azure/arm-compute';
import type { TokenCredential } from '@azure/identity';
import type { GalleryConfig } from '../config/config';
import type { PipelinePolicy } from '@azure/core-rest-pipeline';
import { azureFault, hasStatus, isRestError, isTransientRestError } from '../core/azure-errors';
import { budgetRemainingMs, currentBudget, pause } from '../core/budget';
import { MirrorError } from '../core/errors';
import { classifyArmError, parseRetryAfter, toGalleryError } from './arm-errors';
import { silentLogger, type Logger } from '../core/log';
import type { ImageDefinitionSpec } from '../stemcell/cpi-image';
import { compareVersions, toGalleryVersion } from '../core/names';

export interface VersionInfo {
  name: string;
  provisioningState: string;
  tags: Record<string, string>;
  id: string;
  excludeFromLatest: boolean;
  sourceUri: string | undefined;
  publishedDate: string | undefined;
}

export type VersionPoll =
  | { status: 'running'; state: string }
  | { status: 'succeeded'; version: VersionInfo }
  | { status: 'failed'; error: { code: string; message: string } };

export interface GalleryPublisherOptions {
  endpoint: string;
  log?: Logger;
  /** SDK retries of 429/5xx/network errors; the defaults suit Azure, tests shorten the delays. */
  retry?: { maxRetries?: number; retryDelayInMs?: number; maxRetryDelayInMs?: number };
  /** Pause between polls while waiting for an image definition (default 5 s). */
  definitionPollIntervalMs?: number;
  /** Longest wait for an image definition to be created (default 5 min). */
  definitionTimeoutMs?: number;
  /**
   * Retries of a write Azure answered with a concurrent-write conflict or a parent not yet visible
   * (arm-errors.ts `backoff`), and the first delay, doubled each time (defaults 5 and 2 s).
   */
  backoff?: { attempts?: number; firstDelayMs?: number };
}

/** The longest Retry-After waited out inside a call; a longer one ends the invocation (a continuation). */
const MAX_IN_CALL_RETRY_AFTER_MS = 60_000;
const MAX_BACKOFF_DELAY_MS = 30_000;

/**
 * Runs on every attempt, inside the SDK's retry policy: a 429 whose Retry-After outlasts what is
 * left of the invocation's budget (or a minute) is not slept out by the SDK; it ends the call at
 * once as a transient error carrying the Retry-After, which the runner turns into a delayed
 * continuation.
 */
const retryAfterBudgetPolicy: PipelinePolicy = {
  name: 'retryAfterBudgetPolicy',
  async sendRequest(request, next) {
    const response = await next(request);
    if (response.status !== 429) return response;
    const seconds = parseRetryAfter(response.headers.get('retry-after'));
    const limit = Math.min(budgetRemainingMs(currentBudget()), MAX_IN_CALL_RETRY_AFTER_MS);
    if (seconds === undefined || seconds * 1000 < limit) return response;
    throw new MirrorError(
      'GALLERY_FAILED',
      `Resource Manager throttled ${request.method} ${new URL(request.url).pathname}: retry after ${seconds} s`,
      { permanent: false, retryAfterSeconds: seconds },
    );
  },
};

/**
 * The ARM SDK, loaded when the first publisher is made: it is a tenth of a second of every start
 * (a function's cold start, each CLI run), and a process without a gallery never needs it.
 */
function armCompute(): typeof ArmCompute {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@azure/arm-compute') as typeof ArmCompute;
}

const IN_PROGRESS = new Set(['Creating', 'Updating', 'Deleting', 'Migrating']);

// --- errors ------------------------------------------------------------------------------------

/**
 * 403 on an operation-status URL: it sits at subscription scope, where a gallery-scoped role may
 * not reach. It says nothing about the operation, whose resource's provisioningState tells instead.
 */
function isForbidden(e: unknown): boolean {
  return hasStatus(e, 403);
}

const LRO_FAILED = /^The long-running operation has failed\. ([^.\s]+)\. ([\s\S]*)$/;

/** The Azure error of an operation that ended Failed (core-lro folds it into its message). */
function operationError(e: unknown): { code: string; message: string } {
  if (isRestError(e)) {
    const { code, message } = azureFault(e);
    return { code, message };
  }
  const text = e instanceof Error ? e.message : String(e);
  const m = LRO_FAILED.exec(text);
  return m ? { code: m[1]!, message: m[2]! } : { code: 'OperationFailed', message: text };
}

// --- versions ------------------------------------------------------------------------------------

export function toVersionInfo(v: GalleryImageVersion): VersionInfo {
  return {
    name: v.name ?? '',
    provisioningState: v.provisioningState ?? 'Unknown',
    tags: { ...(v.tags ?? {}) },
    id: v.id ?? '',
    excludeFromLatest: v.publishingProfile?.excludeFromLatest ?? false,
    sourceUri: v.storageProfile?.osDiskImage?.source?.uri,
    publishedDate: v.publishingProfile?.publishedDate?.toISOString(),
  };
}

/** Compatibility of an existing definition: what Azure will never change in place. */
function incompatibility(existing: GalleryImage, spec: ImageDefinitionSpec): string | undefined {
  const have = {
    osType: existing.osType,
    hyperVGeneration: existing.hyperVGeneration ?? 'V1',
    architecture: existing.architecture ?? 'x64',
  };
  for (const key of ['osType', 'hyperVGeneration', 'architecture'] as const) {
    if (have[key] !== spec[key]) return `${key} is ${have[key]}, the stemcell needs ${spec[key]}`;
  }
  return undefined;
}

/**
 * What the job stores between polls: which version, and the SDK poller's own state. The SDK state
 * alone cannot be resumed when Azure answered at once (a delete of a missing version has no URL).
 */
interface SavedOperation {
  op: 'create' | 'delete';
  definition: string;
  version: string;
  lro: string;
}

function saveOperation(s: SavedOperation): string {
  return JSON.stringify(s);
}

function loadOperation(state: string, op: SavedOperation['op']): SavedOperation {
  let s: Partial<SavedOperation> | undefined;
  try {
    s = JSON.parse(state) as Partial<SavedOperation>;
  } catch {
    s = undefined;
  }
  if (
    s?.op !== op ||
    typeof s.definition !== 'string' ||
    typeof s.version !== 'string' ||
    typeof s.lro !== 'string'
  ) {
    throw new MirrorError('GALLERY_FAILED', `The saved gallery ${op} operation state is unreadable`, {
      permanent: true,
    });
  }
  return s as SavedOperation;
}

function lroStatus(lro: string): string | undefined {
  try {
    return (JSON.parse(lro) as { state?: { status?: string } }).state?.status;
  } catch {
    return undefined;
  }
}

export class GalleryPublisher {
  private readonly client: ComputeManagementClient;
  private readonly log: Logger;
  private readonly rg: string;
  private readonly name: string;

  constructor(
    private readonly gallery: GalleryConfig,
    credential: TokenCredential,
    private readonly opts: GalleryPublisherOptions,
  ) {
    this.client = new (armCompute().ComputeManagementClient)(credential, gallery.subscriptionId, {
      endpoint: opts.endpoint,
      ...(opts.retry ? { retryOptions: opts.retry } : {}),
    });
    this.client.pipeline.addPolicy(retryAfterBudgetPolicy, { afterPhase: 'Retry' });
    this.log = (opts.log ?? silentLogger).child({ gallery: gallery.galleryName });
    this.rg = gallery.resourceGroup;
    this.name = gallery.galleryName;
  }

  /** What every SDK call carries: the abort signal of the invocation's budget. */
  private callOptions(): { abortSignal?: AbortSignal } {
    const budget = currentBudget();
    return budget ? { abortSignal: budget } : {};
  }

  /** Our error for what a call threw; one cut short by the spent budget asks to continue at once. */
  private fail(e: unknown, what: string): MirrorError {
    if (!(e instanceof MirrorError) && currentBudget()?.aborted) {
      return new MirrorError('GALLERY_FAILED', `${what}: the invocation's time budget ran out`, {
        permanent: false,
        retryAfterSeconds: 0,
        cause: e,
      });
    }
    return toGalleryError(e, what);
  }

  /**
   * Starts a write, trying again when Azure answers "not now" (a concurrent write, a parent not yet
   * visible: arm-errors.ts `backoff`), a few times with a doubling delay. A delay the budget cannot
   * hold becomes a delayed continuation instead of a sleep.
   */
  private async startWrite<T>(what: string, start: () => Promise<T>): Promise<T> {
    const retries = this.opts.backoff?.attempts ?? 5;
    let delay = this.opts.backoff?.firstDelayMs ?? 2000;
    for (let attempt = 1; ; attempt++) {
      try {
        return await start();
      } catch (e) {
        if (classifyArmError(e).kind !== 'backoff' || attempt > retries) throw this.fail(e, what);
        const budget = currentBudget();
        const fault = isRestError(e) ? azureFault(e) : undefined;
        if (delay >= budgetRemainingMs(budget)) {
          throw new MirrorError(
            'GALLERY_FAILED',
            `${what}: Azure answered ${fault?.code ?? 'busy'}; trying later`,
            {
              permanent: false,
              retryAfterSeconds: Math.ceil(delay / 1000),
              cause: e,
            },
          );
        }
        this.log.warn('gallery.write-retry', { what, code: fault?.code, attempt, delayMs: delay });
        await pause(delay, budget);
        if (budget?.aborted) throw this.fail(e, what);
        delay = Math.min(delay * 2, MAX_BACKOFF_DELAY_MS);
      }
    }
  }

  /** Creates the definition if missing and waits for it; an incompatible one is a conflict. */
  async ensureImageDefinition(spec: ImageDefinitionSpec): Promise<void> {
    const what = `image definition ${this.name}/${spec.name}`;
    const existing = await this.getDefinition(spec.name, what);
    if (existing && existing.provisioningState !== 'Failed') {
      const problem = incompatibility(existing, spec);
      if (problem) {
        throw new MirrorError(
          'GALLERY_CONFLICT',
          `The ${what} exists but does not fit this stemcell: ${problem}. Set BASM_GALLERY_IMAGE_NAME to use another definition.`,
        );
      }
      const id = existing.identifier;
      if (id && (id.publisher !== spec.publisher || id.offer !== spec.offer || id.sku !== spec.sku)) {
        this.log.warn('gallery.definition-identifier-differs', {
          definition: spec.name,
          existing: `${id.publisher}/${id.offer}/${id.sku}`,
          wanted: `${spec.publisher}/${spec.offer}/${spec.sku}`,
        });
      }
      return;
    }
    this.log.info('gallery.definition-create', { definition: spec.name });
    const body: GalleryImage = {
      location: this.gallery.region,
      description: 'BOSH stemcell mirrored from bosh.io',
      osType: spec.osType,
      osState: 'Generalized',
      hyperVGeneration: spec.hyperVGeneration,
      architecture: spec.architecture,
      identifier: { publisher: spec.publisher, offer: spec.offer, sku: spec.sku },
      ...(spec.features.length > 0 ? { features: spec.features } : {}),
    };
    const interval = this.opts.definitionPollIntervalMs ?? 5000;
    const timeoutMs = this.opts.definitionTimeoutMs ?? 300_000;
    const deadline = Date.now() + timeoutMs;
    const { poller } = await this.startWrite(`Creating the ${what}`, async () => {
      const p = this.client.galleryImages.createOrUpdate(this.rg, this.name, spec.name, body, {
        updateIntervalInMs: interval,
        ...this.callOptions(),
      });
      await p.submitted();
      // Wrapped: the poller is thenable, and an async function would wait for the whole operation.
      return { poller: p };
    });
    const budget = currentBudget();
    const waitLimit = AbortSignal.timeout(timeoutMs);
    try {
      await poller.pollUntilDone({ abortSignal: budget ? AbortSignal.any([waitLimit, budget]) : waitLimit });
      return;
    } catch (e) {
      if (!isForbidden(e)) throw this.fail(e, `Creating the ${what}`);
      this.log.warn('gallery.poll-forbidden', { definition: spec.name });
    }
    for (;;) {
      const d = await this.getDefinition(spec.name, what);
      const state = d?.provisioningState;
      if (state === 'Succeeded') return;
      if (state === 'Failed')
        throw new MirrorError('GALLERY_FAILED', `The ${what} ended Failed`, { permanent: true });
      if (Date.now() > deadline) {
        throw new MirrorError('GALLERY_FAILED', `The ${what} is still ${state ?? 'missing'} after waiting`, {
          permanent: false,
        });
      }
      await pause(interval, budget);
      if (budget?.aborted) throw this.fail(new Error('aborted'), `Waiting for the ${what}`);
    }
  }

  private async getDefinition(definition: string, what: string): Promise<GalleryImage | undefined> {
    try {
      return await this.client.galleryImages.get(this.rg, this.name, definition, this.callOptions());
    } catch (e) {
      if (hasStatus(e, 404)) return undefined;
      throw this.fail(e, `Reading the ${what}`);
    }
  }

  async getVersion(definition: string, version: string): Promise<VersionInfo | undefined> {
    try {
      return toVersionInfo(
        await this.client.galleryImageVersions.get(
          this.rg,
          this.name,
          definition,
          version,
          this.callOptions(),
        ),
      );
    } catch (e) {
      if (hasStatus(e, 404)) return undefined;
      throw this.fail(e, `Reading image version ${definition}/${version}`);
    }
  }

  /** All versions of a definition (none when the definition does not exist). */
  async listVersions(definition: string): Promise<VersionInfo[]> {
    const out: VersionInfo[] = [];
    try {
      for await (const v of this.client.galleryImageVersions.listByGalleryImage(
        this.rg,
        this.name,
        definition,
        this.callOptions(),
      )) {
        out.push(toVersionInfo(v));
      }
    } catch (e) {
      if (hasStatus(e, 404)) return [];
      throw this.fail(e, `Listing image versions of ${definition}`);
    }
    return out;
  }

  /** Starts creating `version` (a stemcell version is normalised, 1.682 → 1.682.0); returns the poller state. */
  async beginCreateVersion(
    definition: string,
    version: string,
    p: { sourceUri: string; tags: Record<string, string>; excludeFromLatest: boolean },
  ): Promise<string> {
    const name = toGalleryVersion(version);
    const g = this.gallery;
    const body: GalleryImageVersion = {
      location: g.region,
      tags: p.tags,
      publishingProfile: {
        targetRegions: g.targetRegions.map((t) => ({
          name: t.name,
          regionalReplicaCount: t.replicas,
          storageAccountType: t.storageAccountType ?? g.storageAccountType,
        })),
        storageAccountType: g.storageAccountType,
        excludeFromLatest: p.excludeFromLatest,
      },
      storageProfile: {
        osDiskImage: {
          hostCaching: 'ReadOnly',
          source: { storageAccountId: g.storageAccountId, uri: p.sourceUri },
        },
      },
    };
    this.log.info('gallery.version-create', {
      definition,
      version: name,
      excludeFromLatest: p.excludeFromLatest,
    });
    const what = `Creating image version ${definition}/${name}`;
    const { poller } = await this.startWrite(what, async () => {
      const p = this.client.galleryImageVersions.createOrUpdate(
        this.rg,
        this.name,
        definition,
        name,
        body,
        this.callOptions(),
      );
      // The poller is also a promise of the final result: never await it, only its first request.
      await p.submitted();
      // Wrapped: the poller is thenable, and an async function would wait for the whole operation.
      return { poller: p };
    });
    try {
      return saveOperation({ op: 'create', definition, version: name, lro: await poller.serialize() });
    } catch (e) {
      throw this.fail(e, what);
    }
  }

  /** One poll of a create started by beginCreateVersion; a transient error throws and leaves `state` valid. */
  async pollVersion(state: string): Promise<VersionPoll> {
    const saved = loadOperation(state, 'create');
    const what = `Polling the creation of image version ${saved.definition}/${saved.version}`;
    let poller: ReturnType<typeof ArmCompute.restorePoller> | undefined;
    if (lroStatus(saved.lro) !== 'succeeded') {
      poller = this.restore(saved.lro, this.client.galleryImageVersions.createOrUpdate);
      try {
        await poller.poll(this.callOptions());
      } catch (e) {
        if (isRestError(e) && isTransientRestError(e)) throw this.fail(e, what);
        if (isForbidden(e)) return this.pollVersionByState(saved, state);
        if (poller.operationState?.status !== 'failed' && !isRestError(e)) throw this.fail(e, what);
        return { status: 'failed', error: operationError(e) };
      }
    }
    const status = poller?.operationState?.status ?? 'succeeded';
    if (status === 'succeeded') {
      const version = await this.getVersion(saved.definition, saved.version);
      if (!version)
        throw new MirrorError('GALLERY_FAILED', `${what}: the version vanished after it succeeded`);
      return { status: 'succeeded', version };
    }
    if (status === 'failed' || status === 'canceled') {
      const error = poller?.operationState?.error ?? new Error(`The operation was ${status}`);
      return { status: 'failed', error: operationError(error) };
    }
    return { status: 'running', state: saveOperation({ ...saved, lro: await poller!.serialize() }) };
  }

  async beginDeleteVersion(definition: string, version: string): Promise<string> {
    this.log.info('gallery.version-delete', { definition, version });
    const what = `Deleting image version ${definition}/${version}`;
    const { poller } = await this.startWrite(what, async () => {
      const p = this.client.galleryImageVersions.delete(
        this.rg,
        this.name,
        definition,
        version,
        this.callOptions(),
      );
      await p.submitted();
      // Wrapped: the poller is thenable, and an async function would wait for the whole operation.
      return { poller: p };
    });
    try {
      return saveOperation({ op: 'delete', definition, version, lro: await poller.serialize() });
    } catch (e) {
      throw this.fail(e, what);
    }
  }

  /** The version's own provisioningState, for an identity that may not read the operation's status. */
  private async pollVersionByState(saved: SavedOperation, state: string): Promise<VersionPoll> {
    this.log.warn('gallery.poll-forbidden', { definition: saved.definition, version: saved.version });
    const version = await this.getVersion(saved.definition, saved.version);
    if (version?.provisioningState === 'Succeeded') return { status: 'succeeded', version };
    if (version === undefined || version.provisioningState === 'Failed') {
      const message = version ? 'the version ended Failed' : 'the version is gone';
      return { status: 'failed', error: { code: 'ProvisioningFailed', message } };
    }
    return { status: 'running', state };
  }

  /** One poll of a delete started by beginDeleteVersion; a version already gone is done at once. */
  async pollDelete(state: string): Promise<'running' | 'done'> {
    const saved = loadOperation(state, 'delete');
    if (lroStatus(saved.lro) === 'succeeded') return 'done';
    const poller = this.restore(saved.lro, this.client.galleryImageVersions.delete);
    const what = `Deleting image version ${saved.definition}/${saved.version}`;
    try {
      await poller.poll(this.callOptions());
    } catch (e) {
      if (isForbidden(e)) {
        this.log.warn('gallery.poll-forbidden', { definition: saved.definition, version: saved.version });
        return (await this.getVersion(saved.definition, saved.version)) ? 'running' : 'done';
      }
      throw isRestError(e) || e instanceof MirrorError || currentBudget()?.aborted
        ? this.fail(e, what)
        : new MirrorError('GALLERY_FAILED', `${what} failed: ${operationError(e).message}`, {
            permanent: false,
            cause: e,
          });
    }
    return poller.isDone ? 'done' : 'running';
  }

  /**
   * Which versions retention deletes: all beyond the newest `keep` by numeric version, except those
   * in `protect` and those with an operation in progress. `keep` 0 keeps everything.
   */
  selectForRetention(versions: VersionInfo[], keep: number, protect: readonly string[]): VersionInfo[] {
    if (keep <= 0) return [];
    const newestFirst = [...versions].sort((a, b) => compareVersions(b.name, a.name));
    return newestFirst
      .slice(keep)
      .filter((v) => !protect.some((p) => compareVersions(p, v.name) === 0))
      .filter((v) => !IN_PROGRESS.has(v.provisioningState));
  }

  private restore(
    lro: string,
    op: Parameters<typeof ArmCompute.restorePoller>[2],
  ): ReturnType<typeof ArmCompute.restorePoller> {
    try {
      return armCompute().restorePoller(this.client, lro, op);
    } catch (e) {
      throw new MirrorError(
        'GALLERY_FAILED',
        `The saved gallery operation state is unreadable: ${String(e)}`,
        {
          permanent: true,
          cause: e,
        },
      );
    }
  }
}
