import { describe, expect, it } from 'vitest';
import {
  JOB_STATUSES,
  newJob,
  rearmFields,
  shouldRearm,
  TERMINAL,
  watchdogVerdict,
  type JobStatus,
} from '../../../src/lib/jobs/job';

const job = (status: JobStatus, errorPermanent = false) => ({ status, errorPermanent });

describe('job rules', () => {
  it('knows which statuses are final', () => {
    expect([...TERMINAL].sort()).toEqual(['failed', 'skipped', 'staged', 'succeeded']);
    expect(JOB_STATUSES.filter((s) => !TERMINAL.has(s))).toEqual(['queued', 'running', 'waiting']);
  });

  it('never re-arms a job that is not finished, nor for a continuation', () => {
    for (const status of ['queued', 'running', 'waiting'] as const) {
      expect(shouldRearm(job(status), { force: true }, 'accepted')).toBe(false);
    }
    expect(shouldRearm(job('failed'), { continuation: true }, 'delivered')).toBe(false);
    expect(shouldRearm(job('failed'), { force: true, continuation: true }, 'accepted')).toBe(false);
  });

  it('re-arms a transient failure for any new request, a permanent one only with force', () => {
    for (const via of ['accepted', 'delivered'] as const) {
      expect(shouldRearm(job('failed'), {}, via)).toBe(true);
      expect(shouldRearm(job('failed', true), {}, via)).toBe(false);
      expect(shouldRearm(job('failed', true), { force: true }, via)).toBe(true);
    }
  });

  it('leaves a finished job as it is on a repeated delivery, and starts it again when a request forces it', () => {
    for (const status of ['succeeded', 'skipped', 'staged'] as const) {
      expect(shouldRearm(job(status), {}, 'delivered')).toBe(false);
      expect(shouldRearm(job(status), { force: true }, 'delivered')).toBe(false);
      expect(shouldRearm(job(status), {}, 'accepted')).toBe(false);
      expect(shouldRearm(job(status), { force: true }, 'accepted')).toBe(true);
    }
  });

  it('re-arms to a queued job that keeps its progress', () => {
    const j = {
      ...newJob('bosh-azure-hyperv-ubuntu-jammy-go_agent', '1.682'),
      watermark: 4096,
      uploadedBytes: 8192,
    };
    const rearmed = { ...j, ...rearmFields() };
    expect(rearmed).toMatchObject({
      status: 'queued',
      stage: 'queued',
      watermark: 4096,
      uploadedBytes: 8192,
    });
    expect(rearmed.errorCode).toBeUndefined();
    expect(rearmed.leaseOwner).toBeUndefined();
    expect(newJob('bosh-azure-hyperv-ubuntu-jammy-go_agent', '1.682').galleryVersion).toBe('1.682.0');
  });
});

describe('watchdogVerdict', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  const at = (seconds: number) => new Date(now.getTime() + seconds * 1000).toISOString();
  const running = (leaseOwner: string | undefined, leaseUntil: string | undefined) => ({
    status: 'running' as const,
    leaseOwner,
    leaseUntil,
  });

  it('comes back just after the lease of the run it watches would expire, while that lease is live', () => {
    expect(watchdogVerdict(running('w/1', at(40.2)), 'w/1', now, 2)).toEqual({
      kind: 'defer',
      delaySeconds: 43,
    });
  });

  it('takes the job over when the watched lease expired on a job still running', () => {
    expect(watchdogVerdict(running('w/1', at(-5)), 'w/1', now, 2)).toEqual({ kind: 'take-over' });
    // Another run that claimed after it died, and died too: any dead run's job is taken over once.
    expect(watchdogVerdict(running('w/2', at(0)), 'w/1', now, 2)).toEqual({ kind: 'take-over' });
  });

  it('takes over on its first delivery only, and defers on any', () => {
    expect(watchdogVerdict(running('w/1', at(-5)), 'w/1', now, 2, 2)).toMatchObject({
      kind: 'drop',
      why: /delivered 2 times/,
    });
    expect(watchdogVerdict(running('w/1', at(30)), 'w/1', now, 2, 3)).toEqual({
      kind: 'defer',
      delaySeconds: 32,
    });
  });

  it('ends when another run holds the job, the run ended, or the job is finished', () => {
    expect(watchdogVerdict(running('w/2', at(30)), 'w/1', now, 2)).toMatchObject({
      kind: 'drop',
      why: /another run/,
    });
    for (const status of ['waiting', 'queued'] as const) {
      expect(
        watchdogVerdict({ status, leaseOwner: undefined, leaseUntil: undefined }, 'w/1', now, 2),
      ).toMatchObject({
        kind: 'drop',
        why: new RegExp(status),
      });
    }
    for (const status of TERMINAL) {
      expect(watchdogVerdict({ status, leaseOwner: 'w/1', leaseUntil: at(30) }, 'w/1', now, 2)).toMatchObject(
        {
          kind: 'drop',
        },
      );
    }
  });
});
