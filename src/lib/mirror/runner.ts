/**
 * The mirror of one (series, version), advanced one invocation at a time:
 * resolve → check → transfer → publish → replicate → notify → cleanup, one file per stage.
 * The runner owns what every stage relies on: the lease and its heartbeat, one ordered queue of
 * ETag-conditional writes, continuations, and the recording of failures. Every stage starts from
 * the job row and ends by writing it, so any invocation can pick up where the last one stopped:
 * after a crash, a timeout, a redeploy or a spent time budget.
 */
import { randomUUID } from 'node:crypto';
import { runWithBudget } from '../core/budget';
import { isMirrorError, toErrorInfo } from '../core/errors';
import type { Logger } from '../core/log';
import {
  newJob,
  rearmFields,
  shouldRearm,
  TERMINAL,
  watchdogVerdict,
  type Job,
  type JobStage,
  type JobStatus,
} from '../jobs/job';
import type { QueueMessage } from '../jobs/requests';
import { StaleJobError } from '../jobs/store';
import { checkStage } from './check';
import { cleanupStage } from './cleanup';
import { notifyFailure, notifyStage } from './notify';
import { publishStage } from './publish';
import { replicateStage } from './replicate';
import { resolveStage } from './resolve';
import type { PipelineDeps, RunOptions, RunOutcome, Stage, StageRun } from './stage';
import { transferStage } from './transfer';

export type { PipelineDeps, RunOptions, RunOutcome } from './stage';

const STAGES: Readonly<Record<Exclude<JobStage, 'done'>, Stage>> = {
  queued: resolveStage,
  resolve: resolveStage,
  check: checkStage,
  transfer: transferStage,
  publish: publishStage,
  replicate: replicateStage,
  notify: notifyStage,
  cleanup: cleanupStage,
};

const LEASE_GRACE_SECONDS = 1;
/** How long after a watched lease would expire its watchdog looks: past a heartbeat's late write. */
const WATCHDOG_GRACE_SECONDS = 2;

/** Runs or advances the job a queue message names. Throws only for transient failures (the host retries). */
export async function runMirror(
  message: QueueMessage,
  deps: PipelineDeps,
  opts: RunOptions,
): Promise<RunOutcome> {
  const version =
    message.version === 'latest'
      ? (await deps.boshio.resolve(message.series, 'latest')).version
      : message.version;
  const jlog = deps.log.child({ series: message.series, version });
  const job = await openJob(message, version, deps);
  if (TERMINAL.has(job.status)) {
    jlog.info('job.already-done', { status: job.status });
    return { kind: 'noop', job, why: `job is ${job.status}` };
  }
  if (message.watchdog !== undefined) {
    const verdict = watchdogVerdict(
      job,
      message.watchdog,
      new Date(),
      WATCHDOG_GRACE_SECONDS,
      opts.dequeueCount,
    );
    if (verdict.kind === 'drop') return { kind: 'noop', job, why: verdict.why };
    if (verdict.kind === 'defer') {
      await deps.queue.send(watchdogFor(job, message.watchdog), verdict.delaySeconds);
      return { kind: 'deferred', delaySeconds: verdict.delaySeconds };
    }
    jlog.warn('job.watchdog-take-over', {
      stage: job.stage,
      deadOwner: message.watchdog,
      leaseUntil: job.leaseUntil,
    });
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
  // A take-over sends none (jobs/job.ts watchdogVerdict): one per delivery of the run's message.
  if (message.watchdog === undefined) await watch(claim.job, owner, deps, jlog);
  const run = new LeasedRun(claim.job, deps, opts, jlog);
  run.startHeartbeat();
  try {
    // Every client call of the run carries the budget (core/budget.ts).
    return await runWithBudget(opts.budget, () => run.advance());
  } catch (e) {
    return run.handleError(e);
  } finally {
    run.stopHeartbeat();
  }
}

function watchdogFor(job: Job, owner: string): QueueMessage {
  return { series: job.series, version: job.version, continuation: true, watchdog: owner };
}

/**
 * Sends the watchdog of a run that just claimed the job: if the whole instance dies, the host
 * releases the run's message only after its 10-minute invisibility, and the watchdog carries the
 * job on once the lease has expired instead (DESIGN §2, §3: "within two minutes"). A safety net:
 * the run goes on without one when the queue refuses it.
 */
async function watch(job: Job, owner: string, deps: PipelineDeps, log: Logger): Promise<void> {
  try {
    await deps.queue.send(watchdogFor(job, owner), deps.config.leaseSeconds + WATCHDOG_GRACE_SECONDS);
  } catch (e) {
    log.warn('job.watchdog-not-sent', { error: toErrorInfo(e) });
  }
}

/** Finds or creates the job; a new request re-arms a failed one (jobs/job.ts shouldRearm). */
async function openJob(message: QueueMessage, version: string, deps: PipelineDeps): Promise<Job> {
  const fresh = { ...newJob(message.series, version), force: message.force ?? false, reason: message.reason };
  const { job } = await deps.jobs.create(fresh);
  if (!shouldRearm(job, message, 'delivered')) return job;
  deps.log.info('job.rearmed', { series: job.series, version, force: message.force ?? false });
  return deps.jobs.update(job, {
    ...rearmFields(),
    force: message.force ?? job.force,
    reason: message.reason ?? job.reason,
  });
}

/** One invocation's hold on a job: the lease, its heartbeat, and every write in order. */
class LeasedRun implements StageRun {
  private writes: Promise<unknown> = Promise.resolve();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private current: Job,
    readonly deps: PipelineDeps,
    private readonly opts: RunOptions,
    readonly log: Logger,
  ) {}

  get job(): Job {
    return this.current;
  }

  get budget(): AbortSignal {
    return this.opts.budget;
  }

  /** Every write of the row goes through here, one at a time, so ETags never race each other. */
  private write(op: (job: Job) => Promise<Job>): Promise<Job> {
    const next = this.writes.then(async () => {
      this.current = await op(this.current);
      return this.current;
    });
    this.writes = next.catch(() => undefined);
    return next;
  }

  save(changes: Partial<Job>): Promise<Job> {
    return this.write((j) => this.deps.jobs.renew(j, this.deps.config.leaseSeconds, changes));
  }

  /** Writes and gives the lease up: the next message may take the job at once. */
  private letGo(changes: Partial<Job>): Promise<Job> {
    this.stopHeartbeat();
    return this.write((j) => this.deps.jobs.release(j, changes));
  }

  async finish(status: JobStatus, changes: Partial<Job> = {}): Promise<RunOutcome> {
    await this.letGo({ ...changes, status, stage: 'done' });
    this.log.info('job.finished', { status });
    return { kind: 'finished', job: this.current };
  }

  async wait(changes: Partial<Job>, delaySeconds = this.deps.pollDelaySeconds ?? 30): Promise<RunOutcome> {
    await this.letGo({ ...changes, status: 'waiting' });
    await this.deps.queue.send(
      { series: this.current.series, version: this.current.version, continuation: true },
      delaySeconds,
    );
    return { kind: 'continued', job: this.current };
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

  /** Runs stage after stage until one ends the invocation. */
  async advance(): Promise<RunOutcome> {
    for (;;) {
      const stage = this.current.stage;
      this.log.info('job.stage', { stage, attempts: this.current.attempts });
      // Every path writes 'done' together with its final status, so this is only a safety net.
      if (stage === 'done') return this.finish(this.deps.gallery ? 'succeeded' : 'staged');
      const outcome = await STAGES[stage](this);
      if (outcome) return outcome;
    }
  }

  /** Records the failure. Permanent: the job fails now. Transient: rethrown for the host's retry. */
  async handleError(e: unknown): Promise<RunOutcome> {
    this.stopHeartbeat();
    if (e instanceof StaleJobError) {
      this.log.warn('job.lost-lease', { stage: this.current.stage });
      return { kind: 'noop', job: undefined, why: 'another worker took the job' };
    }
    const info = toErrorInfo(e);
    const permanent = isMirrorError(e) && e.permanent;
    const retryAfter = isMirrorError(e) ? e.retryAfterSeconds : undefined;
    if (retryAfter !== undefined) {
      // The service said when to come back (or the budget ran out mid-call): a delayed
      // continuation, not a failed delivery that would count toward the poison queue.
      this.log.warn('job.retry-later', { stage: this.current.stage, delaySeconds: retryAfter, error: info });
      return this.wait({ errorCode: info.code, errorMessage: info.message.slice(0, 2000) }, retryAfter);
    }
    this.log.error(permanent ? 'job.failed' : 'job.error', { stage: this.current.stage, error: info });
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
    await notifyFailure(this.current, this.deps);
    return { kind: 'failed', job: this.current };
  }
}
