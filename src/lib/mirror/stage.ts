/**
 * What the runner (runner.ts) and the stages (one file each) share: the collaborators of a run, the
 * outcome of an invocation, and the handle a stage gets on its job.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { GalleryPublisher } from '../azure/gallery';
import type { BoshIoClient } from '../boshio/client';
import type { Config } from '../config/config';
import type { Logger } from '../core/log';
import type { Job, JobStatus } from '../jobs/job';
import type { RequestSender } from '../jobs/request-queue';
import type { JobStore } from '../jobs/store';
import type { Notifier } from '../notify/github';
import type { TransferCheckpoint } from './transfer-pass';

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
  /** The host's count of deliveries of this message (1 the first time); 1 when absent. */
  dequeueCount?: number;
}

/**
 * A stage's handle on its job. Every write goes through it, one at a time and under the lease, so a
 * stage never holds an ETag of its own.
 */
export interface StageRun {
  /** The job as last written. */
  readonly job: Job;
  readonly deps: PipelineDeps;
  /** Aborts when the invocation's time budget is spent. */
  readonly budget: AbortSignal;
  readonly log: Logger;
  /** Writes `changes` and renews the lease. */
  save(changes: Partial<Job>): Promise<Job>;
  /** Writes the final status (stage `done`) and gives the lease up. */
  finish(status: JobStatus, changes?: Partial<Job>): Promise<RunOutcome>;
  /**
   * Writes `changes` with status `waiting`, gives the lease up and enqueues a continuation visible
   * after `delaySeconds` (default: the gallery poll delay).
   */
  wait(changes: Partial<Job>, delaySeconds?: number): Promise<RunOutcome>;
}

/** A stage hands on to the stage it saved (undefined), or ends the invocation with an outcome. */
export type StageResult = RunOutcome | undefined;

export type Stage = (run: StageRun) => Promise<StageResult>;
