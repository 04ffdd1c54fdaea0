import { describe, expect, it } from 'vitest';
import {
  JOB_STATUSES,
  newJob,
  rearmFields,
  shouldRearm,
  TERMINAL,
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
