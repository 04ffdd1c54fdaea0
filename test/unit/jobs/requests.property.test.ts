/**
 * Properties of the request parsers (queue message, HTTP body): whatever arrives, the answer is a
 * request whose names pass the naming rules, so a job can be keyed and named for it, or a typed
 * INVALID_REQUEST, which the worker drops and the HTTP API answers with 400. Nothing else escapes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorError } from '../../../src/lib/core/errors';
import { isAzureSeries, isStemcellVersion } from '../../../src/lib/core/names';
import {
  encodeQueueMessage,
  parseQueueMessage,
  parseRequest,
  type QueueMessage,
} from '../../../src/lib/jobs/requests';
import { newJob } from '../../../src/lib/jobs/job';

const RUNS = { numRuns: 400 };

/** Series shaped like bosh.io's, and strings near them (what a person mistypes). */
const seriesLike = fc.oneof(
  fc
    .array(fc.stringMatching(/^[a-z0-9_]{1,12}$/), { minLength: 1, maxLength: 9 })
    .map((parts) => `bosh-azure-${parts.join('-')}`),
  fc.constantFrom('bosh-azure-hyperv-ubuntu-jammy-go_agent', 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent'),
  fc.string({ maxLength: 120 }),
);
const versionLike = fc.oneof(
  fc.constant('latest'),
  fc
    .array(fc.oneof(fc.nat({ max: 2 ** 31 }), fc.constant(0)), { minLength: 1, maxLength: 4 })
    .map((p) => p.join('.')),
  fc.stringMatching(/^[0-9.]{0,12}$/),
  fc.string({ maxLength: 50 }),
);
const requestLike = fc.record(
  {
    series: fc.oneof(seriesLike, fc.anything()),
    version: fc.oneof(versionLike, fc.anything()),
    force: fc.oneof(fc.boolean(), fc.anything()),
    reason: fc.oneof(fc.string({ maxLength: 250 }), fc.anything()),
    continuation: fc.oneof(fc.boolean(), fc.anything()),
    extra: fc.anything(),
  },
  { requiredKeys: [] },
);
const anyInput = fc.oneof(requestLike, fc.anything(), fc.jsonValue());

/** The outcome of a parser: the value, or the error's code; anything but a MirrorError fails. */
function outcome<T>(f: () => T): { ok: T } | { code: string } {
  try {
    return { ok: f() };
  } catch (e) {
    if (!(e instanceof MirrorError)) throw e;
    return { code: e.code };
  }
}

function assertUsable(m: QueueMessage): void {
  expect(isAzureSeries(m.series)).toBe(true);
  expect(m.version === 'latest' || isStemcellVersion(m.version)).toBe(true);
  // An exact version must give a job row and a gallery version, or the job could never move.
  if (m.version !== 'latest') expect(newJob(m.series, m.version).galleryVersion).toMatch(/^\d+\.\d+\.\d+$/);
}

describe('HTTP body (parseRequest)', () => {
  it('accepts a usable request or refuses with INVALID_REQUEST, never anything else', () => {
    fc.assert(
      fc.property(anyInput, (body) => {
        const r = outcome(() => parseRequest(body));
        if ('ok' in r) {
          assertUsable(r.ok);
          expect(r.ok.continuation).toBeUndefined();
        } else expect(r.code).toBe('INVALID_REQUEST');
      }),
      RUNS,
    );
  });

  it('never lets a client mark its request as a continuation', () => {
    fc.assert(
      fc.property(requestLike, fc.boolean(), (body, continuation) => {
        expect(outcome(() => parseRequest({ ...body, continuation }))).not.toHaveProperty('ok');
      }),
      RUNS,
    );
  });
});

describe('queue message (parseQueueMessage)', () => {
  it('takes objects, text and bytes alike: a usable request or INVALID_REQUEST', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.tuple(seriesLike, versionLike).map(([s, v]) => `${s}/${v}`),
      anyInput.map((v) => {
        try {
          return JSON.stringify(v) ?? '';
        } catch {
          return '';
        }
      }),
    );
    const message = fc.oneof(
      anyInput,
      text,
      text.map((t) => Buffer.from(t)),
    );
    fc.assert(
      fc.property(message, (m) => {
        const r = outcome(() => parseQueueMessage(m));
        if ('ok' in r) assertUsable(r.ok);
        else expect(r.code).toBe('INVALID_REQUEST');
      }),
      RUNS,
    );
  });

  it('reads back every message the app sends, after the base64 the host decodes', () => {
    const sent = fc.record(
      {
        series: fc.constantFrom('bosh-azure-hyperv-ubuntu-jammy-go_agent', 'bosh-azure-hyperv-ubuntu-noble'),
        version: fc.oneof(
          fc.constant('latest'),
          fc.array(fc.nat({ max: 999_999_999 }), { minLength: 1, maxLength: 3 }).map((p) => p.join('.')),
        ),
        force: fc.boolean(),
        reason: fc.string({ maxLength: 200 }),
        continuation: fc.constant(true),
      },
      { requiredKeys: ['series', 'version'] },
    );
    fc.assert(
      fc.property(sent, (m) => {
        const text = Buffer.from(encodeQueueMessage(m), 'base64').toString('utf8');
        expect(parseQueueMessage(text)).toEqual(m);
        expect(parseQueueMessage(JSON.parse(text))).toEqual(m);
      }),
      RUNS,
    );
  });
});
