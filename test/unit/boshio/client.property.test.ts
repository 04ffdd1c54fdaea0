/**
 * Properties of reading bosh.io's JSON: any entry is a release with well-formed fields or a reason
 * to skip it, never a thrown error, whatever fields are missing, mistyped or hostile.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isStemcellVersion } from '../../../src/lib/core/names';
import { parseEntry } from '../../../src/lib/boshio/client';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-fA-F]{${n}}$`));
const maybe = <T>(a: fc.Arbitrary<T>) => fc.oneof(a, fc.anything());

const entry = fc.record(
  {
    name: maybe(fc.constantFrom(SERIES, 'bosh-azure-hyperv-ubuntu-noble')),
    version: maybe(
      fc.oneof(
        fc.array(fc.nat({ max: 2000 }), { minLength: 1, maxLength: 4 }).map((p) => p.join('.')),
        fc.string({ maxLength: 12 }),
      ),
    ),
    regular: maybe(
      fc.record(
        {
          url: maybe(
            fc.oneof(
              fc.webUrl(),
              fc.constantFrom('https://storage.googleapis.com/bosh-core-stemcells/x.tgz', 'not a url', ''),
            ),
          ),
          size: maybe(
            fc.oneof(fc.integer(), fc.double(), fc.constant(2 ** 60), fc.string({ maxLength: 12 })),
          ),
          sha256: maybe(fc.oneof(hex(64), fc.constant(''), hex(63))),
          sha1: maybe(fc.oneof(hex(40), fc.constant(''), fc.constant(null))),
          md5: maybe(fc.constant('')),
        },
        { requiredKeys: [] },
      ),
    ),
  },
  { requiredKeys: [] },
);

describe('bosh.io entries (property)', () => {
  it('give a well-formed release or a reason, never an exception', () => {
    fc.assert(
      fc.property(fc.oneof(entry, fc.anything(), fc.jsonValue()), (raw) => {
        const r = parseEntry(SERIES, raw);
        if (typeof r === 'string') {
          expect(r.length).toBeGreaterThan(0);
          return;
        }
        expect(r.series).toBe(SERIES);
        expect(isStemcellVersion(r.version)).toBe(true);
        expect(URL.canParse(r.url)).toBe(true);
        if (r.size !== undefined) expect(Number.isSafeInteger(r.size) && r.size > 0).toBe(true);
        if (r.sha256 !== undefined) expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);
        if (r.sha1 !== undefined) expect(r.sha1).toMatch(/^[0-9a-f]{40}$/);
      }),
      { numRuns: 500 },
    );
  });
});
