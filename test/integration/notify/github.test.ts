/**
 * The notifier against the local GitHub and Key Vault fakes, through the real SecretClient and
 * ManagedIdentityCredential. Every log line and thrown error of the file is kept, and the last test
 * proves no token ever shows up in them.
 */
import { inspect } from 'node:util';
import { ManagedIdentityCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config, type Env } from '../../../src/lib/config/config';
import { MirrorError } from '../../../src/lib/core/errors';
import { createLogger, redact, type Logger } from '../../../src/lib/core/log';
import {
  createNotifier,
  type Notifier,
  type NotifierOptions,
  type NotifyEvent,
} from '../../../src/lib/notify/github';
import { MIRROR_WORKFLOW_INPUTS, startFakeGithub, type FakeGithub } from '../../fakes/github';
import { startFakeKeyVault, type FakeKeyVault } from '../../fakes/keyvault';
import { closedPort } from '../../support/ports';

const SETTING_TOKEN = 'ghp_settingToken0123456789abcdefghijklmn';
const VAULT_TOKEN_A = 'ghp_vaultTokenA0123456789abcdefghijklmno';
const VAULT_TOKEN_B = 'ghp_vaultTokenB0123456789abcdefghijklmno';
const SUBSCRIPTION = '00000000-1111-2222-3333-444444444444';

const DECLARED_INPUTS = MIRROR_WORKFLOW_INPUTS;

const PUBLISHED: NotifyEvent = {
  kind: 'published',
  series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
  version: '1.830',
  galleryImageName: 'bosh-azure-hyperv-ubuntu-jammy-go_agent-gen2',
  galleryImageVersion: '1.830.0',
  galleryImageVersionId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg-stemcells/providers/Microsoft.Compute/galleries/stemcells/images/x/versions/1.830.0`,
};

// Short back-off, but a timeout no loaded machine reaches on loopback: a request timed out while
// its answer was on the way is sent again, and every count of requests below would be one off.
const FAST: NotifierOptions = { attempts: 4, baseDelayMs: 5, maxDelayMs: 50, timeoutMs: 10_000 };
/** For the one test of a request that never gets an answer. */
const HANG_TIMEOUT_MS = 300;

const lines: string[] = [];
const thrown: unknown[] = [];
const log: Logger = createLogger((_level, line) => lines.push(line));

let gh: FakeGithub;
let kv: FakeKeyVault;

beforeAll(async () => {
  gh = await startFakeGithub({
    owner: 'acme',
    repo: 'platform',
    tokens: [SETTING_TOKEN],
    refs: ['main'],
    workflows: { 'stemcell.yml': { inputs: DECLARED_INPUTS }, 'narrow.yml': { inputs: ['stemcell_series'] } },
  });
  kv = await startFakeKeyVault({ secrets: { 'github-token': VAULT_TOKEN_A } });
  // ManagedIdentityCredential finds the App Service endpoint through these, as in Azure.
  process.env.IDENTITY_ENDPOINT = kv.identityEndpoint;
  process.env.IDENTITY_HEADER = kv.identityHeader;
});

afterAll(async () => {
  delete process.env.IDENTITY_ENDPOINT;
  delete process.env.IDENTITY_HEADER;
  await gh.close();
  await kv.close();
});

beforeEach(() => {
  gh.clearFaults();
});

function config(extra: Env = {}, gallery = true): Config {
  return loadConfig(
    {
      BASM_NOTIFY_GITHUB_API_URL: gh.url,
      BASM_NOTIFY_GITHUB_OWNER: 'acme',
      BASM_NOTIFY_GITHUB_REPO: 'platform',
      BASM_NOTIFY_GITHUB_WORKFLOW: 'stemcell.yml',
      BASM_NOTIFY_GITHUB_REF: 'main',
      ...(gallery
        ? {
            AZURE_SUBSCRIPTION_ID: SUBSCRIPTION,
            AZURE_RESOURCE_GROUP: 'rg-stemcells',
            AZURE_REGION: 'westeurope',
            AZURE_GALLERY_NAME: 'stemcells',
          }
        : {}),
      ...extra,
    },
    600,
  );
}

function notifier(c: Config, options: NotifierOptions = FAST): Notifier {
  const n = createNotifier(c, new ManagedIdentityCredential(), log, options);
  if (!n) throw new Error('expected a notifier');
  return n;
}

const settingConfig = (extra: Env = {}, gallery = true) =>
  config({ BASM_NOTIFY_GITHUB_TOKEN: SETTING_TOKEN, ...extra }, gallery);
const vaultConfig = (extra: Env = {}) => config({ AZURE_KEY_VAULT_URL: kv.url, ...extra });

/** Runs `p` and returns what it threw, keeping it for the leak check. */
async function failure(p: Promise<unknown>): Promise<MirrorError> {
  try {
    await p;
  } catch (e) {
    thrown.push(e);
    expect(e).toBeInstanceOf(MirrorError);
    return e as MirrorError;
  }
  throw new Error('expected a failure');
}

const posts = () => gh.requests.filter((r) => r.method === 'POST').length;

describe('createNotifier', () => {
  it('is undefined when no GitHub token is configured', () => {
    const c = loadConfig({}, 600);
    expect(createNotifier(c, new ManagedIdentityCredential(), log)).toBeUndefined();
  });
});

describe('dispatch', () => {
  it('sends exactly one dispatch with the right URL, headers and gallery inputs', async () => {
    const before = gh.dispatches.length;
    await notifier(settingConfig()).notify(PUBLISHED);
    const sent = gh.dispatches.slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toEqual({
      prefix: '',
      owner: 'acme',
      repo: 'platform',
      workflow: 'stemcell.yml',
      ref: 'main',
      token: SETTING_TOKEN,
      accept: 'application/vnd.github+json',
      apiVersion: '2022-11-28',
      userAgent: expect.stringMatching(/\S/),
      inputs: {
        gallery_name: 'stemcells',
        gallery_image_name: 'bosh-azure-hyperv-ubuntu-jammy-go_agent-gen2',
        gallery_image_version: '1.830.0',
        gallery_subscription_id: SUBSCRIPTION,
        gallery_resource_group: 'rg-stemcells',
        stemcell_series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
        stemcell_version: '1.830',
      },
    });
    expect(lines.some((l) => l.includes('"event":"notify.sent"'))).toBe(true);
  });

  it('reaches GitHub Enterprise under /api/v3', async () => {
    const before = gh.dispatches.length;
    await notifier(settingConfig({ BASM_NOTIFY_GITHUB_API_URL: gh.enterpriseUrl })).notify(PUBLISHED);
    expect(gh.dispatches.slice(before).map((d) => [d.prefix, d.workflow])).toEqual([
      ['/api/v3', 'stemcell.yml'],
    ]);
  });

  it('reports a failure of a staged job without gallery inputs', async () => {
    const before = gh.dispatches.length;
    await notifier(settingConfig({}, false)).notify({
      kind: 'failed',
      series: 'bosh-azure-hyperv-ubuntu-noble',
      version: '1.10',
      error: { code: 'CHECKSUM_MISMATCH', message: 'sha256 differs' },
    });
    expect(gh.dispatches.slice(before).map((d) => d.inputs)).toEqual([
      {
        stemcell_series: 'bosh-azure-hyperv-ubuntu-noble',
        stemcell_version: '1.10',
        status: 'failed',
        error_code: 'CHECKSUM_MISMATCH',
      },
    ]);
  });
});

describe('token from Key Vault', () => {
  beforeEach(() => {
    kv.setSecret('github-token', VAULT_TOKEN_A);
    gh.rotateTokens([VAULT_TOKEN_A, SETTING_TOKEN]);
  });

  it('reads the secret through the challenge flow with a managed-identity token and uses it', async () => {
    const start = kv.requests.length;
    const before = gh.dispatches.length;
    await notifier(vaultConfig()).notify(PUBLISHED);
    expect(kv.requests.slice(start).map((r) => [r.path, r.authenticated, r.status])).toEqual([
      // The SDK asks for the latest version with an empty version segment.
      ['/secrets/github-token/', false, 401],
      ['/secrets/github-token/', true, 200],
    ]);
    expect(kv.issued.some((t) => t.resource === 'https://vault.azure.net')).toBe(true);
    expect(gh.dispatches.slice(before).map((d) => d.token)).toEqual([VAULT_TOKEN_A]);
  });

  it('caches the token: one vault read for several dispatches', async () => {
    const reads = kv.secretReads('github-token');
    const before = gh.dispatches.length;
    const n = notifier(vaultConfig());
    await n.notify(PUBLISHED);
    await n.notify({ ...PUBLISHED, version: '1.831' });
    await Promise.all([
      n.notify({ ...PUBLISHED, version: '1.832' }),
      n.notify({ ...PUBLISHED, version: '1.833' }),
    ]);
    expect(gh.dispatches.length - before).toBe(4);
    expect(kv.secretReads('github-token') - reads).toBe(1);
  });

  it('picks up a rotated secret after a 401 without a restart', async () => {
    const n = notifier(vaultConfig());
    await n.notify(PUBLISHED);
    const reads = kv.secretReads('github-token');
    const before = gh.dispatches.length;
    kv.setSecret('github-token', VAULT_TOKEN_B);
    gh.rotateTokens([VAULT_TOKEN_B]);
    await n.notify({ ...PUBLISHED, version: '1.831' });
    expect(kv.secretReads('github-token') - reads).toBe(1);
    expect(gh.dispatches.slice(before).map((d) => d.token)).toEqual([VAULT_TOKEN_B]);
    expect(lines.some((l) => l.includes('"event":"notify.token-rejected"'))).toBe(true);
  });

  it('gives up after one re-read when the vault still holds the revoked token', async () => {
    const n = notifier(vaultConfig());
    await n.notify(PUBLISHED);
    gh.rotateTokens([VAULT_TOKEN_B]);
    const reads = kv.secretReads('github-token');
    const sent = posts();
    const e = await failure(n.notify(PUBLISHED));
    expect(e.code).toBe('NOTIFY_FAILED');
    expect(e.message).toMatch(/401/);
    expect(kv.secretReads('github-token') - reads).toBe(1);
    expect(posts() - sent).toBe(1);
  });

  it('fails with NOTIFY_FAILED, transient, when the secret is missing', async () => {
    const sent = posts();
    // A second vault without the secret; it trusts the managed-identity tokens of the first.
    const empty = await startFakeKeyVault({ secrets: {}, validTokens: kv.issued.map((t) => t.token) });
    try {
      const miss = await failure(notifier(config({ AZURE_KEY_VAULT_URL: empty.url })).notify(PUBLISHED));
      expect(miss.code).toBe('NOTIFY_FAILED');
      expect(miss.permanent).toBe(false);
      expect(miss.message).toMatch(/github-token.*404.*SecretNotFound/);
      expect(posts() - sent).toBe(0);
    } finally {
      await empty.close();
    }
  });
});

describe('Key Vault unreachable', () => {
  it('fails with NOTIFY_FAILED, transient, and sends nothing', { timeout: 60_000 }, async () => {
    const sent = posts();
    const port = await closedPort();
    const e = await failure(
      notifier(config({ AZURE_KEY_VAULT_URL: `https://127.0.0.1:${port}` })).notify(PUBLISHED),
    );
    expect(e.code).toBe('NOTIFY_FAILED');
    expect(e.permanent).toBe(false);
    expect(e.message).toMatch(/github-token could not be read/);
    expect(posts() - sent).toBe(0);
  });
});

describe('retries', () => {
  it('retries 5xx and then succeeds', async () => {
    const sent = posts();
    const before = gh.dispatches.length;
    gh.failNext(2, 500);
    await notifier(settingConfig()).notify(PUBLISHED);
    expect(posts() - sent).toBe(3);
    expect(gh.dispatches.length - before).toBe(1);
  });

  it('retries a request that never gets an answer, and 429', async () => {
    const sent = posts();
    const before = gh.dispatches.length;
    gh.failNext(1, 'hang');
    gh.failNext(1, 429);
    await notifier(settingConfig(), { ...FAST, timeoutMs: HANG_TIMEOUT_MS }).notify(PUBLISHED);
    expect(posts() - sent).toBe(3);
    expect(gh.dispatches.length - before).toBe(1);
  });

  it('stops after the configured attempts with a transient NOTIFY_FAILED', async () => {
    const sent = posts();
    gh.failNext(10, 500);
    const e = await failure(notifier(settingConfig(), { ...FAST, attempts: 4 }).notify(PUBLISHED));
    expect(e.code).toBe('NOTIFY_FAILED');
    expect(e.permanent).toBe(false);
    expect(e.message).toMatch(/4 attempts.*HTTP 500/);
    expect(posts() - sent).toBe(4);
  });

  it('does not retry a 422 and marks it permanent', async () => {
    const sent = posts();
    const e = await failure(
      notifier(settingConfig({ BASM_NOTIFY_GITHUB_WORKFLOW: 'narrow.yml' })).notify(PUBLISHED),
    );
    expect(e.code).toBe('NOTIFY_FAILED');
    expect(e.permanent).toBe(true);
    expect(e.message).toMatch(/HTTP 422 Unexpected inputs provided/);
    expect(posts() - sent).toBe(1);
  });

  it('does not retry a 404 (unknown workflow)', async () => {
    const sent = posts();
    const e = await failure(
      notifier(settingConfig({ BASM_NOTIFY_GITHUB_WORKFLOW: 'gone.yml' })).notify(PUBLISHED),
    );
    expect(e.message).toMatch(/HTTP 404/);
    expect(posts() - sent).toBe(1);
  });

  it('fails a wrong setting token at once: there is nothing to re-read', async () => {
    gh.rotateTokens([VAULT_TOKEN_A]);
    try {
      const sent = posts();
      const e = await failure(notifier(settingConfig()).notify(PUBLISHED));
      expect(e.message).toMatch(/401 Bad credentials/);
      expect(posts() - sent).toBe(1);
    } finally {
      gh.rotateTokens([SETTING_TOKEN]);
    }
  });
});

describe('secrets', () => {
  it('no token appears in any log line or thrown error of this file', () => {
    const secrets = [SETTING_TOKEN, VAULT_TOKEN_A, VAULT_TOKEN_B, ...kv.issued.map((t) => t.token)];
    // The runs above must have produced material worth searching, failures included.
    expect(lines.length).toBeGreaterThan(10);
    expect(thrown.length).toBeGreaterThanOrEqual(6);
    const texts = [
      ...lines,
      ...thrown.flatMap((e) => [
        String(e),
        (e as Error).stack ?? '',
        inspect(e, { depth: 10 }),
        JSON.stringify(e),
      ]),
    ];
    for (const s of secrets) {
      for (const t of texts) expect(t.includes(s), `secret found in: ${t.slice(0, 200)}`).toBe(false);
    }
    // Every GitHub token the notifier obtained is registered, so any later line masks it.
    for (const s of [SETTING_TOKEN, VAULT_TOKEN_A, VAULT_TOKEN_B]) expect(redact(`x ${s} y`)).toBe('x *** y');
  });
});
