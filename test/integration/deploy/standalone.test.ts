/**
 * The repository stands alone, as a user's clone does: nothing the suite or the benchmark reads
 * lies outside it, and the request schema the ARM fake validates against is kept here, re-derivable
 * from the published Azure REST specification by a script of our own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deriveGallerySchema } from '../../../scripts/derive-gallery-schema';
import { ROOT } from '../../support/build';

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sources(path);
    return /\.(?:[cm]?[jt]s|sh)$/.test(e.name) ? [path] : [];
  });
}

/** The folder beside the repository, as code wrote it: `'..', '<name>'`, `'../<name>'` and the like. */
const OUTSIDE = /(?:'\.\.',\s*){1,}'shared'|\.\.\/(?:\.\.\/)*shared\b/;

describe('nothing in test/, bench/ or scripts/ reads beside the repository', () => {
  it('no source file names a path up and out of it', () => {
    const files = ['test', 'bench', 'scripts'].flatMap(sources);
    expect(files.length).toBeGreaterThan(50);
    const self = relative(ROOT, __filename);
    expect(files.filter((f) => f !== self && OUTSIDE.test(readFileSync(join(ROOT, f), 'utf8')))).toEqual([]);
  });

  it('the pattern finds the ways the suite used to', () => {
    // Built from parts, so this file's own text never reads like such a path.
    const beside = ['sha', 'red'].join('');
    expect(OUTSIDE.test(`resolve(__dirname, '..', '..', '..', '${beside}', 'azure-specs')`)).toBe(true);
    expect(OUTSIDE.test(`resolve(ROOT, '..', '${beside}', 'fixtures', 'make-stemcell.sh')`)).toBe(true);
    expect(OUTSIDE.test(`readFileSync('../${beside}/x.json')`)).toBe(true);
    expect(OUTSIDE.test("resolve(ROOT, 'bench', 'fixtures', 'make-stemcell.sh')")).toBe(false);
  });
});

describe('test/fakes/azure-specs/gallery-image-put.schema.json', () => {
  const committed = JSON.parse(
    readFileSync(join(ROOT, 'test', 'fakes', 'azure-specs', 'gallery-image-put.schema.json'), 'utf8'),
  ) as { definitions: Record<string, unknown> };

  it('is what the derivation makes of it: the same definitions, each with the same keywords', () => {
    // The committed subset, read as if it were the spec: a subset derived from the spec is a fixed point.
    const again = deriveGallerySchema({
      definitions: committed.definitions as Record<string, Record<string, unknown>>,
    });
    expect(again.definitions).toEqual(committed.definitions);
  });

  it('the derivation drops annotations and unreachable definitions, and makes common references local', () => {
    const spec = {
      info: { version: '2099-01-01' },
      definitions: {
        GalleryImage: {
          type: 'object',
          description: 'dropped',
          'x-ms-azure-resource': true,
          properties: {
            properties: { $ref: '#/definitions/GalleryImageProperties', 'x-ms-client-flatten': true },
          },
          allOf: [
            {
              $ref: '../../../../../../common-types/resource-management/v3/types.json#/definitions/TrackedResource',
            },
          ],
        },
        GalleryImageProperties: {
          type: 'object',
          properties: { osType: { type: 'string', enum: ['Linux', 'Windows'], 'x-ms-enum': { name: 'x' } } },
          required: ['osType'],
        },
        GalleryImageVersion: {
          type: 'object',
          properties: { status: { $ref: '#/definitions/ReplicationStatus' } },
        },
        ReplicationStatus: { type: 'object', readOnly: true, properties: { summary: { type: 'array' } } },
        Unrelated: { type: 'object' },
      },
    };
    const out = deriveGallerySchema(spec).definitions as Record<string, Record<string, unknown>>;
    expect(Object.keys(out).sort()).toEqual(
      [
        'GalleryImage',
        'GalleryImageProperties',
        'GalleryImageVersion',
        'ReplicationStatus',
        'Resource',
        'SystemData',
        'TrackedResource',
      ].sort(),
    );
    expect(out.GalleryImage).toEqual({
      type: 'object',
      properties: { properties: { $ref: '#/definitions/GalleryImageProperties' } },
      allOf: [{ $ref: '#/definitions/TrackedResource' }],
    });
    expect(out.GalleryImageProperties).toEqual(
      spec.definitions.GalleryImageProperties && {
        type: 'object',
        properties: { osType: { type: 'string', enum: ['Linux', 'Windows'] } },
        required: ['osType'],
      },
    );
    expect(out.ReplicationStatus).toEqual({ type: 'object' });
    expect(() =>
      deriveGallerySchema({ definitions: { GalleryImage: { $ref: 'other.json#/definitions/X' } } }),
    ).toThrow(/does not follow/);
  });
});
