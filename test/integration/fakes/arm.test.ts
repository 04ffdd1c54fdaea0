/**
 * The fake ARM must refuse what Azure refuses, or the gallery tests prove nothing. Each case sends
 * a request that differs from an accepted one in a single point, through the real client where it
 * can say it (and raw HTTPS where the client never would).
 */
import { request } from 'node:https';
import { ComputeManagementClient, type GalleryImage, type GalleryImageVersion } from '@azure/arm-compute';
import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  API_VERSION,
  buildVhdFooter,
  fixedVhdFooterProblem,
  startFakeArm,
  type FakeArm,
} from '../../fakes/arm';
import { useBlobContainer } from '../../support/blobs';

const SUB = '00000000-0000-0000-0000-0000000000aa';
const RG = 'rg-mirror';
const GALLERY = 'stemcells';
const LOCATION = 'westeurope';
const ACCOUNT_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/devstoreaccount1`;
const MIB = 1024 * 1024;

const bed = useBlobContainer('stemcell');
let arm: FakeArm;
let client: ComputeManagementClient;

async function blobFacts(uri: string) {
  const name = decodeURIComponent(new URL(uri).pathname.split('/').slice(3).join('/'));
  const blob = bed.container.getBlobClient(name);
  if (!(await blob.exists())) return undefined;
  const props = await blob.getProperties();
  const size = props.contentLength ?? 0;
  const footer = size >= 512 ? await blob.downloadToBuffer(size - 512, 512) : Buffer.alloc(0);
  return { pageBlob: props.blobType === 'PageBlob', size, footer };
}

/** A small page blob ending in `footer` (a valid fixed-VHD footer unless told otherwise). */
async function pageBlob(
  name: string,
  footer = buildVhdFooter(2 * MIB),
  size = 2 * MIB + 512,
): Promise<string> {
  const blob = bed.container.getPageBlobClient(name);
  await blob.create(size);
  await blob.uploadPages(Buffer.alloc(512, 7), 0, 512);
  await blob.uploadPages(footer, size - 512, 512);
  return blob.url;
}

async function blockBlob(name: string, data: Buffer): Promise<string> {
  const blob = bed.container.getBlockBlobClient(name);
  await blob.uploadData(data);
  return blob.url;
}

const definition: GalleryImage = {
  location: LOCATION,
  osType: 'Linux',
  osState: 'Generalized',
  hyperVGeneration: 'V1',
  identifier: { publisher: 'bosh', offer: 'def', sku: 'gen1' },
};

function versionBody(uri: string, over: Partial<GalleryImageVersion> = {}): GalleryImageVersion {
  return {
    location: LOCATION,
    storageProfile: { osDiskImage: { source: { storageAccountId: ACCOUNT_ID, uri } } },
    ...over,
  };
}

async function putVersion(name: string, body: GalleryImageVersion): Promise<void> {
  await client.galleryImageVersions.createOrUpdate(RG, GALLERY, 'def', name, body).submitted();
}

async function rejection(
  p: Promise<unknown>,
): Promise<{ statusCode?: number; code?: string; message: string }> {
  try {
    await p;
  } catch (e) {
    return e as { statusCode?: number; code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

function raw(
  url: string,
  headers: Record<string, string>,
  method = 'GET',
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  arm = await startFakeArm({
    blobExists: blobFacts,
    subscriptionId: SUB,
    resourceGroup: RG,
    galleryName: GALLERY,
    location: LOCATION,
    pollsUntilDone: 1,
  });
  process.env.IDENTITY_ENDPOINT = arm.identityEndpoint;
  process.env.IDENTITY_HEADER = arm.identityHeader;
  client = new ComputeManagementClient(new ManagedIdentityCredential(), SUB, { endpoint: arm.endpoint });
});

afterAll(async () => {
  await arm?.close();
});

beforeEach(async () => {
  arm.reset();
  await client.galleryImages.createOrUpdate(RG, GALLERY, 'def', definition).pollUntilDone();
});

describe('fixed VHD oracle', () => {
  it('accepts a built footer and names each defect', () => {
    expect(fixedVhdFooterProblem(buildVhdFooter(2 * MIB), 2 * MIB + 512)).toBeUndefined();
    expect(fixedVhdFooterProblem(buildVhdFooter(2 * MIB, { diskType: 3 }), 2 * MIB + 512)).toMatch(
      /disk type is 3/,
    );
    expect(fixedVhdFooterProblem(buildVhdFooter(2 * MIB, { checksumDelta: 1 }), 2 * MIB + 512)).toMatch(
      /checksum/,
    );
    expect(fixedVhdFooterProblem(buildVhdFooter(2 * MIB), 3 * MIB + 512)).toMatch(/current size/);
    expect(fixedVhdFooterProblem(buildVhdFooter(MIB + 512), MIB + 1024)).toMatch(/whole number of MiB/);
    const wrongCookie = buildVhdFooter(2 * MIB);
    wrongCookie.write('conectiy', 0, 'latin1');
    expect(fixedVhdFooterProblem(wrongCookie, 2 * MIB + 512)).toMatch(/cookie/);
  });
});

describe('image versions', () => {
  it('accepts a fixed-VHD page blob and completes the operation', async () => {
    const uri = await pageBlob('ok.vhd');
    const result = await client.galleryImageVersions.createOrUpdate(
      RG,
      GALLERY,
      'def',
      '1.2.3',
      versionBody(uri),
    );
    expect(result.provisioningState).toBe('Succeeded');
    expect(arm.version('def', '1.2.3')).toBeDefined();
  });

  it.each([
    [
      'missing storageAccountId',
      async () =>
        versionBody(await pageBlob('a.vhd'), { storageProfile: { osDiskImage: { source: { uri: 'x' } } } }),
      /storageAccountId is required/,
    ],
    [
      'a missing blob',
      async () => versionBody(bed.container.getBlobClient('absent.vhd').url),
      /does not exist/,
    ],
    [
      'a block blob',
      async () =>
        versionBody(
          await blockBlob('block.vhd', Buffer.concat([Buffer.alloc(2 * MIB), buildVhdFooter(2 * MIB)])),
        ),
      /not a page blob/,
    ],
    [
      'a size not 512-aligned',
      async () => versionBody(await blockBlob('odd.vhd', Buffer.alloc(2 * MIB + 100))),
      /not a multiple of 512/,
    ],
    [
      'a dynamic VHD footer',
      async () => versionBody(await pageBlob('dyn.vhd', buildVhdFooter(2 * MIB, { diskType: 3 }))),
      /not a fixed VHD: the disk type is 3/,
    ],
    [
      'a wrong footer checksum',
      async () => versionBody(await pageBlob('sum.vhd', buildVhdFooter(2 * MIB, { checksumDelta: 5 }))),
      /checksum/,
    ],
    [
      'a blob of another account',
      async () =>
        versionBody(await pageBlob('acct.vhd'), {
          storageProfile: {
            osDiskImage: {
              source: {
                storageAccountId: ACCOUNT_ID.replace('devstoreaccount1', 'otheraccount'),
                uri: bed.container.getBlobClient('acct.vhd').url,
              },
            },
          },
        }),
      /not in storage account/,
    ],
    [
      'another location',
      async () => versionBody(await pageBlob('loc.vhd'), { location: 'northeurope' }),
      /gallery's location/,
    ],
    [
      'target regions without the gallery region',
      async () =>
        versionBody(await pageBlob('tr.vhd'), {
          publishingProfile: { targetRegions: [{ name: 'northeurope' }] },
        }),
      /must include the gallery's region/,
    ],
    [
      'a schema violation',
      async () =>
        versionBody(await pageBlob('sch.vhd'), {
          publishingProfile: { storageAccountType: 'Fast_LRS' },
        }),
      /Invalid GalleryImageVersion/,
    ],
  ])('refuses %s with 400', async (_case, body, message) => {
    const e = await rejection(putVersion('1.0.0', await body()));
    expect(e.statusCode).toBe(400);
    expect(e.code).toBe('InvalidParameter');
    expect(e.message).toMatch(message);
    expect(arm.version('def', '1.0.0')).toBeUndefined();
  });

  it.each(['1.682', '1.2.3.4', '1.2.4294967296', 'v1.2.3'])('refuses the version name %s', async (name) => {
    const e = await rejection(putVersion(name, versionBody(await pageBlob(`n${name}.vhd`))));
    expect(e.statusCode).toBe(400);
    expect(e.message).toMatch(/version name/);
  });

  it('refuses a version under a missing definition with 404 ParentResourceNotFound', async () => {
    const uri = await pageBlob('orphan.vhd');
    const e = await rejection(
      client.galleryImageVersions.createOrUpdate(RG, GALLERY, 'nodef', '1.0.0', versionBody(uri)).submitted(),
    );
    expect(e.statusCode).toBe(404);
    expect(e.code).toBe('ParentResourceNotFound');
  });

  it('refuses changing the source of an existing version with 409', async () => {
    await putVersion('1.0.0', versionBody(await pageBlob('one.vhd')));
    const e = await rejection(putVersion('1.0.0', versionBody(await pageBlob('two.vhd'))));
    expect(e.statusCode).toBe(409);
  });

  it('ends a version Failed when told to, with the error on the operation', async () => {
    arm.failVersion('1.0.1', { code: 'ImageVersionFailed', message: 'replication failed' });
    const e = await rejection(
      client.galleryImageVersions
        .createOrUpdate(RG, GALLERY, 'def', '1.0.1', versionBody(await pageBlob('f.vhd')))
        .pollUntilDone(),
    );
    expect(e.message).toMatch(/ImageVersionFailed/);
    expect((arm.version('def', '1.0.1')?.properties as { provisioningState: string }).provisioningState).toBe(
      'Failed',
    );
  });
});

describe('image definitions', () => {
  it('refuses a schema violation and an immutable change', async () => {
    const bad = await rejection(
      client.galleryImages
        .createOrUpdate(RG, GALLERY, 'x1', { ...definition, osType: 'Solaris' as 'Linux' })
        .submitted(),
    );
    expect(bad.statusCode).toBe(400);
    const noIdentifier = await rejection(
      client.galleryImages
        .createOrUpdate(RG, GALLERY, 'x2', { ...definition, identifier: undefined })
        .submitted(),
    );
    expect(noIdentifier.statusCode).toBe(400);
    const changed = await rejection(
      client.galleryImages
        .createOrUpdate(RG, GALLERY, 'def', { ...definition, hyperVGeneration: 'V2' })
        .submitted(),
    );
    expect(changed.statusCode).toBe(409);
    expect(changed.code).toBe('PropertyChangeNotAllowed');
  });
});

describe('authentication and api-version', () => {
  const galleryUrl = () =>
    `${arm.endpoint}/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/galleries/${GALLERY}`;

  it('answers the gallery to the token it issued, for the api-version the client speaks', async () => {
    const token = await new ManagedIdentityCredential().getToken('https://management.azure.com/.default');
    const ok = await raw(`${galleryUrl()}?api-version=${API_VERSION}`, {
      authorization: `Bearer ${token.token}`,
    });
    expect(ok.status).toBe(200);
    const oldVersion = await raw(`${galleryUrl()}?api-version=2019-03-01`, {
      authorization: `Bearer ${token.token}`,
    });
    expect(oldVersion.status).toBe(400);
    const noVersion = await raw(galleryUrl(), { authorization: `Bearer ${token.token}` });
    expect(noVersion.body).toMatchObject({ error: { code: 'MissingApiVersionParameter' } });
  });

  it('refuses a missing or wrong token with 401', async () => {
    const none = await raw(`${galleryUrl()}?api-version=${API_VERSION}`, {});
    expect(none.status).toBe(401);
    const wrong = await raw(`${galleryUrl()}?api-version=${API_VERSION}`, {
      authorization: 'Bearer not-the-token',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toMatchObject({ error: { code: 'InvalidAuthenticationToken' } });
  });

  it('issues tokens only with the identity header and a known identity', async () => {
    const url = `${arm.identityEndpoint}?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.azure.com`;
    const get = (u: string, headers: Record<string, string>) =>
      fetch(u, { headers }).then(async (r) => ({
        status: r.status,
        body: (await r.json()) as Record<string, unknown>,
      }));
    expect((await get(url, {})).status).toBe(401);
    expect((await get(url, { 'x-identity-header': 'guess' })).status).toBe(401);
    expect(
      (
        await get(`${url}&client_id=11111111-1111-1111-1111-111111111111`, {
          'x-identity-header': arm.identityHeader,
        })
      ).status,
    ).toBe(400);
    const ok = await get(url, { 'x-identity-header': arm.identityHeader });
    expect(ok.status).toBe(200);
    expect(Object.keys(ok.body).sort()).toEqual(['access_token', 'expires_on', 'resource', 'token_type']);
  });

  it('stops accepting a revoked token', async () => {
    const token = await new ManagedIdentityCredential().getToken('https://management.azure.com/.default');
    arm.revokeToken();
    const after = await raw(`${galleryUrl()}?api-version=${API_VERSION}`, {
      authorization: `Bearer ${token.token}`,
    });
    expect(after.status).toBe(401);
  });
});
