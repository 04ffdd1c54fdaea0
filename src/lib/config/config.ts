/**
 * Every setting of the app, parsed once into one frozen object. This is the only module that reads
 * process.env; a bad value throws ConfigError naming the setting and the expected form.
 */
import { ncrontabProblem } from './ncrontab';
import { MirrorError } from '../core/errors';
import { DEV_STORAGE, devStorageConnectionString } from './dev-storage';
import { ZRS_REGIONS } from './zrs-regions';
import { parseTimeSpan, readHostJson } from './host-json';
import { isAzureSeries } from '../core/names';

export class ConfigError extends MirrorError {
  readonly setting: string;
  constructor(setting: string, expected: string, value?: string) {
    const shown =
      value === undefined ? '' : ` (got "${value.length > 80 ? value.slice(0, 80) + '…' : value}")`;
    super('CONFIG_INVALID', `Setting ${setting} is invalid${shown}: expected ${expected}`);
    this.name = 'ConfigError';
    this.setting = setting;
  }
}

export type HostStorage =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      blobServiceUrl: string;
      queueServiceUrl: string;
      tableServiceUrl: string;
      clientId: string | undefined;
    };

export type VhdStorage =
  | { kind: 'connectionString'; connectionString: string; accountName: string }
  | { kind: 'identity'; blobServiceUrl: string; accountName: string; clientId: string | undefined };

export type GalleryStorageAccountType = 'Standard_LRS' | 'Standard_ZRS' | 'Premium_LRS';

export interface TargetRegion {
  readonly name: string;
  readonly replicas: number;
  /** This region's replica storage; undefined: BASM_GALLERY_STORAGE_ACCOUNT_TYPE. */
  readonly storageAccountType?: GalleryStorageAccountType;
}

export interface GalleryConfig {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly region: string;
  readonly galleryName: string;
  /** Overrides of the CPI-style naming; undefined means "derive from stemcell.MF". */
  readonly publisher: string;
  readonly offer: string | undefined;
  readonly sku: string | undefined;
  readonly imageName: string | undefined;
  readonly targetRegions: readonly TargetRegion[];
  readonly storageAccountType: GalleryStorageAccountType;
  /** ARM id of the storage account holding the staged VHDs. */
  readonly storageAccountId: string;
}

export type GithubTokenSource = { kind: 'keyVault'; vaultUrl: string } | { kind: 'setting'; token: string };

export interface GithubNotifyConfig {
  readonly apiUrl: string;
  readonly owner: string;
  readonly repo: string;
  readonly workflow: string;
  readonly ref: string;
  readonly token: GithubTokenSource;
}

export interface Config {
  readonly hostStorage: HostStorage;
  readonly vhdStorage: VhdStorage;
  readonly container: string;
  readonly series: readonly string[];
  readonly schedule: string;
  readonly boshIoUrl: string;
  readonly allowedDownloadHosts: readonly string[];
  readonly gallery: GalleryConfig | undefined;
  readonly armEndpoint: string;
  readonly authorityHost: string | undefined;
  readonly managedIdentityClientId: string | undefined;
  readonly retainVersions: number;
  readonly backfillVersions: number;
  readonly keepSourceVhd: boolean;
  readonly invocationBudgetSeconds: number;
  readonly leaseSeconds: number;
  /**
   * Keep the compressed download in a staging block blob: on every pass ('always'), only once a
   * pass was interrupted ('resume'), or never ('off').
   */
  readonly downloadCache: 'always' | 'resume' | 'off';
  /** VHD bytes (MiB) between two checkpoints of a transfer; at most 256 (DESIGN §2). */
  readonly checkpointMiB: number;
  /** Seconds between two looks at a running gallery operation. */
  readonly galleryPollSeconds: number;
  /** Of the local host; 0 lets the system pick a free one (its listing shows which). */
  readonly functionsPort: number;
  readonly notify: { readonly github: GithubNotifyConfig | undefined; readonly onFailure: boolean };
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Hosts bosh.io has served stemcell tarballs from. */
export const BOSH_IO_DOWNLOAD_HOSTS = [
  'storage.googleapis.com',
  'bosh-core-stemcells.s3.amazonaws.com',
  's3.amazonaws.com',
  'bosh.io',
];

const DEFAULT_FUNCTION_TIMEOUT_SECONDS = 30 * 60;
const AZURITE_CONNECTION_STRING = devStorageConnectionString();

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const RESOURCE_GROUP = /^[-\w._()]{1,90}$/;
const GALLERY_NAME = /^[A-Za-z0-9][A-Za-z0-9._]{0,78}[A-Za-z0-9]$/;
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$/;
const REGION = /^[a-z][a-z0-9]{1,40}$/;
const CONTAINER = /^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$/;
const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const GITHUB_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
const STORAGE_ACCOUNT_ID =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/[a-z0-9]{3,24}$/i;

/** Loopback hosts may be reached over plain http (local fakes, Azurite); everything else needs https. */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

class Reader {
  constructor(private readonly env: Env) {}

  raw(name: string): string | undefined {
    const v = this.env[name];
    if (v === undefined) return undefined;
    const t = v.trim();
    return t === '' ? undefined : t;
  }

  string(name: string, pattern: RegExp, expected: string): string | undefined {
    const v = this.raw(name);
    if (v !== undefined && !pattern.test(v)) throw new ConfigError(name, expected, v);
    return v;
  }

  int(name: string, def: number, min: number, max: number): number {
    const v = this.raw(name);
    if (v === undefined) return def;
    if (!/^\d+$/.test(v) || Number(v) < min || Number(v) > max) {
      throw new ConfigError(name, `a whole number from ${min} to ${max}`, v);
    }
    return Number(v);
  }

  bool(name: string, def: boolean): boolean {
    const v = this.raw(name)?.toLowerCase();
    if (v === undefined) return def;
    if (['true', '1', 'yes'].includes(v)) return true;
    if (['false', '0', 'no'].includes(v)) return false;
    throw new ConfigError(name, 'true or false', v);
  }

  /** An absolute URL without query or fragment; https unless `allowLoopbackHttp` and the host is loopback. */
  url(name: string, def: string | undefined, allowLoopbackHttp: boolean): string | undefined {
    const v = this.raw(name) ?? def;
    if (v === undefined) return undefined;
    const expected = allowLoopbackHttp
      ? 'an https:// URL (http:// only for a loopback host)'
      : 'an https:// URL without query or fragment';
    let u: URL;
    try {
      u = new URL(v);
    } catch {
      throw new ConfigError(name, expected, v);
    }
    const httpOk = allowLoopbackHttp && u.protocol === 'http:' && isLoopbackHost(u.hostname);
    if ((u.protocol !== 'https:' && !httpOk) || u.search !== '' || u.hash !== '' || u.username !== '') {
      throw new ConfigError(name, expected, v);
    }
    return u.toString().replace(/\/+$/, '');
  }
}

function parseSeries(r: Reader): string[] {
  const name = 'BASM_STEMCELL_SERIES';
  const v = r.raw(name) ?? 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
  const list = v.split(',').map((s) => s.trim());
  const expected = 'comma-separated bosh.io Azure series such as bosh-azure-hyperv-ubuntu-jammy-go_agent';
  if (list.some((s) => !isAzureSeries(s))) throw new ConfigError(name, expected, v);
  return [...new Set(list)];
}

/** Azure Functions NCRONTAB: six fields, seconds first. */
function parseSchedule(r: Reader): string {
  const name = 'BASM_SCHEDULE';
  const v = r.raw(name) ?? '0 0 */6 * * *';
  const expected = 'an NCRONTAB expression with six fields, e.g. "0 0 */6 * * *"';
  const problem = ncrontabProblem(v);
  if (problem !== undefined) throw new ConfigError(name, `${expected}: ${problem}`, v);
  return v;
}

const STORAGE_ACCOUNT_TYPES: readonly GalleryStorageAccountType[] = [
  'Standard_LRS',
  'Standard_ZRS',
  'Premium_LRS',
];

function parseStorageAccountType(
  name: string,
  value: string,
  whole: string = value,
): GalleryStorageAccountType {
  const t = STORAGE_ACCOUNT_TYPES.find((x) => x === value);
  if (t === undefined) throw new ConfigError(name, STORAGE_ACCOUNT_TYPES.join(', '), whole);
  return t;
}

/**
 * `region=replicas[:storageAccountType],…` (DESIGN §4), e.g. `westeurope=2:Standard_ZRS,northeurope=1`;
 * the gallery's own region is added with one replica when missing (Azure requires it). A region
 * whose replicas would be Standard_ZRS must offer zone-redundant storage (ZRS_REGIONS).
 */
function parseTargetRegions(
  r: Reader,
  homeRegion: string,
  defaultType: GalleryStorageAccountType,
): TargetRegion[] {
  const name = 'BASM_GALLERY_TARGET_REGIONS';
  const v = r.raw(name);
  const expected =
    'region=replicas[:storageAccountType] items separated by commas, e.g. "westeurope=2:Standard_ZRS,northeurope=1" (replicas 1-100)';
  const regions: TargetRegion[] = [];
  for (const item of v === undefined ? [] : v.split(',')) {
    const m = /^\s*([a-z][a-z0-9]{1,40})\s*(?:=\s*(\d{1,3})\s*(?::\s*([A-Za-z_]+))?)?\s*$/.exec(item);
    const replicas = m?.[2] === undefined ? 1 : Number(m[2]);
    if (!m?.[1] || replicas < 1 || replicas > 100 || regions.some((x) => x.name === m[1])) {
      throw new ConfigError(name, expected, v);
    }
    const type = m[3] === undefined ? undefined : parseStorageAccountType(name, m[3], v);
    regions.push({ name: m[1], replicas, ...(type ? { storageAccountType: type } : {}) });
  }
  // Azure requires the gallery's own region among the targets.
  if (!regions.some((x) => x.name === homeRegion)) regions.unshift({ name: homeRegion, replicas: 1 });
  for (const t of regions) {
    if ((t.storageAccountType ?? defaultType) === 'Standard_ZRS' && !ZRS_REGIONS.has(t.name)) {
      throw new ConfigError(
        t.storageAccountType ? name : 'BASM_GALLERY_STORAGE_ACCOUNT_TYPE',
        `a replica storage type the region offers (${t.name} has no zone-redundant storage in Azure Storage's list of ZRS regions; use Standard_LRS there)`,
        t.storageAccountType ? v : 'Standard_ZRS',
      );
    }
  }
  return regions;
}

function connectionStringPart(cs: string, key: string): string | undefined {
  for (const part of cs.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim().toLowerCase() === key.toLowerCase()) return part.slice(i + 1).trim();
  }
  return undefined;
}

function checkConnectionString(name: string, cs: string): string {
  if (cs === DEV_STORAGE) return AZURITE_CONNECTION_STRING;
  const ok =
    connectionStringPart(cs, 'AccountName') !== undefined || connectionStringPart(cs, 'BlobEndpoint');
  // Never echo a connection string: it carries a key.
  if (!ok) throw new ConfigError(name, 'a storage connection string with AccountName or BlobEndpoint');
  return cs;
}

function accountNameOf(cs: string): string {
  const explicit = connectionStringPart(cs, 'AccountName');
  if (explicit) return explicit;
  const blob = connectionStringPart(cs, 'BlobEndpoint') ?? '';
  try {
    const u = new URL(blob);
    return isLoopbackHost(u.hostname) ? (u.pathname.split('/')[1] ?? '') : (u.hostname.split('.')[0] ?? '');
  } catch {
    return '';
  }
}

function parseHostStorage(r: Reader): HostStorage {
  const cs = r.raw('AzureWebJobsStorage');
  if (cs !== undefined)
    return { kind: 'connectionString', connectionString: checkConnectionString('AzureWebJobsStorage', cs) };
  const account = r.string('AzureWebJobsStorage__accountName', ACCOUNT_NAME, 'a storage account name');
  const service = (kind: string) =>
    r.url(
      `AzureWebJobsStorage__${kind}ServiceUri`,
      account && `https://${account}.${kind}.core.windows.net`,
      true,
    );
  const blob = service('blob');
  const queue = service('queue');
  const table = service('table');
  if (blob === undefined || queue === undefined || table === undefined) {
    return { kind: 'connectionString', connectionString: AZURITE_CONNECTION_STRING };
  }
  return {
    kind: 'identity',
    blobServiceUrl: blob,
    queueServiceUrl: queue,
    tableServiceUrl: table,
    clientId: r.string('AzureWebJobsStorage__clientId', GUID, 'a client id (GUID)'),
  };
}

function parseVhdStorage(r: Reader, host: HostStorage, clientId: string | undefined): VhdStorage {
  const cs = r.raw('BASM_STORAGE_CONNECTION_STRING');
  if (cs !== undefined) {
    const connectionString = checkConnectionString('BASM_STORAGE_CONNECTION_STRING', cs);
    return { kind: 'connectionString', connectionString, accountName: accountNameOf(connectionString) };
  }
  const account = r.string(
    'AZURE_STORAGE_ACCOUNT_NAME',
    ACCOUNT_NAME,
    'a storage account name (3-24 lowercase letters and digits)',
  );
  if (account !== undefined) {
    return {
      kind: 'identity',
      blobServiceUrl: `https://${account}.blob.core.windows.net`,
      accountName: account,
      clientId,
    };
  }
  if (host.kind === 'connectionString') {
    return {
      kind: 'connectionString',
      connectionString: host.connectionString,
      accountName: accountNameOf(host.connectionString),
    };
  }
  const accountName = new URL(host.blobServiceUrl).hostname.split('.')[0] ?? '';
  return {
    kind: 'identity',
    blobServiceUrl: host.blobServiceUrl,
    accountName,
    clientId: host.clientId ?? clientId,
  };
}

/**
 * Overrides that name one image definition, or one identity, for every series: with two series
 * jammy and noble (both numbered 1.x) would share one definition, their versions colliding and
 * retention and excludeFromLatest mixing series. Refused at start, before any transfer.
 */
const SINGLE_SERIES_OVERRIDES = ['BASM_GALLERY_IMAGE_NAME', 'BASM_GALLERY_OFFER'] as const;

function checkSingleSeriesOverrides(r: Reader, series: readonly string[]): void {
  if (series.length < 2) return;
  for (const name of SINGLE_SERIES_OVERRIDES) {
    if (r.raw(name) !== undefined) {
      throw new ConfigError(
        name,
        `to be unset when BASM_STEMCELL_SERIES names more than one series (${series.join(', ')}): each series needs its own image definition`,
        r.raw(name),
      );
    }
  }
}

function parseGallery(r: Reader, vhd: VhdStorage): GalleryConfig | undefined {
  const names = [
    'AZURE_SUBSCRIPTION_ID',
    'AZURE_RESOURCE_GROUP',
    'AZURE_REGION',
    'AZURE_GALLERY_NAME',
  ] as const;
  const given = names.filter((n) => r.raw(n) !== undefined);
  if (given.length === 0) return undefined;
  if (given.length < names.length) {
    const missing = names.filter((n) => r.raw(n) === undefined);
    throw new ConfigError(
      missing.join(', '),
      `to be set together with ${given.join(', ')} (the gallery target)`,
    );
  }
  const subscriptionId = r.string('AZURE_SUBSCRIPTION_ID', GUID, 'a subscription id (GUID)')!;
  const resourceGroup = r.string('AZURE_RESOURCE_GROUP', RESOURCE_GROUP, 'a resource group name')!;
  const region = r.string('AZURE_REGION', REGION, 'an Azure region name such as westeurope')!;
  const galleryName = r.string(
    'AZURE_GALLERY_NAME',
    GALLERY_NAME,
    'a gallery name (letters, digits, dots, underscores)',
  )!;
  const storageAccountId =
    r.string(
      'AZURE_STORAGE_ACCOUNT_ID',
      STORAGE_ACCOUNT_ID,
      'an ARM storage account id /subscriptions/…/storageAccounts/<name>',
    ) ??
    `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Storage/storageAccounts/${vhd.accountName}`;
  const type = parseStorageAccountType(
    'BASM_GALLERY_STORAGE_ACCOUNT_TYPE',
    r.raw('BASM_GALLERY_STORAGE_ACCOUNT_TYPE') ?? 'Standard_LRS',
  );
  const ident =
    'letters, digits, dots, dashes, underscores (2-80, starting and ending with a letter or digit)';
  return {
    subscriptionId,
    resourceGroup,
    region,
    galleryName,
    publisher: r.string('BASM_GALLERY_PUBLISHER', IMAGE_NAME, ident) ?? 'bosh',
    offer: r.string('BASM_GALLERY_OFFER', IMAGE_NAME, ident),
    sku: r.string('BASM_GALLERY_SKU', IMAGE_NAME, ident),
    imageName: r.string('BASM_GALLERY_IMAGE_NAME', IMAGE_NAME, ident),
    targetRegions: parseTargetRegions(r, region, type),
    storageAccountType: type,
    storageAccountId,
  };
}

function parseGithub(r: Reader): GithubNotifyConfig | undefined {
  const token = r.raw('BASM_NOTIFY_GITHUB_TOKEN');
  const vaultUrl = r.url('AZURE_KEY_VAULT_URL', undefined, false);
  const apiUrl = r.url('BASM_NOTIFY_GITHUB_API_URL', 'https://api.github.com', true)!;
  if (token === undefined && vaultUrl === undefined) return undefined;
  const fields = {
    owner: 'BASM_NOTIFY_GITHUB_OWNER',
    repo: 'BASM_NOTIFY_GITHUB_REPO',
    workflow: 'BASM_NOTIFY_GITHUB_WORKFLOW',
    ref: 'BASM_NOTIFY_GITHUB_REF',
  } as const;
  const missing = Object.values(fields).filter((n) => r.raw(n) === undefined);
  if (missing.length > 0) {
    throw new ConfigError(
      missing.join(', '),
      'to be set when a GitHub token is configured (owner, repo, workflow file or id, git ref)',
    );
  }
  const tokenSource: GithubTokenSource =
    token !== undefined ? { kind: 'setting', token } : { kind: 'keyVault', vaultUrl: vaultUrl! };
  return {
    apiUrl,
    owner: r.string(fields.owner, GITHUB_NAME, 'a GitHub user or organisation')!,
    repo: r.string(fields.repo, GITHUB_NAME, 'a GitHub repository name')!,
    workflow: r.string(
      fields.workflow,
      /^[A-Za-z0-9_.-]{1,200}$/,
      'a workflow file name (deploy.yml) or id',
    )!,
    ref: r.string(fields.ref, /^[A-Za-z0-9_./-]{1,250}$/, 'a branch or tag name')!,
    token: tokenSource,
  };
}

function parseAllowedHosts(r: Reader, boshIoUrl: string): string[] {
  const name = 'BASM_ALLOWED_DOWNLOAD_HOSTS';
  const v = r.raw(name);
  const own = new URL(boshIoUrl).hostname.replace(/^\[|\]$/g, '');
  if (v === undefined) return [...new Set([...BOSH_IO_DOWNLOAD_HOSTS, own])];
  const hosts = v.split(',').map((h) => h.trim().toLowerCase());
  if (hosts.some((h) => !HOSTNAME.test(h))) throw new ConfigError(name, 'comma-separated host names', v);
  return [...new Set([...hosts, own])];
}

function parseDownloadCache(r: Reader): Config['downloadCache'] {
  const v = r.raw('BASM_DOWNLOAD_CACHE') ?? 'resume';
  if (v !== 'always' && v !== 'resume' && v !== 'off') {
    throw new ConfigError('BASM_DOWNLOAD_CACHE', 'always, resume or off', v);
  }
  return v;
}

/** Seconds of host.json's functionTimeout, looked up beside the app (the default when unset or unbounded). */
export function functionTimeoutSeconds(startDir: string = __dirname): number {
  const timeout = (readHostJson(startDir) as { functionTimeout?: unknown } | undefined)?.functionTimeout;
  if (typeof timeout !== 'string') return DEFAULT_FUNCTION_TIMEOUT_SECONDS;
  try {
    return Math.floor(parseTimeSpan(timeout) / 1000);
  } catch {
    return DEFAULT_FUNCTION_TIMEOUT_SECONDS;
  }
}

/** The work budget left to one invocation: the timeout less a margin for checkpointing and enqueueing. */
function defaultBudget(timeoutSeconds: number): number {
  return Math.max(30, timeoutSeconds - Math.max(60, Math.ceil(timeoutSeconds * 0.1)));
}

export function loadConfig(env: Env = process.env, timeoutSeconds = functionTimeoutSeconds()): Config {
  const r = new Reader(env);
  const boshIoUrl = r.url('BASM_BOSH_IO_URL', 'https://bosh.io', true)!;
  const managedIdentityClientId = r.string('AZURE_MANAGED_IDENTITY_ID', GUID, 'a client id (GUID)');
  const hostStorage = parseHostStorage(r);
  const vhdStorage = parseVhdStorage(r, hostStorage, managedIdentityClientId);
  const series = parseSeries(r);
  checkSingleSeriesOverrides(r, series);
  const config: Config = {
    hostStorage,
    vhdStorage,
    container:
      r.string(
        'BASM_STORAGE_CONTAINER',
        CONTAINER,
        'a blob container name (3-63 lowercase letters, digits, dashes)',
      ) ?? 'stemcell',
    series,
    schedule: parseSchedule(r),
    boshIoUrl,
    allowedDownloadHosts: parseAllowedHosts(r, boshIoUrl),
    gallery: parseGallery(r, vhdStorage),
    armEndpoint: r.url('AZURE_RESOURCE_MANAGER_ENDPOINT', 'https://management.azure.com', false)!,
    authorityHost: r.url('AZURE_AUTHORITY_HOST', undefined, false),
    managedIdentityClientId,
    retainVersions: r.int('BASM_RETAIN_VERSIONS', 0, 0, 1000),
    backfillVersions: r.int('BASM_BACKFILL_VERSIONS', 1, 1, 40),
    keepSourceVhd: r.bool('BASM_KEEP_SOURCE_VHD', false),
    invocationBudgetSeconds: r.int(
      'BASM_INVOCATION_BUDGET_SECONDS',
      defaultBudget(timeoutSeconds),
      1,
      86_400,
    ),
    leaseSeconds: r.int('BASM_LEASE_SECONDS', 60, 2, 3600),
    checkpointMiB: r.int('BASM_CHECKPOINT_MIB', 256, 1, 256),
    downloadCache: parseDownloadCache(r),
    galleryPollSeconds: r.int('BASM_GALLERY_POLL_SECONDS', 30, 1, 3600),
    functionsPort: r.int('FUNCTIONS_PORT', 7071, 0, 65_535),
    notify: { github: parseGithub(r), onFailure: r.bool('BASM_NOTIFY_ON_FAILURE', true) },
  };
  return deepFreeze(config);
}

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o as object)) deepFreeze(v);
  }
  return o;
}

let cached: Config | undefined;

/** The process-wide configuration, parsed on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}

/** For tests and the local host, which change the environment between runs. */
export function resetConfig(): void {
  cached = undefined;
}

/** A view of the configuration that is safe to log: no tokens, no keys. */
export function describeConfig(c: Config): Record<string, unknown> {
  return {
    series: c.series,
    schedule: c.schedule,
    boshIoUrl: c.boshIoUrl,
    gallery: c.gallery ? `${c.gallery.resourceGroup}/${c.gallery.galleryName}` : 'none (jobs end staged)',
    targetRegions: c.gallery?.targetRegions
      .map((t) => `${t.name}=${t.replicas}:${t.storageAccountType ?? c.gallery!.storageAccountType}`)
      .join(','),
    vhdStorage: `${c.vhdStorage.accountName}/${c.container}`,
    notify: c.notify.github
      ? `${c.notify.github.owner}/${c.notify.github.repo} ${c.notify.github.workflow}`
      : 'off',
    invocationBudgetSeconds: c.invocationBudgetSeconds,
    leaseSeconds: c.leaseSeconds,
    retainVersions: c.retainVersions,
  };
}
