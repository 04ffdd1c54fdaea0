/**
 * Re-derives test/fakes/azure-specs/gallery-image-put.schema.json from a local copy of the published
 * Azure REST specification (Azure/azure-rest-api-specs):
 *
 *   node dist/scripts/derive-gallery-schema.js GalleryRP.json [common-types/v3/types.json] > out.json
 *
 * Keeps the definitions reachable from GalleryImage and GalleryImageVersion, each with only the
 * keywords a request validator needs (see KEEP); drops descriptions and x-ms-* annotations; points
 * the common-types references (TrackedResource, Resource, systemData) at local copies, taken from
 * types.json when it is given; and reduces the response-only types in RESPONSE_ONLY to a bare object.
 * Writes the schema to stdout. See test/fakes/azure-specs/README.md.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

type Schema = Record<string, unknown>;
interface Spec {
  info?: { version?: string };
  definitions: Record<string, Schema>;
}

const ROOTS = ['GalleryImage', 'GalleryImageVersion'];
const KEEP = new Set([
  'type',
  'properties',
  'required',
  'enum',
  'allOf',
  '$ref',
  'items',
  'additionalProperties',
  'format',
  'readOnly',
]);
/** Read-only types that only appear in responses: their shape is irrelevant to a request. */
const RESPONSE_ONLY = new Set(['SystemData', 'ReplicationStatus', 'ValidationsProfile']);
/** Common-types definitions by the local name they get. */
const COMMON: Record<string, string> = {
  TrackedResource: 'TrackedResource',
  Resource: 'Resource',
  systemData: 'SystemData',
};

/** The common-types definitions when no types.json is given: the shapes of the v3 file. */
const COMMON_FALLBACK: Record<string, Schema> = {
  Resource: {
    type: 'object',
    properties: {
      id: { type: 'string', readOnly: true },
      name: { type: 'string', readOnly: true },
      type: { type: 'string', readOnly: true },
      systemData: {
        $ref: '../../../../../../common-types/resource-management/v3/types.json#/definitions/systemData',
        readOnly: true,
      },
    },
  },
  systemData: { type: 'object', readOnly: true },
  TrackedResource: {
    type: 'object',
    properties: {
      tags: { type: 'object', additionalProperties: { type: 'string' } },
      location: { type: 'string' },
    },
    required: ['location'],
    allOf: [
      { $ref: '../../../../../../common-types/resource-management/v3/types.json#/definitions/Resource' },
    ],
  },
};

/**
 * The local name a `$ref` points at, or undefined for a reference we do not follow. `inCommon`: the
 * reference is written in types.json, where `#/definitions/x` means a common type.
 */
export function localName(ref: string, inCommon = false): string | undefined {
  const m = /^(.*)#\/definitions\/([^/]+)$/.exec(ref);
  if (!m) return undefined;
  const [, file, name] = m as unknown as [string, string, string];
  if (file === '') return inCommon ? COMMON[name] : name;
  if (file.endsWith('common-types/resource-management/v3/types.json')) return COMMON[name];
  return undefined;
}

/** A copy of `node` with only KEEP keywords (recursively) and references made local. */
function prune(node: unknown, refs: string[], inCommon: boolean): unknown {
  if (Array.isArray(node)) return node.map((n) => prune(n, refs, inCommon));
  if (!node || typeof node !== 'object') return node;
  const out: Schema = {};
  for (const [k, v] of Object.entries(node as Schema)) {
    if (k === 'properties' && v && typeof v === 'object') {
      out.properties = Object.fromEntries(
        Object.entries(v as Schema).map(([p, s]) => [p, prune(s, refs, inCommon)]),
      );
    } else if (k === '$ref' && typeof v === 'string') {
      const name = localName(v, inCommon);
      if (!name) throw new Error(`a reference this script does not follow: ${v}`);
      refs.push(name);
      out.$ref = `#/definitions/${name}`;
    } else if (KEEP.has(k)) {
      out[k] =
        k === 'enum' || k === 'required' || k === 'format' || k === 'type' || k === 'readOnly'
          ? v
          : prune(v, refs, inCommon);
    }
  }
  return out;
}

export function deriveGallerySchema(gallery: Spec, common?: Spec, source = 'GalleryRP.json'): Schema {
  const lookup = (name: string): { schema: Schema; inCommon: boolean } => {
    const commonName = Object.keys(COMMON).find((k) => COMMON[k] === name);
    const found = commonName
      ? (common?.definitions[commonName] ?? COMMON_FALLBACK[commonName])
      : gallery.definitions[name];
    if (!found) throw new Error(`no definition ${name}`);
    return { schema: found, inCommon: commonName !== undefined && common !== undefined };
  };
  const definitions: Record<string, unknown> = {};
  // Common types first, then breadth-first from the roots, as the committed file is ordered.
  const queue = ['Resource', 'SystemData', 'TrackedResource', ...ROOTS];
  while (queue.length > 0) {
    const name = queue.shift()!;
    if (name in definitions) continue;
    if (RESPONSE_ONLY.has(name)) {
      definitions[name] = { type: 'object' };
      continue;
    }
    const refs: string[] = [];
    const { schema, inCommon } = lookup(name);
    definitions[name] = prune(schema, refs, inCommon);
    queue.push(...refs);
  }
  const version = gallery.info?.version ?? 'unknown';
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://basm.invalid/azure-specs/gallery-image-put.schema.json',
    title:
      'Azure Compute Gallery: request bodies of GalleryImages_CreateOrUpdate and GalleryImageVersions_CreateOrUpdate',
    $comment: `Derived by scripts/derive-gallery-schema.ts from ${source} (api-version ${version}); see README.md beside this file.`,
    definitions,
  };
}

if (require.main === module) {
  const [galleryPath, commonPath] = process.argv.slice(2);
  if (!galleryPath) {
    console.error(
      'usage: derive-gallery-schema GalleryRP.json [common-types/resource-management/v3/types.json]',
    );
    process.exit(2);
  }
  const read = (p: string): Spec => JSON.parse(readFileSync(p, 'utf8')) as Spec;
  const schema = deriveGallerySchema(
    read(galleryPath),
    commonPath ? read(commonPath) : undefined,
    basename(galleryPath),
  );
  process.stdout.write(`${JSON.stringify(schema, null, 2)}\n`);
}
