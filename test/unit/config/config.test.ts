import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Env } from '../../../src/lib/config/config';

const GALLERY: Env = {
  AZURE_SUBSCRIPTION_ID: '00000000-0000-4000-8000-000000000001',
  AZURE_RESOURCE_GROUP: 'rg-stemcells',
  AZURE_REGION: 'westeurope',
  AZURE_GALLERY_NAME: 'bosh_stemcells',
};

function fails(env: Env, setting: string, expected: RegExp): void {
  let err: unknown;
  try {
    loadConfig(env, 1800);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  const ce = err as ConfigError;
  expect(ce.code).toBe('CONFIG_INVALID');
  expect(ce.message).toContain(setting);
  expect(ce.message).toMatch(expected);
}

describe('loadConfig defaults', () => {
  it('applies the documented defaults with an empty environment', () => {
    const c = loadConfig({}, 1800);
    expect(c.series).toEqual(['bosh-azure-hyperv-ubuntu-jammy-go_agent']);
    expect(c.schedule).toBe('0 0 */6 * * *');
    expect(c.boshIoUrl).toBe('https://bosh.io');
    expect(c.allowedDownloadHosts).toContain('storage.googleapis.com');
    expect(c.allowedDownloadHosts).toContain('bosh.io');
    expect(c.gallery).toBeUndefined();
    expect(c.armEndpoint).toBe('https://management.azure.com');
    expect(c.container).toBe('stemcell');
    expect(c.retainVersions).toBe(0);
    expect(c.backfillVersions).toBe(1);
    expect(c.keepSourceVhd).toBe(false);
    expect(c.leaseSeconds).toBe(60);
    expect(c.functionsPort).toBe(7071);
    expect(c.notify.github).toBeUndefined();
    expect(c.notify.onFailure).toBe(true);
    expect(c.downloadCache).toBe('resume');
    expect(c.checkpointMiB).toBe(256);
    expect(c.galleryPollSeconds).toBe(30);
    expect(c.hostStorage.kind).toBe('connectionString');
    // 30 min timeout less a 3 min margin
    expect(c.invocationBudgetSeconds).toBe(1620);
    expect(loadConfig({}, 600).invocationBudgetSeconds).toBe(540);
  });

  it('is frozen all the way down', () => {
    const c = loadConfig(GALLERY, 1800);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.gallery)).toBe(true);
    expect(Object.isFrozen(c.gallery?.targetRegions)).toBe(true);
    expect(() => (c.series as string[]).push('x')).toThrow();
  });

  it('builds the gallery target, storage account id and home region', () => {
    const c = loadConfig({ ...GALLERY, AZURE_STORAGE_ACCOUNT_NAME: 'stemcellvhds' }, 1800);
    expect(c.gallery).toMatchObject({
      subscriptionId: GALLERY.AZURE_SUBSCRIPTION_ID,
      galleryName: 'bosh_stemcells',
      publisher: 'bosh',
      targetRegions: [{ name: 'westeurope', replicas: 1 }],
      storageAccountType: 'Standard_LRS',
      storageAccountId:
        '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-stemcells/providers/Microsoft.Storage/storageAccounts/stemcellvhds',
    });
    expect(c.vhdStorage).toMatchObject({
      kind: 'identity',
      blobServiceUrl: 'https://stemcellvhds.blob.core.windows.net',
    });
  });

  it('parses target regions and adds the gallery region when missing', () => {
    const c = loadConfig({ ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'northeurope=2, eastus' }, 1800);
    expect(c.gallery?.targetRegions).toEqual([
      { name: 'westeurope', replicas: 1 },
      { name: 'northeurope', replicas: 2 },
      { name: 'eastus', replicas: 1 },
    ]);
  });

  it('takes a replica storage type per target region, the default type elsewhere', () => {
    const c = loadConfig(
      {
        ...GALLERY,
        BASM_GALLERY_TARGET_REGIONS: 'westeurope=2:Standard_ZRS,northeurope=1,eastus=3:Premium_LRS',
      },
      1800,
    );
    expect(c.gallery?.targetRegions).toEqual([
      { name: 'westeurope', replicas: 2, storageAccountType: 'Standard_ZRS' },
      { name: 'northeurope', replicas: 1 },
      { name: 'eastus', replicas: 3, storageAccountType: 'Premium_LRS' },
    ]);
    expect(c.gallery?.storageAccountType).toBe('Standard_LRS');
  });

  it('refuses at start a replica storage type Azure would refuse only at publish', () => {
    fails(
      { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'westeurope=1,westcentralus=1:Standard_ZRS' },
      'BASM_GALLERY_TARGET_REGIONS',
      /westcentralus has no zone-redundant storage/,
    );
    fails(
      {
        ...GALLERY,
        BASM_GALLERY_STORAGE_ACCOUNT_TYPE: 'Standard_ZRS',
        BASM_GALLERY_TARGET_REGIONS: 'westcentralus=1',
      },
      'BASM_GALLERY_STORAGE_ACCOUNT_TYPE',
      /westcentralus has no zone-redundant storage/,
    );
    fails(
      { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'westeurope=1:Standard_GRS' },
      'BASM_GALLERY_TARGET_REGIONS',
      /Standard_LRS, Standard_ZRS, Premium_LRS/,
    );
    // ZRS where it is offered, for the default type too.
    const ok = loadConfig({ ...GALLERY, BASM_GALLERY_STORAGE_ACCOUNT_TYPE: 'Standard_ZRS' }, 1800);
    expect(ok.gallery?.targetRegions).toEqual([{ name: 'westeurope', replicas: 1 }]);
  });

  it('refuses one image name or offer for several series', () => {
    const two = 'bosh-azure-hyperv-ubuntu-jammy-go_agent,bosh-azure-hyperv-ubuntu-noble';
    fails(
      { ...GALLERY, BASM_STEMCELL_SERIES: two, BASM_GALLERY_IMAGE_NAME: 'ubuntu' },
      'BASM_GALLERY_IMAGE_NAME',
      /more than one series/,
    );
    fails(
      { ...GALLERY, BASM_STEMCELL_SERIES: two, BASM_GALLERY_OFFER: 'ubuntu' },
      'BASM_GALLERY_OFFER',
      /own image definition/,
    );
    expect(loadConfig({ ...GALLERY, BASM_GALLERY_IMAGE_NAME: 'ubuntu' }, 1800).gallery?.imageName).toBe(
      'ubuntu',
    );
  });

  it('takes identity-based host storage', () => {
    const c = loadConfig(
      {
        AzureWebJobsStorage__accountName: 'hoststore',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: '11111111-2222-4333-8444-555555555555',
      },
      1800,
    );
    expect(c.hostStorage).toEqual({
      kind: 'identity',
      blobServiceUrl: 'https://hoststore.blob.core.windows.net',
      queueServiceUrl: 'https://hoststore.queue.core.windows.net',
      tableServiceUrl: 'https://hoststore.table.core.windows.net',
      clientId: '11111111-2222-4333-8444-555555555555',
    });
    expect(c.vhdStorage).toMatchObject({ kind: 'identity', accountName: 'hoststore' });
  });

  it('configures GitHub notification from a token or a vault', () => {
    const base = {
      BASM_NOTIFY_GITHUB_OWNER: 'acme',
      BASM_NOTIFY_GITHUB_REPO: 'platform',
      BASM_NOTIFY_GITHUB_WORKFLOW: 'stemcell.yml',
      BASM_NOTIFY_GITHUB_REF: 'main',
    };
    const t = loadConfig({ ...base, BASM_NOTIFY_GITHUB_TOKEN: 'ghp_abcdefghijklmnop' }, 1800);
    expect(t.notify.github?.token).toEqual({ kind: 'setting', token: 'ghp_abcdefghijklmnop' });
    const v = loadConfig({ ...base, AZURE_KEY_VAULT_URL: 'https://kv-mirror.vault.azure.net/' }, 1800);
    expect(v.notify.github?.token).toEqual({
      kind: 'keyVault',
      vaultUrl: 'https://kv-mirror.vault.azure.net',
    });
    expect(v.notify.github?.apiUrl).toBe('https://api.github.com');
  });

  it('takes port 0 for the local host: the system picks a free one', () => {
    expect(loadConfig({ FUNCTIONS_PORT: '0' }, 1800).functionsPort).toBe(0);
  });

  it('allows plain http only for loopback bosh.io', () => {
    expect(loadConfig({ BASM_BOSH_IO_URL: 'http://127.0.0.1:8123' }, 1800).boshIoUrl).toBe(
      'http://127.0.0.1:8123',
    );
    expect(loadConfig({ BASM_BOSH_IO_URL: 'http://127.0.0.1:8123' }, 1800).allowedDownloadHosts).toContain(
      '127.0.0.1',
    );
  });
});

describe('loadConfig rejects bad values, naming the setting and the expected form', () => {
  const cases: Array<[string, Env, string, RegExp]> = [
    [
      'zero replicas',
      { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'eastus=zero' },
      'BASM_GALLERY_TARGET_REGIONS',
      /region=replicas/,
    ],
    [
      'replicas out of range',
      { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'eastus=0' },
      'BASM_GALLERY_TARGET_REGIONS',
      /1-100/,
    ],
    [
      'duplicate region',
      { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: 'eastus=1,eastus=2' },
      'BASM_GALLERY_TARGET_REGIONS',
      /region=replicas/,
    ],
    ['schedule nonsense', { BASM_SCHEDULE: 'nonsense' }, 'BASM_SCHEDULE', /six fields/],
    ['five-field cron', { BASM_SCHEDULE: '0 */6 * * *' }, 'BASM_SCHEDULE', /six fields/],
    ['invalid cron field', { BASM_SCHEDULE: '0 0 */6 * * funday' }, 'BASM_SCHEDULE', /NCRONTAB/],
    [
      'series with ../',
      { BASM_STEMCELL_SERIES: 'bosh-azure-hyperv-ubuntu-jammy-go_agent,../etc' },
      'BASM_STEMCELL_SERIES',
      /bosh-azure/,
    ],
    [
      'series with spaces',
      { BASM_STEMCELL_SERIES: 'bosh azure hyperv' },
      'BASM_STEMCELL_SERIES',
      /comma-separated/,
    ],
    [
      'non-Azure series',
      { BASM_STEMCELL_SERIES: 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent' },
      'BASM_STEMCELL_SERIES',
      /Azure/,
    ],
    [
      'http ARM endpoint',
      { AZURE_RESOURCE_MANAGER_ENDPOINT: 'http://management.azure.com' },
      'AZURE_RESOURCE_MANAGER_ENDPOINT',
      /https/,
    ],
    [
      'http ARM endpoint on loopback',
      { AZURE_RESOURCE_MANAGER_ENDPOINT: 'http://127.0.0.1:9' },
      'AZURE_RESOURCE_MANAGER_ENDPOINT',
      /https/,
    ],
    [
      'ARM endpoint not a URL',
      { AZURE_RESOURCE_MANAGER_ENDPOINT: 'management' },
      'AZURE_RESOURCE_MANAGER_ENDPOINT',
      /https/,
    ],
    ['http bosh.io elsewhere', { BASM_BOSH_IO_URL: 'http://bosh.io' }, 'BASM_BOSH_IO_URL', /loopback/],
    [
      'http GitHub API elsewhere',
      { BASM_NOTIFY_GITHUB_API_URL: 'http://ghe.example.com/api/v3' },
      'BASM_NOTIFY_GITHUB_API_URL',
      /https/,
    ],
    ['lease not a number', { BASM_LEASE_SECONDS: 'sixty' }, 'BASM_LEASE_SECONDS', /whole number/],
    ['budget zero', { BASM_INVOCATION_BUDGET_SECONDS: '0' }, 'BASM_INVOCATION_BUDGET_SECONDS', /from 1/],
    ['retention negative', { BASM_RETAIN_VERSIONS: '-1' }, 'BASM_RETAIN_VERSIONS', /whole number/],
    ['keep source not boolean', { BASM_KEEP_SOURCE_VHD: 'maybe' }, 'BASM_KEEP_SOURCE_VHD', /true or false/],
    [
      'notify on failure not boolean',
      { BASM_NOTIFY_ON_FAILURE: 'sometimes' },
      'BASM_NOTIFY_ON_FAILURE',
      /true or false/,
    ],
    [
      'download cache mode',
      { BASM_DOWNLOAD_CACHE: 'sometimes' },
      'BASM_DOWNLOAD_CACHE',
      /always, resume or off/,
    ],
    [
      'checkpoint above the design maximum',
      { BASM_CHECKPOINT_MIB: '512' },
      'BASM_CHECKPOINT_MIB',
      /1 to 256/,
    ],
    ['port out of range', { FUNCTIONS_PORT: '70000' }, 'FUNCTIONS_PORT', /65535/],
    ['negative port', { FUNCTIONS_PORT: '-1' }, 'FUNCTIONS_PORT', /0 to 65535/],
    [
      'gallery half configured',
      { AZURE_SUBSCRIPTION_ID: GALLERY.AZURE_SUBSCRIPTION_ID },
      'AZURE_RESOURCE_GROUP',
      /gallery target/,
    ],
    [
      'subscription not a GUID',
      { ...GALLERY, AZURE_SUBSCRIPTION_ID: 'my-sub' },
      'AZURE_SUBSCRIPTION_ID',
      /GUID/,
    ],
    ['region with spaces', { ...GALLERY, AZURE_REGION: 'West Europe' }, 'AZURE_REGION', /region name/],
    [
      'storage type',
      { ...GALLERY, BASM_GALLERY_STORAGE_ACCOUNT_TYPE: 'Premium_ZRS' },
      'BASM_GALLERY_STORAGE_ACCOUNT_TYPE',
      /Standard_LRS/,
    ],
    ['container name', { BASM_STORAGE_CONTAINER: 'Stem_Cells' }, 'BASM_STORAGE_CONTAINER', /container/],
    [
      'account name',
      { AZURE_STORAGE_ACCOUNT_NAME: 'Bad-Name' },
      'AZURE_STORAGE_ACCOUNT_NAME',
      /account name/,
    ],
    ['managed identity id', { AZURE_MANAGED_IDENTITY_ID: 'mi' }, 'AZURE_MANAGED_IDENTITY_ID', /GUID/],
    [
      'allowed hosts',
      { BASM_ALLOWED_DOWNLOAD_HOSTS: 'storage.googleapis.com,evil host' },
      'BASM_ALLOWED_DOWNLOAD_HOSTS',
      /host names/,
    ],
    [
      'token without target',
      { BASM_NOTIFY_GITHUB_TOKEN: 'ghp_abcdefghijklmnop', BASM_NOTIFY_GITHUB_OWNER: 'acme' },
      'BASM_NOTIFY_GITHUB_REPO, BASM_NOTIFY_GITHUB_WORKFLOW, BASM_NOTIFY_GITHUB_REF',
      /GitHub token/,
    ],
    ['vault over http', { AZURE_KEY_VAULT_URL: 'http://kv.vault.azure.net' }, 'AZURE_KEY_VAULT_URL', /https/],
    [
      'storage id form',
      { ...GALLERY, AZURE_STORAGE_ACCOUNT_ID: 'stemcellvhds' },
      'AZURE_STORAGE_ACCOUNT_ID',
      /storageAccounts/,
    ],
  ];
  it.each(cases)('%s', (_name, env, setting, expected) => fails(env, setting, expected));

  it('never echoes a connection string it rejects', () => {
    let message = '';
    try {
      loadConfig({ BASM_STORAGE_CONNECTION_STRING: 'SharedAccessSignature=sv=2020&sig=SECRETSIG' }, 1800);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toContain('BASM_STORAGE_CONNECTION_STRING');
    expect(message).not.toContain('SECRETSIG');
  });
});
