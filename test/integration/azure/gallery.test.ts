/**
 * Gallery publishing through the real arm-compute client and the real managed-identity credential,
 * against the strict fake ARM, with VHD page blobs staged in a real Azurite.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config, type GalleryConfig } from '../../../src/lib/config/config';
import { createAzureCredential } from '../../../src/lib/azure/credential';
import { invocationBudget, runWithBudget } from '../../../src/lib/core/budget';
import { MirrorError } from '../../../src/lib/core/errors';
import {
  MIRROR_STEMCELL_REFERENCE,
  cpiVersionTags,
  imageDefinitionFor,
  type ImageDefinitionSpec,
} from '../../../src/lib/stemcell/cpi-image';
import { GalleryPublisher, type VersionInfo } from '../../../src/lib/azure/gallery';
import { buildVhdFooter, pageBlobFacts, startFakeArm, type FakeArm } from '../../fakes/arm';
import { useBlobContainer } from '../../support/blobs';

const SUB = '00000000-0000-0000-0000-0000000000bb';
const CLIENT_ID = '22222222-2222-2222-2222-222222222222';
const MIB = 1024 * 1024;
const SHA = 'a'.repeat(64);

const bed = useBlobContainer('stemcell');
let arm: FakeArm;
let config: Config;
let gallery: GalleryConfig;
let publisher: GalleryPublisher;

function env(over: Record<string, string> = {}): Record<string, string> {
  return {
    AZURE_SUBSCRIPTION_ID: SUB,
    AZURE_RESOURCE_GROUP: 'rg-mirror',
    AZURE_REGION: 'westeurope',
    AZURE_GALLERY_NAME: 'stemcells',
    AZURE_MANAGED_IDENTITY_ID: CLIENT_ID,
    AZURE_RESOURCE_MANAGER_ENDPOINT: arm.endpoint,
    BASM_STORAGE_CONNECTION_STRING: bed.connectionString,
    BASM_GALLERY_TARGET_REGIONS: 'westeurope=2,northeurope=1',
    BASM_GALLERY_STORAGE_ACCOUNT_TYPE: 'Standard_ZRS',
    ...over,
  };
}

function publisherFor(c: Config): GalleryPublisher {
  return new GalleryPublisher(c.gallery!, createAzureCredential(c), {
    endpoint: c.armEndpoint,
    retry: { maxRetries: 3, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
    definitionPollIntervalMs: 5,
    backoff: { attempts: 4, firstDelayMs: 5 },
  });
}

const blobFacts = (uri: string) => pageBlobFacts(bed.container, uri);

async function stageVhd(name: string): Promise<string> {
  const blob = bed.container.getPageBlobClient(name);
  await blob.create(2 * MIB + 512);
  await blob.uploadPages(Buffer.alloc(4096, 1), 0, 4096);
  await blob.uploadPages(buildVhdFooter(2 * MIB), 2 * MIB, 512);
  return blob.url;
}

const jammyGen1 = {
  name: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
  version: '1.682',
  infrastructure: 'azure',
  hypervisor: 'hyperv',
  disk: 3072,
  disk_format: 'vhd',
  container_format: 'bare',
  os_type: 'linux',
  os_distro: 'ubuntu',
  architecture: 'x86_64',
};

const nobleGen2 = {
  ...jammyGen1,
  name: 'bosh-azure-hyperv-ubuntu-noble',
  generation: 'gen2',
  architecture: 'arm64',
  disk_controller_types: ['scsi', 'nvme'],
  accelerated_networking: true,
  hibernation: false,
  security_type: 'TrustedLaunchSupported',
};

/** The state as the job stores it: a string inside a JSON table entity, written and read back. */
const roundTrip = (state: string): string =>
  (JSON.parse(JSON.stringify({ state })) as { state: string }).state;

function putsTo(pathEnd: string) {
  return arm.requests.filter((r) => r.method === 'PUT' && r.path.endsWith(pathEnd));
}

async function pollToEnd(state: string, max = 10) {
  const seen: string[] = [];
  let s = state;
  for (let i = 0; i < max; i++) {
    const r = await publisher.pollVersion(roundTrip(s));
    seen.push(r.status);
    if (r.status !== 'running') return { result: r, seen };
    expect(r.state.length).toBeLessThan(4096);
    s = r.state;
  }
  throw new Error('the operation never ended');
}

beforeAll(async () => {
  arm = await startFakeArm({
    blobExists: blobFacts,
    subscriptionId: SUB,
    resourceGroup: 'rg-mirror',
    galleryName: 'stemcells',
    location: 'westeurope',
    userAssignedClientIds: [CLIENT_ID],
    pageSize: 2,
  });
  process.env.IDENTITY_ENDPOINT = arm.identityEndpoint;
  process.env.IDENTITY_HEADER = arm.identityHeader;
  config = loadConfig(env());
  gallery = config.gallery!;
  publisher = publisherFor(config);
});

afterAll(async () => {
  await arm?.close();
});

beforeEach(() => arm.reset());

describe('imageDefinitionFor (BOSH Azure CPI naming)', () => {
  it('names a manifest without generation as gen1: the bare name, V1, no features', () => {
    expect(imageDefinitionFor(jammyGen1, gallery)).toEqual({
      name: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
      publisher: 'bosh',
      offer: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
      sku: 'gen1',
      hyperVGeneration: 'V1',
      architecture: 'x64',
      features: [],
      osType: 'Linux',
    });
    expect(imageDefinitionFor({ ...jammyGen1, generation: 'gen1' }, gallery).name).toBe(jammyGen1.name);
  });

  it('suffixes gen2 and carries its features in the CPI order and spelling', () => {
    expect(imageDefinitionFor(nobleGen2, gallery)).toEqual({
      name: 'bosh-azure-hyperv-ubuntu-noble-gen2',
      publisher: 'bosh',
      offer: 'bosh-azure-hyperv-ubuntu-noble-gen2',
      sku: 'gen2',
      hyperVGeneration: 'V2',
      architecture: 'Arm64',
      features: [
        { name: 'DiskControllerTypes', value: 'SCSI,NVMe' },
        { name: 'IsAcceleratedNetworkSupported', value: 'True' },
        { name: 'IsHibernateSupported', value: 'False' },
        { name: 'SecurityType', value: 'TrustedLaunchSupported' },
      ],
      osType: 'Linux',
    });
  });

  it('takes name, offer, sku and publisher from the settings when given', () => {
    const c = loadConfig(
      env({
        BASM_GALLERY_IMAGE_NAME: 'ubuntu-noble',
        BASM_GALLERY_OFFER: 'stemcells',
        BASM_GALLERY_SKU: 'noble-gen2',
        BASM_GALLERY_PUBLISHER: 'acme',
      }),
    );
    expect(imageDefinitionFor(nobleGen2, c.gallery!)).toMatchObject({
      name: 'ubuntu-noble',
      publisher: 'acme',
      offer: 'stemcells',
      sku: 'noble-gen2',
      hyperVGeneration: 'V2',
    });
  });

  it('refuses manifests it cannot name', () => {
    expect(() => imageDefinitionFor({ ...jammyGen1, name: undefined }, gallery)).toThrow(MirrorError);
    expect(() => imageDefinitionFor({ ...jammyGen1, generation: 'gen3' }, gallery)).toThrow(/gen3/);
    expect(() => imageDefinitionFor({ ...jammyGen1, architecture: 'sparc' }, gallery)).toThrow(/sparc/);
  });
});

describe('cpiVersionTags', () => {
  it('writes the tags a director checks before reusing a version', () => {
    const spec = imageDefinitionFor(nobleGen2, gallery);
    const tags = cpiVersionTags(nobleGen2, spec, {
      galleryName: 'stemcells',
      galleryVersion: '1.682.0',
      imageSha256: SHA,
    });
    expect(tags).toMatchObject({
      image_sha256: SHA,
      stemcell_references: MIRROR_STEMCELL_REFERENCE,
      compute_gallery_name: 'stemcells',
      compute_gallery_image_definition: 'bosh-azure-hyperv-ubuntu-noble-gen2',
      name: 'bosh-azure-hyperv-ubuntu-noble',
      version: '1.682',
      disk: '3072',
      accelerated_networking: 'true',
      disk_controller_types: '["scsi", "nvme"]',
    });
    expect(JSON.parse(tags.image!)).toEqual({
      publisher: 'bosh',
      offer: 'bosh-azure-hyperv-ubuntu-noble-gen2',
      sku: 'gen2',
      version: '1.682.0',
    });
  });

  it('leaves out what Azure cannot hold as a tag', () => {
    const spec = imageDefinitionFor(jammyGen1, gallery);
    const tags = cpiVersionTags({ ...jammyGen1, long: 'x'.repeat(300), 'a/b': 'y' }, spec, {
      galleryName: 'stemcells',
      galleryVersion: '1.682.0',
      imageSha256: SHA,
    });
    expect(tags).not.toHaveProperty('long');
    expect(tags).not.toHaveProperty('a/b');
    expect(tags.image_sha256).toBe(SHA);
  });
});

describe('createAzureCredential', () => {
  it('is one object per process and uses the user-assigned identity', async () => {
    const c = createAzureCredential(config);
    expect(createAzureCredential(loadConfig(env()))).toBe(c);
    const token = await c.getToken('https://management.azure.com/.default');
    expect(token?.token).toBeTruthy();
    expect(arm.tokenRequests.filter((r) => r.status === 200).map((r) => r.query.client_id)).toEqual([
      CLIENT_ID,
    ]);
  });

  it('falls back to the default chain (the system-assigned identity here) without a client id', async () => {
    const c = createAzureCredential(loadConfig(env({ AZURE_MANAGED_IDENTITY_ID: '' })));
    expect(c.constructor.name).toBe('DefaultAzureCredential');
    const token = await c.getToken('https://management.azure.com/.default');
    expect(token?.token).toBeTruthy();
    expect(arm.tokenRequests.some((r) => r.status === 200 && r.query.client_id === undefined)).toBe(true);
  });
});

describe('ensureImageDefinition', () => {
  it('creates a missing definition with the CPI body and waits for it', async () => {
    const spec = imageDefinitionFor(nobleGen2, gallery);
    await publisher.ensureImageDefinition(spec);
    const [put] = putsTo('/images/bosh-azure-hyperv-ubuntu-noble-gen2');
    expect(put?.status).toBe(201);
    expect(put?.query['api-version']).toBe('2025-12-03');
    expect(put?.body).toEqual({
      location: 'westeurope',
      properties: {
        description: 'BOSH stemcell mirrored from bosh.io',
        osType: 'Linux',
        osState: 'Generalized',
        hyperVGeneration: 'V2',
        architecture: 'Arm64',
        identifier: { publisher: 'bosh', offer: 'bosh-azure-hyperv-ubuntu-noble-gen2', sku: 'gen2' },
        features: spec.features,
      },
    });
    expect(arm.image(spec.name)?.properties).toMatchObject({ provisioningState: 'Succeeded' });
  });

  it('leaves a compatible definition alone', async () => {
    const spec = imageDefinitionFor(jammyGen1, gallery);
    await publisher.ensureImageDefinition(spec);
    await publisher.ensureImageDefinition(spec);
    expect(putsTo(`/images/${spec.name}`)).toHaveLength(1);
  });

  it('reports an incompatible definition as GALLERY_CONFLICT without touching it', async () => {
    const gen1 = imageDefinitionFor(jammyGen1, gallery);
    await publisher.ensureImageDefinition(gen1);
    const gen2Same: ImageDefinitionSpec = { ...gen1, hyperVGeneration: 'V2' };
    const e = await publisher.ensureImageDefinition(gen2Same).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(MirrorError);
    expect(e).toMatchObject({ code: 'GALLERY_CONFLICT', permanent: true });
    expect((e as Error).message).toMatch(/hyperVGeneration is V1, the stemcell needs V2/);
    const arm64: ImageDefinitionSpec = { ...gen1, architecture: 'Arm64' };
    await expect(publisher.ensureImageDefinition(arm64)).rejects.toMatchObject({ code: 'GALLERY_CONFLICT' });
    expect(putsTo(`/images/${gen1.name}`)).toHaveLength(1);
  });
});

describe('image versions', () => {
  let spec: ImageDefinitionSpec;
  beforeEach(async () => {
    spec = imageDefinitionFor(jammyGen1, gallery);
    await publisher.ensureImageDefinition(spec);
  });

  async function create(version: string, excludeFromLatest = false, blob = `v${version}.vhd`) {
    const uri = await stageVhd(blob);
    const tags = cpiVersionTags(jammyGen1, spec, {
      galleryName: 'stemcells',
      galleryVersion: '1.682.0',
      imageSha256: SHA,
    });
    const state = await publisher.beginCreateVersion(spec.name, version, {
      sourceUri: uri,
      tags,
      excludeFromLatest,
    });
    return { uri, tags, state };
  }

  it.each(['azure-async-operation', 'location'] as const)(
    'creates 1.682 as 1.682.0 and follows the %s operation across polls',
    async (style) => {
      arm.setLroStyle(style);
      arm.setPollsUntilDone(3);
      const { uri, tags, state } = await create('1.682', true);
      expect(state.length).toBeLessThan(4096);
      const [put] = putsTo('/versions/1.682.0');
      expect(put?.body).toEqual({
        location: 'westeurope',
        tags,
        properties: {
          publishingProfile: {
            targetRegions: [
              { name: 'westeurope', regionalReplicaCount: 2, storageAccountType: 'Standard_ZRS' },
              { name: 'northeurope', regionalReplicaCount: 1, storageAccountType: 'Standard_ZRS' },
            ],
            storageAccountType: 'Standard_ZRS',
            excludeFromLatest: true,
          },
          storageProfile: {
            osDiskImage: {
              hostCaching: 'ReadOnly',
              source: {
                storageAccountId: `/subscriptions/${SUB}/resourceGroups/rg-mirror/providers/Microsoft.Storage/storageAccounts/devstoreaccount1`,
                uri,
              },
            },
          },
        },
      });
      expect((await publisher.getVersion(spec.name, '1.682.0'))?.provisioningState).toBe('Creating');
      const { result, seen } = await pollToEnd(state);
      expect(seen).toEqual(['running', 'running', 'succeeded']);
      expect(result).toMatchObject({
        status: 'succeeded',
        version: {
          name: '1.682.0',
          provisioningState: 'Succeeded',
          excludeFromLatest: true,
          sourceUri: uri,
          tags: { image_sha256: SHA },
          id: `/subscriptions/${SUB}/resourceGroups/rg-mirror/providers/Microsoft.Compute/galleries/stemcells/images/${spec.name}/versions/1.682.0`,
        },
      });
      const v = (result as { version: VersionInfo }).version;
      expect(Number.isNaN(Date.parse(v.publishedDate ?? ''))).toBe(false);
    },
  );

  it.each(['azure-async-operation', 'location'] as const)(
    "surfaces Azure's error when provisioning ends Failed (%s)",
    async (style) => {
      arm.setLroStyle(style);
      arm.failVersion('1.683.0', {
        code: 'ReplicationJobsNotCompleted',
        message: 'Replication to northeurope failed',
      });
      const { state } = await create('1.683');
      const { result } = await pollToEnd(state);
      expect(result).toEqual({
        status: 'failed',
        error: { code: 'ReplicationJobsNotCompleted', message: 'Replication to northeurope failed' },
      });
      expect((await publisher.getVersion(spec.name, '1.683.0'))?.provisioningState).toBe('Failed');
    },
  );

  it('retries 429 and 5xx answers and then succeeds', async () => {
    arm.failNext(2, 429, 0);
    const { state } = await create('1.700');
    arm.failNext(1, 503);
    arm.failNext(1, 500);
    const { result } = await pollToEnd(state);
    expect(result.status).toBe('succeeded');
    const statuses = arm.requests.map((r) => r.status);
    expect(statuses.filter((s) => s === 429)).toHaveLength(2);
    expect(statuses).toContain(503);
    expect(statuses).toContain(500);
  });

  it('throws a transient GALLERY_FAILED when 5xx outlasts the retries, and the state stays usable', async () => {
    const { state } = await create('1.701');
    arm.failNext(4, 503); // the first try and three retries
    await expect(publisher.pollVersion(roundTrip(state))).rejects.toMatchObject({
      code: 'GALLERY_FAILED',
      permanent: false,
    });
    const { result } = await pollToEnd(state);
    expect(result.status).toBe('succeeded');
  });

  it("turns Azure's 400 into a permanent GALLERY_FAILED carrying Azure's code and message", async () => {
    const uri = bed.container.getBlobClient('never-staged.vhd').url;
    const e = await publisher
      .beginCreateVersion(spec.name, '1.702', { sourceUri: uri, tags: {}, excludeFromLatest: false })
      .catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'GALLERY_FAILED', permanent: true });
    expect((e as Error).message).toMatch(/400 InvalidParameter: The blob .* does not exist/);
  });

  it('reports a changed source of an existing version as GALLERY_CONFLICT', async () => {
    const { state } = await create('1.703');
    await pollToEnd(state);
    const e = await create('1.703', false, 'other.vhd').catch((x: unknown) => x);
    expect(e).toMatchObject({ code: 'GALLERY_CONFLICT' });
  });

  it('refuses a version name Azure cannot take before sending anything', async () => {
    await expect(
      publisher.beginCreateVersion(spec.name, '1.2.3.4', {
        sourceUri: 'x',
        tags: {},
        excludeFromLatest: false,
      }),
    ).rejects.toMatchObject({ code: 'INVALID_REQUEST' });
    expect(putsTo('/versions/1.2.3.4')).toHaveLength(0);
  });

  it('lists versions across pages, and finds none for a missing definition', async () => {
    for (const v of ['1.1', '1.2', '1.10']) await pollToEnd((await create(v)).state);
    const names = (await publisher.listVersions(spec.name)).map((v) => v.name).sort();
    expect(names).toEqual(['1.1.0', '1.10.0', '1.2.0']);
    expect(arm.requests.some((r) => r.method === 'GET' && r.query.$skiptoken === '2')).toBe(true);
    expect(await publisher.listVersions('no-such-definition')).toEqual([]);
    expect(await publisher.getVersion(spec.name, '9.9.9')).toBeUndefined();
  });

  it.each(['azure-async-operation', 'location'] as const)(
    'deletes a version by polls (%s)',
    async (style) => {
      const { state } = await create('1.800');
      await pollToEnd(state);
      arm.setLroStyle(style);
      arm.setPollsUntilDone(2);
      const del = await publisher.beginDeleteVersion(spec.name, '1.800.0');
      expect(await publisher.pollDelete(roundTrip(del))).toBe('running');
      expect(await publisher.pollDelete(roundTrip(del))).toBe('done');
      expect(await publisher.getVersion(spec.name, '1.800.0')).toBeUndefined();
      const again = await publisher.beginDeleteVersion(spec.name, '1.800.0');
      expect(await publisher.pollDelete(again)).toBe('done');
    },
  );
});

describe('what Resource Manager answers in the field', () => {
  let spec: ImageDefinitionSpec;
  let uri: string;
  let n = 0;
  beforeEach(async () => {
    spec = imageDefinitionFor(jammyGen1, gallery);
    await publisher.ensureImageDefinition(spec);
    uri = await stageVhd(`field-${++n}.vhd`);
  });

  const begin = (version: string) =>
    publisher.beginCreateVersion(spec.name, version, { sourceUri: uri, tags: {}, excludeFromLatest: false });
  const okPuts = (version: string) => putsTo(`/versions/${version}`).filter((r) => r.status < 300);
  async function rejection(p: Promise<unknown>): Promise<MirrorError> {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(MirrorError);
    return e as MirrorError;
  }

  it('retries a concurrent-write conflict (409 ConflictingConcurrentWriteNotAllowed) and creates the version once', async () => {
    arm.failNext(2, 409, {
      code: 'ConflictingConcurrentWriteNotAllowed',
      method: 'PUT',
      pathIncludes: '/versions/',
    });
    const state = await begin('2.1');
    expect((await pollToEnd(state)).result.status).toBe('succeeded');
    expect(putsTo('/versions/2.1.0').map((r) => r.status)).toEqual([409, 409, 201]);
    expect(okPuts('2.1.0')).toHaveLength(1);
  });

  it('waits out a parent not yet visible (404 ParentResourceNotFound) right after the definition was created', async () => {
    arm.setParentLag(2);
    const fresh = imageDefinitionFor({ ...jammyGen1, name: 'bosh-azure-hyperv-ubuntu-lagging' }, gallery);
    await publisher.ensureImageDefinition(fresh);
    const state = await publisher.beginCreateVersion(fresh.name, '2.2', {
      sourceUri: uri,
      tags: {},
      excludeFromLatest: false,
    });
    expect((await pollToEnd(state)).result.status).toBe('succeeded');
    expect(putsTo('/versions/2.2.0').map((r) => r.status)).toEqual([404, 404, 201]);
  });

  it('keeps a real conflict (409 PropertyChangeNotAllowed) permanent and does not retry it', async () => {
    arm.failNext(1, 409, { code: 'PropertyChangeNotAllowed', method: 'PUT', pathIncludes: '/versions/' });
    const e = await rejection(begin('2.3'));
    expect(e.code).toBe('GALLERY_CONFLICT');
    expect(e.permanent).toBe(true);
    expect(putsTo('/versions/2.3.0')).toHaveLength(1);
  });

  it('gives up on a conflict that outlasts the retries as transient, not as a conflict', async () => {
    arm.failNext(9, 409, { code: 'AnotherOperationInProgress', method: 'PUT', pathIncludes: '/versions/' });
    const e = await rejection(begin('2.4'));
    expect(e.code).toBe('GALLERY_FAILED');
    expect(e.permanent).toBe(false);
    // One try and four retries.
    expect(putsTo('/versions/2.4.0')).toHaveLength(5);
    arm.reset();
  });

  it('never sleeps out a Retry-After longer than the budget: it ends the call with the delay to continue after', async () => {
    arm.failNext(1, 429, { retryAfterSeconds: 1800, method: 'PUT', pathIncludes: '/versions/' });
    const e = await rejection(runWithBudget(invocationBudget(60_000), () => begin('2.5')));
    expect(e.permanent).toBe(false);
    expect(e.retryAfterSeconds).toBe(1800);
    expect(putsTo('/versions/2.5.0')).toHaveLength(1);
    // A short one within the budget is waited out by the client and the call goes through.
    arm.failNext(1, 429, { retryAfterSeconds: 1, method: 'PUT', pathIncludes: '/versions/' });
    await runWithBudget(invocationBudget(60_000), () => begin('2.5'));
    expect(okPuts('2.5.0')).toHaveLength(1);
  });

  it('turns a backoff the budget cannot hold into a delayed continuation', async () => {
    const patient = new GalleryPublisher(config.gallery!, createAzureCredential(config), {
      endpoint: config.armEndpoint,
      backoff: { attempts: 4, firstDelayMs: 5_000 },
    });
    arm.failNext(1, 409, {
      code: 'ConflictingConcurrentWriteNotAllowed',
      method: 'PUT',
      pathIncludes: '/versions/',
    });
    const e = await rejection(
      runWithBudget(invocationBudget(2_000), () =>
        patient.beginCreateVersion(spec.name, '2.6', { sourceUri: uri, tags: {}, excludeFromLatest: false }),
      ),
    );
    expect(e.permanent).toBe(false);
    expect(e.retryAfterSeconds).toBe(5);
    expect(putsTo('/versions/2.6.0').map((r) => r.status)).toEqual([409]);
  });

  it('carries the budget’s abort signal on every call: a spent budget stops a read at once', async () => {
    const spent = new AbortController();
    spent.abort();
    const before = arm.requests.length;
    const e = await rejection(runWithBudget(spent.signal, () => publisher.getVersion(spec.name, '1.0.0')));
    expect(e.retryAfterSeconds).toBe(0);
    expect(arm.requests.length).toBe(before);
  });
});

describe('selectForRetention', () => {
  const v = (name: string, provisioningState = 'Succeeded'): VersionInfo => ({
    name,
    provisioningState,
    tags: {},
    id: name,
    excludeFromLatest: false,
    sourceUri: undefined,
    publishedDate: undefined,
  });
  const names = (xs: VersionInfo[]) => xs.map((x) => x.name);
  const all = [v('1.9.0'), v('1.10.0'), v('1.2.0'), v('1.100.0'), v('0.5.0')];

  it('keeps the newest N by numeric version and deletes the rest, oldest last', () => {
    expect(names(publisher.selectForRetention(all, 2, []))).toEqual(['1.9.0', '1.2.0', '0.5.0']);
    expect(names(publisher.selectForRetention(all, 4, []))).toEqual(['0.5.0']);
  });

  it('keeps everything when N is 0 or covers all', () => {
    expect(publisher.selectForRetention(all, 0, [])).toEqual([]);
    expect(publisher.selectForRetention(all, 5, [])).toEqual([]);
  });

  it('never deletes a protected version, in either spelling', () => {
    expect(names(publisher.selectForRetention(all, 1, ['1.9', '0.5.0']))).toEqual(['1.10.0', '1.2.0']);
  });

  it('never deletes a version with an operation in progress', () => {
    const xs = [v('3.0.0'), v('2.0.0', 'Creating'), v('1.0.0', 'Deleting'), v('0.1.0', 'Failed')];
    expect(names(publisher.selectForRetention(xs, 1, []))).toEqual(['0.1.0']);
  });
});
