/**
 * The poison path: a request that failed on every delivery. Its job must end `failed` (never stay
 * running for ever), a finished job must stay as it is, and nothing here may throw: the poison
 * queue has no poison queue of its own, so a throwing handler would see its message again forever.
 */
import { InvocationContext } from '@azure/functions';
import { describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/lib/config/config';
import { createLogger, type Logger } from '../../../src/lib/core/log';
import type { BoshIoClient } from '../../../src/lib/boshio/client';
import { newJob, type Job } from '../../../src/lib/jobs/job';
import type { JobStore } from '../../../src/lib/jobs/store';
import type { Notifier } from '../../../src/lib/notify/github';
import { failPoisoned } from '../../../src/lib/mirror/poison';
import { mirrorPoison } from '../../../src/functions/mirrorPoison';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';

const runtime = vi.hoisted((): { services: () => unknown; log: unknown } => ({
  services: () => undefined,
  log: undefined,
}));
vi.mock('../../../src/functions/runtime', () => ({
  inInvocation: (_context: unknown, _fields: unknown, body: (log: unknown) => Promise<unknown>) =>
    body(runtime.log),
  services: () => runtime.services(),
}));

function capture(): { log: Logger; events: Array<[string, string]> } {
  const events: Array<[string, string]> = [];
  const log = createLogger((level, line) =>
    events.push([level, (JSON.parse(line) as { event: string }).event]),
  );
  return { log, events };
}

/** One job in memory, with the store calls failPoisoned makes. */
function world(job: Job | undefined) {
  let row = job;
  const sent: unknown[] = [];
  const jobs = {
    get: () => Promise.resolve(row),
    release: (j: Job, changes: Partial<Job>) => {
      row = { ...j, ...changes, leaseOwner: undefined, leaseUntil: undefined };
      return Promise.resolve(row);
    },
  } as unknown as JobStore;
  const boshio = {
    resolve: () => Promise.reject(new Error('bosh.io is down')),
  } as unknown as BoshIoClient;
  const notifier = {
    notify: (n: unknown) => {
      sent.push(n);
      return Promise.resolve();
    },
  } as unknown as Notifier;
  return { jobs, boshio, notifier, sent, row: () => row };
}

const config = loadConfig({}, 1800);
const running = (): Job => ({
  ...newJob(SERIES, '1.682'),
  status: 'running',
  stage: 'transfer',
  errorCode: 'DOWNLOAD_FAILED',
  errorMessage: 'connection reset',
  leaseOwner: 'w1',
  leaseUntil: new Date(Date.now() + 60_000).toISOString(),
  etag: 'e1',
});

describe('failPoisoned', () => {
  it('fails a running job with its last error, frees the lease and notifies once', async () => {
    const w = world(running());
    const { log, events } = capture();
    await failPoisoned({ series: SERIES, version: '1.682' }, { ...w, config, log });
    expect(w.row()).toMatchObject({ status: 'failed', errorCode: 'DOWNLOAD_FAILED', leaseOwner: undefined });
    expect(w.row()!.errorMessage).toMatch(/gave up after repeated failures: connection reset/);
    expect(w.sent).toEqual([expect.objectContaining({ kind: 'failed', version: '1.682' })]);
    expect(events).toContainEqual(['error', 'job.failed']);
  });

  it('says POISONED when the job had no error of its own', async () => {
    const w = world({ ...running(), errorCode: undefined, errorMessage: undefined });
    await failPoisoned({ series: SERIES, version: '1.682' }, { ...w, config, log: capture().log });
    expect(w.row()).toMatchObject({ status: 'failed', errorCode: 'POISONED' });
  });

  it('leaves a finished job as it is: a job never goes back', async () => {
    const done: Job = { ...running(), status: 'succeeded', stage: 'done', errorCode: undefined };
    const w = world(done);
    const { log, events } = capture();
    await failPoisoned({ series: SERIES, version: '1.682' }, { ...w, config, log });
    expect(w.row()).toBe(done);
    expect(w.sent).toEqual([]);
    expect(events).toEqual([['info', 'poison.already-done']]);
  });

  it('logs poison.no-job at error level when there is no job, or "latest" cannot be resolved', async () => {
    for (const version of ['1.682', 'latest']) {
      const w = world(undefined);
      const { log, events } = capture();
      await failPoisoned({ series: SERIES, version }, { ...w, config, log });
      expect(events).toEqual([['error', 'poison.no-job']]);
    }
  });
});

describe('mirrorPoison', () => {
  it('drops a message it cannot read with poison.bad-message, without throwing', async () => {
    const { log, events } = capture();
    runtime.log = log;
    runtime.services = () => {
      throw new Error('an unreadable message reached the services');
    };
    for (const message of ['not json {', { series: '../../etc' }, 42]) {
      await expect(
        mirrorPoison(message, new InvocationContext({ functionName: 'mirrorPoison' })),
      ).resolves.toBeUndefined();
    }
    expect(events).toEqual([
      ['error', 'poison.bad-message'],
      ['error', 'poison.bad-message'],
      ['error', 'poison.bad-message'],
    ]);
  });
});
