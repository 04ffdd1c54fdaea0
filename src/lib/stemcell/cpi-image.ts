/**
 * A stemcell as the BOSH Azure CPI puts it in a gallery: the image definition's name, identity and
 * features from stemcell.MF, and the tags on each version. Plain data, no Azure client, so the
 * pipeline can plan a publish without loading the ARM SDK.
 */
import type { GalleryConfig } from '../config/config';
import { MirrorError } from '../core/errors';

export interface ImageDefinitionSpec {
  name: string;
  publisher: string;
  offer: string;
  sku: string;
  hyperVGeneration: 'V1' | 'V2';
  architecture: 'x64' | 'Arm64';
  features: Array<{ name: string; value: string }>;
  osType: 'Linux' | 'Windows';
}

/** The reference the mirror leaves in `stemcell_references`, so a director never deletes a mirrored version. */
export const MIRROR_STEMCELL_REFERENCE = 'bosh-azure-stemcell-mirror';

const DEFAULT_GENERATION = 'gen1';
/** The generations Azure stemcells come in (stemcell.MF `cloud_properties.generation`). */
const GENERATIONS = ['gen1', 'gen2'] as const;

/** Azure's limit of tags per resource ("Use tags to organize your Azure resources"). */
export const MAX_TAGS = 50;
/** Azure's limit on a tag value's length, in characters (same source). */
export const MAX_TAG_VALUE = 256;

function generationOf(cp: Record<string, unknown>): string {
  const g = cp.generation;
  return typeof g === 'string' && g !== '' ? g : DEFAULT_GENERATION;
}

function isGen1(cp: Record<string, unknown>): boolean {
  return generationOf(cp).toLowerCase() === DEFAULT_GENERATION;
}

/** Ruby truthiness, as the CPI tests these flags: only false and nil are false. */
function rubyFlag(v: unknown): 'True' | 'False' {
  return v === false || v === null || v === undefined ? 'False' : 'True';
}

function diskControllerName(c: unknown): string {
  const s = String(c);
  if (s.toLowerCase() === 'scsi') return 'SCSI';
  if (s.toLowerCase() === 'nvme') return 'NVMe';
  return s;
}

/** Features the CPI derives from stemcell.MF; gen1 definitions carry none. */
function featuresOf(cp: Record<string, unknown>): Array<{ name: string; value: string }> {
  if (isGen1(cp)) return [];
  const features: Array<{ name: string; value: string }> = [];
  const controllers = cp.disk_controller_types;
  if (Array.isArray(controllers) && controllers.length > 0) {
    features.push({ name: 'DiskControllerTypes', value: controllers.map(diskControllerName).join(',') });
  }
  if ('accelerated_networking' in cp) {
    features.push({ name: 'IsAcceleratedNetworkSupported', value: rubyFlag(cp.accelerated_networking) });
  }
  if ('hibernation' in cp) features.push({ name: 'IsHibernateSupported', value: rubyFlag(cp.hibernation) });
  if ('security_type' in cp) features.push({ name: 'SecurityType', value: String(cp.security_type) });
  return features;
}

function architectureOf(cp: Record<string, unknown>): 'x64' | 'Arm64' {
  const a = typeof cp.architecture === 'string' ? cp.architecture.toLowerCase() : '';
  if (a === '' || a === 'x86_64' || a === 'x64' || a === 'amd64') return 'x64';
  if (a === 'arm64' || a === 'aarch64') return 'Arm64';
  throw new MirrorError(
    'ARCHIVE_INVALID',
    `stemcell.MF architecture "${String(cp.architecture)}" is not x86_64 or arm64`,
  );
}

function osTypeOf(cp: Record<string, unknown>): 'Linux' | 'Windows' {
  const o = typeof cp.os_type === 'string' ? cp.os_type.toLowerCase() : 'linux';
  if (o === 'linux') return 'Linux';
  if (o === 'windows') return 'Windows';
  throw new MirrorError(
    'ARCHIVE_INVALID',
    `stemcell.MF os_type "${String(cp.os_type)}" is not linux or windows`,
  );
}

/**
 * The image definition name of a stemcell: `BASM_GALLERY_IMAGE_NAME` when set, otherwise the name
 * the BOSH Azure CPI gives it (stemcell.MF `cloud_properties.name` for gen1, `<name>-<generation>`
 * otherwise; bosh-azure-cpi-release `stemcell_manager2.rb`). The one rule every part of the app
 * uses to find a stemcell's versions.
 */
export function imageDefinitionName(
  baseName: string,
  generation: string,
  imageName: string | undefined,
): string {
  if (imageName !== undefined) return imageName;
  return generation.toLowerCase() === DEFAULT_GENERATION ? baseName : `${baseName}-${generation}`;
}

/**
 * Where a series' versions may be before its stemcell.MF has been read (a new request, the CLI):
 * the definition of each generation, named as above from the series (bosh.io's Azure stemcells
 * carry the series as `cloud_properties.name`).
 */
export function imageDefinitionCandidates(series: string, imageName: string | undefined): string[] {
  return [...new Set(GENERATIONS.map((g) => imageDefinitionName(series, g, imageName)))];
}

/**
 * The image definition for a stemcell, from stemcell.MF `cloud_properties`, named as the BOSH Azure
 * CPI names it (definition `name` for gen1, `name-generation` otherwise; publisher bosh, offer = the
 * definition name, SKU = the generation), so a director using the same gallery finds it. Settings
 * override the name and identity.
 */
export function imageDefinitionFor(
  cloudProperties: Record<string, unknown>,
  gallery: GalleryConfig,
): ImageDefinitionSpec {
  const baseName = cloudProperties.name;
  if (typeof baseName !== 'string' || baseName === '') {
    throw new MirrorError('ARCHIVE_INVALID', 'stemcell.MF cloud_properties has no name');
  }
  const generation = generationOf(cloudProperties);
  const name = imageDefinitionName(baseName, generation, gallery.imageName);
  const hv = generation.toLowerCase().replace(/^gen/, '');
  if (hv !== '1' && hv !== '2') {
    throw new MirrorError('ARCHIVE_INVALID', `stemcell.MF generation "${generation}" is not gen1 or gen2`);
  }
  return {
    name,
    publisher: gallery.publisher,
    offer: gallery.offer ?? name,
    sku: gallery.sku ?? generation,
    hyperVGeneration: hv === '1' ? 'V1' : 'V2',
    architecture: architectureOf(cloudProperties),
    features: featuresOf(cloudProperties),
    osType: osTypeOf(cloudProperties),
  };
}

/** Ruby's `to_s` for the values stemcell.MF holds, as the CPI writes them into tags. */
function rubyToS(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v))
    return `[${v.map((x) => (typeof x === 'string' ? JSON.stringify(x) : rubyToS(x))).join(', ')}]`;
  return JSON.stringify(v);
}

const TAG_NAME_FORBIDDEN = /[<>%&\\?/]/;

/**
 * The tags the CPI writes on the versions it creates: every cloud property, plus `image` (its
 * publisher/offer/sku/version), the gallery and definition names, `image_sha256` (sha256 of the
 * `image` entry) and `stemcell_references`. A director that finds a version by these reuses it when
 * the sha256 matches, and refuses a version without `stemcell_references` as not its own.
 * Properties Azure cannot hold as tags (too long, forbidden characters, over 50) are left out.
 */
export function cpiVersionTags(
  cloudProperties: Record<string, unknown>,
  spec: ImageDefinitionSpec,
  p: { galleryName: string; galleryVersion: string; imageSha256: string },
): Record<string, string> {
  const own: Record<string, string> = {
    image: JSON.stringify({
      publisher: spec.publisher,
      offer: spec.offer,
      sku: spec.sku,
      version: p.galleryVersion,
    }),
    compute_gallery_name: p.galleryName,
    compute_gallery_image_definition: spec.name,
    image_sha256: p.imageSha256,
    stemcell_references: MIRROR_STEMCELL_REFERENCE,
  };
  const tags: Record<string, string> = {};
  const room = MAX_TAGS - Object.keys(own).length;
  for (const [k, v] of Object.entries(cloudProperties)) {
    if (k in own || Object.keys(tags).length >= room) continue;
    const value = rubyToS(v);
    if (k.length > 512 || TAG_NAME_FORBIDDEN.test(k) || value.length > MAX_TAG_VALUE) continue;
    tags[k] = value;
  }
  return { ...tags, ...own };
}

/** Adds `extra` to `tags` as far as Azure's limits allow (MAX_TAGS, MAX_TAG_VALUE); the rest is left out. */
export function withTags(
  tags: Record<string, string>,
  extra: Record<string, string>,
): Record<string, string> {
  const out = { ...tags };
  for (const [k, v] of Object.entries(extra)) {
    if (Object.keys(out).length < MAX_TAGS && v.length <= MAX_TAG_VALUE) out[k] = v;
  }
  return out;
}

/** The stemcell names in a version's `stemcell_references` tag (comma-separated, as the CPI writes it). */
export function stemcellReferences(tags: Readonly<Record<string, string>>): string[] {
  return (tags.stemcell_references ?? '')
    .split(',')
    .map((r) => r.trim())
    .filter((r) => r !== '');
}

/**
 * Whether the mirror alone uses a version: its `stemcell_references` holds the mirror's reference
 * and nothing else. A director's CPI adds its stemcell's name when it uses a version and refuses a
 * version without the tag as "not created by BOSH CPI" (bosh-azure-cpi-release); any other name, or
 * no tag at all, means someone else created or uses it, and the mirror must neither delete nor
 * replace it.
 */
export function usedByMirrorAlone(tags: Readonly<Record<string, string>>): boolean {
  const refs = stemcellReferences(tags);
  return refs.length > 0 && refs.every((r) => r === MIRROR_STEMCELL_REFERENCE);
}
