/**
 * The job store: one entity per (series, version) in Table Storage, every change ETag-conditional,
 * and the lease that lets exactly one worker advance a job at a time. The only module that builds
 * table keys or knows the entity layout.
 */
import type { TableClient, TableEntityResult } from '@azure/data-tables';
import { hasStatus, storageError } from '../core/azure-errors';
import { MirrorError } from '../core/errors';
import { isSeriesName, isStemcellVersion } from '../core/names';
import { JOB_STATUSES, newJob, type Job, type JobStatus } from './job';
import { onceUntilFailure } from '../core/once';
import type { ScheduleRecord } from './schedule-health';

const MAX_STRING = 30_000;

/** Table keys: both already validated by names.ts, so no '/', '\\', '#', '?' can reach them. */
function keys(series: string, version: string): { partitionKey: string; rowKey: string } {
  if (!isSeriesName(series) || !isStemcellVersion(version)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `invalid job key ${JSON.stringify(series)}/${JSON.stringify(version)}`,
    );
  }
  return { partitionKey: series, rowKey: version };
}

type Entity = Record<string, unknown> & { partitionKey: string; rowKey: string };

function toEntity(job: Omit<Job, 'etag'>): Entity {
  const e: Entity = { ...keys(job.series, job.version) };
  for (const [k, v] of Object.entries(job)) {
    if (v === undefined || k === 'etag') continue;
    if (typeof v === 'string' && v.length > MAX_STRING) {
      throw new MirrorError('INTERNAL', `job field ${k} is too long for Table Storage (${v.length} chars)`);
    }
    // Byte counts exceed Int32: store them as doubles (exact up to 2^53).
    e[k] = typeof v === 'number' && Number.isInteger(v) ? { value: String(v), type: 'Double' } : v;
  }
  return e;
}

function fromEntity(e: TableEntityResult<Record<string, unknown>>): Job {
  const out: Record<string, unknown> = newJob(String(e.series), String(e.version));
  for (const [k, def] of Object.entries(out)) {
    const v = e[k];
    if (v !== undefined && v !== null) out[k] = typeof def === 'number' ? Number(v) : v;
  }
  return { ...(out as Omit<Job, 'etag'>), etag: e.etag };
}

/**
 * The schedule's row lives in the jobs table under a partition key no series can have (series
 * names start with `bosh-`), so no second table, and no second grant, is needed.
 */
const SCHEDULE_KEYS = { partitionKey: 'schedule', rowKey: 'mirrorSchedule' } as const;

function toScheduleRecord(e: Record<string, unknown>): ScheduleRecord {
  const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  return { lastRunAt: text(e.lastRunAt), watchingSince: text(e.watchingSince) };
}

/** Thrown when the row changed since it was read: re-read and decide again. */
export class StaleJobError extends MirrorError {
  constructor(series: string, version: string) {
    super('INTERNAL', `job ${series}/${version} was changed by another worker`, { permanent: false });
    this.name = 'StaleJobError';
  }
}

export interface JobPage {
  jobs: Job[];
  next: string | undefined;
}

export class JobStore {
  private readonly ensureTable: () => Promise<void>;

  constructor(private readonly table: TableClient) {
    // In Azure the deployment creates the table and the app's role covers that table only; creating
    // a table is a request to the table service, outside that role: a 403 there means it exists.
    this.ensureTable = onceUntilFailure(() =>
      this.table.createTable().catch((e: unknown) => {
        if (!hasStatus(e, 403)) throw storageError(e, 'Creating the job table failed');
      }),
    );
  }

  async get(series: string, version: string): Promise<Job | undefined> {
    await this.ensureTable();
    const k = keys(series, version);
    try {
      return fromEntity(await this.table.getEntity(k.partitionKey, k.rowKey));
    } catch (e) {
      if (hasStatus(e, 404)) return undefined;
      throw storageError(e, `Reading job ${series}/${version} failed`);
    }
  }

  /** Creates the job, or returns the existing one (created: false) when another request won. */
  async create(job: Omit<Job, 'etag'>): Promise<{ job: Job; created: boolean }> {
    await this.ensureTable();
    try {
      await this.table.createEntity(toEntity(job));
      const stored = await this.get(job.series, job.version);
      if (stored) return { job: stored, created: true };
    } catch (e) {
      if (!hasStatus(e, 409)) throw storageError(e, `Creating job ${job.series}/${job.version} failed`);
    }
    const existing = await this.get(job.series, job.version);
    if (!existing) throw new MirrorError('STORAGE_FAILED', `job ${job.series}/${job.version} vanished`);
    return { job: existing, created: false };
  }

  /** Writes `changes` if the row is still at `job.etag`; StaleJobError otherwise. */
  async update(
    job: Job,
    changes: Partial<Omit<Job, 'etag' | 'series' | 'version'>>,
    now = new Date(),
  ): Promise<Job> {
    await this.ensureTable();
    const { etag, ...rest } = job;
    const next = { ...rest, ...changes, updatedAt: now.toISOString() };
    const entity = toEntity(next);
    // Replace, so that fields set back to undefined are really removed.
    try {
      const r = await this.table.updateEntity(entity, 'Replace', { etag });
      if (r.etag === undefined) throw new MirrorError('STORAGE_FAILED', 'Table Storage returned no ETag');
      return { ...next, etag: r.etag };
    } catch (e) {
      if (hasStatus(e, 412) || hasStatus(e, 404)) throw new StaleJobError(job.series, job.version);
      throw storageError(e, `Updating job ${job.series}/${job.version} failed`);
    }
  }

  /**
   * Claims the lease for `owner` until now + seconds, writing `changes` in the same update. Returns
   * the updated job, or the remaining lease in ms of the live owner when someone else holds it.
   */
  async claim(
    job: Job,
    owner: string,
    seconds: number,
    now = new Date(),
    changes: Partial<Omit<Job, 'etag' | 'series' | 'version'>> = {},
  ): Promise<{ claimed: true; job: Job } | { claimed: false; remainingMs: number; job: Job }> {
    const remaining = leaseRemainingMs(job, now);
    if (job.leaseOwner !== undefined && job.leaseOwner !== owner && remaining > 0) {
      return { claimed: false, remainingMs: remaining, job };
    }
    const until = new Date(now.getTime() + seconds * 1000).toISOString();
    const claimed = await this.update(
      job,
      { ...changes, leaseOwner: owner, leaseUntil: until, attempts: job.attempts + 1 },
      now,
    );
    return { claimed: true, job: claimed };
  }

  /** Extends the lease (at each checkpoint). StaleJobError if someone took the job. */
  async renew(job: Job, seconds: number, changes: Partial<Job> = {}, now = new Date()): Promise<Job> {
    const until = new Date(now.getTime() + seconds * 1000).toISOString();
    return this.update(job, { ...changes, leaseUntil: until }, now);
  }

  /** Lets the next message take the job at once. */
  release(job: Job, changes: Partial<Job> = {}, now = new Date()): Promise<Job> {
    return this.update(job, { ...changes, leaseOwner: undefined, leaseUntil: undefined }, now);
  }

  /**
   * Jobs newest first, optionally filtered; `next` is an opaque cursor. The table is small (one row
   * per stemcell version ever requested), so filtering and ordering happen here.
   */
  async list(
    filter: { series?: string; status?: JobStatus; limit?: number; next?: string } = {},
  ): Promise<JobPage> {
    await this.ensureTable();
    const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
    const clauses: string[] = [];
    if (filter.series !== undefined) {
      keys(filter.series, '0');
      clauses.push(`PartitionKey eq '${filter.series}'`);
    }
    if (filter.status !== undefined) {
      if (!JOB_STATUSES.includes(filter.status))
        throw new MirrorError('INVALID_REQUEST', `unknown status ${filter.status}`);
      clauses.push(`status eq '${filter.status}'`);
    }
    const all: Job[] = [];
    const iter = this.table.listEntities<Record<string, unknown>>({
      queryOptions: clauses.length ? { filter: clauses.join(' and ') } : {},
    });
    try {
      for await (const e of iter) {
        // Rows that are not jobs (the schedule's) share the table.
        if (isSeriesName(e.partitionKey ?? '')) all.push(fromEntity(e));
      }
    } catch (e) {
      throw storageError(e, 'Listing jobs failed');
    }
    all.sort(
      (a, b) =>
        b.createdAt.localeCompare(a.createdAt) ||
        a.series.localeCompare(b.series) ||
        b.version.localeCompare(a.version),
    );
    const start = filter.next === undefined ? 0 : decodeCursor(filter.next);
    const page = all.slice(start, start + limit);
    return { jobs: page, next: start + limit < all.length ? encodeCursor(start + limit) : undefined };
  }

  /** What is known about the schedule's runs; undefined when nothing was recorded yet. */
  async getScheduleRecord(): Promise<ScheduleRecord | undefined> {
    await this.ensureTable();
    try {
      return toScheduleRecord(
        await this.table.getEntity<Record<string, unknown>>(SCHEDULE_KEYS.partitionKey, SCHEDULE_KEYS.rowKey),
      );
    } catch (e) {
      if (hasStatus(e, 404)) return undefined;
      throw storageError(e, 'Reading the schedule record failed');
    }
  }

  /**
   * The record, creating it with `watchingSince` = `now` when there is none, so that a schedule that
   * never fires becomes overdue too. One read; one write only the first time.
   */
  async watchSchedule(now = new Date()): Promise<ScheduleRecord> {
    const existing = await this.getScheduleRecord();
    if (existing) return existing;
    try {
      await this.table.createEntity({ ...SCHEDULE_KEYS, watchingSince: now.toISOString() });
    } catch (e) {
      // Another invocation created it first: read what it wrote.
      if (!hasStatus(e, 409)) throw storageError(e, 'Creating the schedule record failed');
      return (await this.getScheduleRecord()) ?? { lastRunAt: undefined, watchingSince: undefined };
    }
    return { lastRunAt: undefined, watchingSince: now.toISOString() };
  }

  /** Records a run of the schedule that started at `at` (runs never overlap: last writer wins). */
  async recordScheduleRun(at: Date): Promise<void> {
    await this.ensureTable();
    try {
      await this.table.upsertEntity({ ...SCHEDULE_KEYS, lastRunAt: at.toISOString() }, 'Merge');
    } catch (e) {
      throw storageError(e, 'Recording the schedule run failed');
    }
  }
}

function encodeCursor(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

function decodeCursor(next: string): number {
  try {
    const v = (JSON.parse(Buffer.from(next, 'base64url').toString('utf8')) as { o?: unknown }).o;
    if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v;
  } catch {
    // fall through
  }
  throw new MirrorError('INVALID_REQUEST', 'the "next" cursor is not one this service issued');
}

export function leaseRemainingMs(job: Job, now = new Date()): number {
  if (job.leaseUntil === undefined) return 0;
  return Math.max(0, Date.parse(job.leaseUntil) - now.getTime());
}
