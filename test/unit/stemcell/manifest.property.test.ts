/**
 * Properties of reading stemcell.MF: any text, YAML-shaped or hostile (anchors and aliases, tags,
 * deep nesting), gives a manifest or ARCHIVE_INVALID, never another error: another error would be
 * taken for a transient fault and the job would download the whole stemcell again on every retry.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorError } from '../../../src/lib/core/errors';
import { parseManifest } from '../../../src/lib/stemcell/archive';
import { manifestYaml } from '../../support/stemcell-fixture';

const RUNS = { numRuns: 300 };

function outcome(text: string): string {
  try {
    parseManifest(text);
    return 'ok';
  } catch (e) {
    if (!(e instanceof MirrorError)) throw e;
    return e.code;
  }
}

const key = fc.constantFrom(
  'name',
  'version',
  'sha1',
  'cloud_properties',
  'operating_system',
  'x',
  '<<',
  '? a',
);
const scalar = fc.oneof(
  fc.constantFrom("'1.682'", '1.680', 'a'.repeat(40), '~', 'null', '{}', '[]', '!!binary aGk=', '!!str 1'),
  fc.string({ maxLength: 20 }).map((s) => JSON.stringify(s)),
  fc.stringMatching(/^[a-z]{1,4}$/).map((a) => `*${a}`),
  fc.stringMatching(/^[a-z]{1,4}$/).map((a) => `&${a} x`),
);
const yamlish = fc
  .array(
    fc.tuple(key, scalar, fc.nat({ max: 2 })).map(([k, v, indent]) => `${'  '.repeat(indent)}${k}: ${v}`),
    { maxLength: 12 },
  )
  .map((lines) => lines.join('\n'));

/** Nested aliases that expand exponentially: the "billion laughs" of YAML. */
const aliasBomb = fc.integer({ min: 2, max: 9 }).map((depth) => {
  const lines = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
  for (let i = 1; i < depth; i++)
    lines.push(
      `a${i}: &a${i} [${Array(9)
        .fill(`*a${i - 1}`)
        .join(', ')}]`,
    );
  return lines.join('\n');
});

describe('stemcell.MF (property)', () => {
  it('any text gives a manifest or ARCHIVE_INVALID', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), yamlish, aliasBomb), (text) => {
        expect(['ok', 'ARCHIVE_INVALID']).toContain(outcome(text));
      }),
      RUNS,
    );
  });

  it("reads back the builder's manifest whatever the version, keeping it as written", () => {
    fc.assert(
      fc.property(
        fc.array(fc.nat({ max: 99_999 }), { minLength: 1, maxLength: 3 }).map((p) => p.join('.')),
        fc.stringMatching(/^[0-9a-f]{40}$/),
        (version, sha1) => {
          const m = parseManifest(
            manifestYaml({ series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent', version, sha1, diskMiB: 5120 }),
          );
          expect(m.version).toBe(version);
          expect(m.sha1).toBe(sha1);
          expect(m.cloudProperties).toMatchObject({ infrastructure: 'azure', disk: 5120 });
        },
      ),
      RUNS,
    );
  });
});
