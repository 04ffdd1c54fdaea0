/**
 * Properties of the job rules over every status and request: no finished job is stuck (a forced
 * request always starts it again, and then it is free for the next worker), a job in progress is
 * never restarted under its worker, and a repeated delivery never takes a finished job back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { JOB_STATUSES, TERMINAL, rearmFields, shouldRearm } from '../../../src/lib/jobs/job';

const job = fc.record({ status: fc.constantFrom(...JOB_STATUSES), errorPermanent: fc.boolean() });
const request = fc.record({ force: fc.boolean(), continuation: fc.boolean() }, { requiredKeys: [] });
const via = fc.constantFrom('accepted' as const, 'delivered' as const);

describe('job rules (property)', () => {
  it('a finished job can always be left: a forced request starts it again, queued and unleased', () => {
    fc.assert(
      fc.property(job, (j) => {
        if (!TERMINAL.has(j.status)) return;
        expect(shouldRearm(j, { force: true }, 'accepted')).toBe(true);
        expect(rearmFields()).toMatchObject({
          status: 'queued',
          leaseOwner: undefined,
          leaseUntil: undefined,
        });
      }),
      { numRuns: 200 },
    );
  });

  it('never restarts a job in progress or for a continuation, and a delivery never takes back a success', () => {
    fc.assert(
      fc.property(job, request, via, (j, r, v) => {
        const rearm = shouldRearm(j, r, v);
        if (!TERMINAL.has(j.status) || r.continuation) expect(rearm).toBe(false);
        if (v === 'delivered' && j.status !== 'failed') expect(rearm).toBe(false);
        if (j.status === 'failed' && !j.errorPermanent && !r.continuation) expect(rearm).toBe(true);
        if (j.status === 'failed' && j.errorPermanent && r.force !== true) expect(rearm).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});
