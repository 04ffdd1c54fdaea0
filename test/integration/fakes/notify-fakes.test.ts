/**
 * The GitHub and Key Vault fakes are only worth testing against if they refuse what the real
 * services refuse. These tests prove each refusal, and that real SDK clients get through.
 */
import { request as httpRequest } from 'node:http';
import { ManagedIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_DISPATCH_INPUTS, startFakeGithub, type FakeGithub } from '../../fakes/github';
import { startFakeKeyVault, VAULT_RESOURCE, type FakeKeyVault } from '../../fakes/keyvault';

const TOKEN = 'ghp_fakeValidToken0123456789abcdefghijkl';
const GOOD_HEADERS = {
  accept: 'application/vnd.github+json',
  'x-github-api-version': '2022-11-28',
  authorization: `Bearer ${TOKEN}`,
  'content-type': 'application/json',
};

describe('fake GitHub', () => {
  let gh: FakeGithub;
  beforeAll(async () => {
    gh = await startFakeGithub({
      owner: 'acme',
      repo: 'platform',
      tokens: [TOKEN],
      refs: ['main'],
      workflows: {
        'open.yml': {},
        'strict.yml': { inputs: ['stemcell_series', 'stemcell_version'], required: ['stemcell_series'] },
      },
    });
  });
  afterAll(() => gh.close());

  const path = (workflow = 'open.yml', repo = 'acme/platform') =>
    `/repos/${repo}/actions/workflows/${workflow}/dispatches`;

  async function post(
    body: unknown,
    headers: Record<string, string> = GOOD_HEADERS,
    p = path(),
    base = gh.url,
  ): Promise<{ status: number; message: string }> {
    const res = await fetch(`${base}${p}`, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await res.text();
    return {
      status: res.status,
      message: text ? ((JSON.parse(text) as { message: string }).message ?? '') : '',
    };
  }

  it('accepts a well-formed dispatch with 204 and records it, at the root and under /api/v3', async () => {
    const before = gh.dispatches.length;
    expect(await post({ ref: 'main', inputs: { a: '1' } })).toEqual({ status: 204, message: '' });
    expect(await post({ ref: 'main' }, GOOD_HEADERS, path(), gh.enterpriseUrl)).toEqual({
      status: 204,
      message: '',
    });
    expect(gh.dispatches.slice(before)).toMatchObject([
      { prefix: '', workflow: 'open.yml', ref: 'main', inputs: { a: '1' }, token: TOKEN },
      { prefix: '/api/v3', workflow: 'open.yml', ref: 'main', inputs: {} },
    ]);
  });

  it('answers 401 without credentials and with an unknown token', async () => {
    const { authorization: _, ...anonymous } = GOOD_HEADERS;
    expect(await post({ ref: 'main' }, anonymous)).toEqual({
      status: 401,
      message: 'Requires authentication',
    });
    expect(await post({ ref: 'main' }, { ...GOOD_HEADERS, authorization: 'Bearer ghp_wrong' })).toEqual({
      status: 401,
      message: 'Bad credentials',
    });
  });

  it('rejects a wrong Accept header, a missing or unknown API version, and a missing User-Agent', async () => {
    expect((await post({ ref: 'main' }, { ...GOOD_HEADERS, accept: 'application/json' })).status).toBe(415);
    const { 'x-github-api-version': _, ...noVersion } = GOOD_HEADERS;
    expect((await post({ ref: 'main' }, noVersion)).status).toBe(400);
    expect(
      (await post({ ref: 'main' }, { ...GOOD_HEADERS, 'x-github-api-version': '2020-01-01' })).status,
    ).toBe(400);
    // fetch always sends a User-Agent; node:http sends none unless told to.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gh.url}${path()}`, { method: 'POST', headers: GOOD_HEADERS }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end(JSON.stringify({ ref: 'main' }));
    });
    expect(status).toBe(403);
  });

  it('enforces the body: ref, object inputs, string values, at most 25 inputs', async () => {
    const inputs = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    expect(await post({ ref: 'main', inputs: inputs(MAX_DISPATCH_INPUTS) })).toMatchObject({ status: 204 });
    expect(await post({ ref: 'main', inputs: inputs(MAX_DISPATCH_INPUTS + 1) })).toMatchObject({
      status: 422,
      message: expect.stringContaining('up to 25'),
    });
    expect((await post({ ref: 'main', inputs: { n: 1 } })).status).toBe(422);
    expect((await post({ ref: 'main', inputs: ['a'] })).status).toBe(422);
    expect((await post({ inputs: {} })).status).toBe(422);
    expect((await post({ ref: 'main', client_payload: {} })).status).toBe(422);
    expect((await post({ ref: 'no-such-branch' })).status).toBe(422);
    const raw = await fetch(`${gh.url}${path()}`, {
      method: 'POST',
      headers: GOOD_HEADERS,
      body: '{not json',
    });
    expect(raw.status).toBe(400);
  });

  it("enforces the workflow's declared inputs", async () => {
    const strict = path('strict.yml');
    expect(
      await post({ ref: 'main', inputs: { stemcell_series: 's', extra: 'x' } }, GOOD_HEADERS, strict),
    ).toEqual({
      status: 422,
      message: 'Unexpected inputs provided: ["extra"]',
    });
    expect(
      (await post({ ref: 'main', inputs: { stemcell_version: '1' } }, GOOD_HEADERS, strict)).status,
    ).toBe(422);
    expect((await post({ ref: 'main', inputs: { stemcell_series: 's' } }, GOOD_HEADERS, strict)).status).toBe(
      204,
    );
  });

  it('answers 404 for an unknown workflow, repository or method, and records none of the rejects', async () => {
    const before = gh.dispatches.length;
    expect((await post({ ref: 'main' }, GOOD_HEADERS, path('nope.yml'))).status).toBe(404);
    expect((await post({ ref: 'main' }, GOOD_HEADERS, path('open.yml', 'acme/other'))).status).toBe(404);
    const get = await fetch(`${gh.url}${path()}`, { headers: GOOD_HEADERS });
    expect(get.status).toBe(404);
    expect(gh.dispatches.length).toBe(before);
  });

  it('injects faults: 5xx for the next N requests, then normal service; and hangs', async () => {
    gh.failNext(2, 502);
    expect((await post({ ref: 'main' })).status).toBe(502);
    expect((await post({ ref: 'main' })).status).toBe(502);
    expect((await post({ ref: 'main' })).status).toBe(204);
    gh.failNext(1, 'hang');
    const hung = fetch(`${gh.url}${path()}`, {
      method: 'POST',
      headers: GOOD_HEADERS,
      body: '{"ref":"main"}',
      signal: AbortSignal.timeout(200),
    });
    await expect(hung).rejects.toMatchObject({ name: 'TimeoutError' });
  });

  it('refuses the old token after rotation', async () => {
    const next = 'ghp_rotatedToken0123456789abcdefghijklm';
    gh.rotateTokens([next]);
    try {
      expect((await post({ ref: 'main' })).status).toBe(401);
      expect((await post({ ref: 'main' }, { ...GOOD_HEADERS, authorization: `Bearer ${next}` })).status).toBe(
        204,
      );
    } finally {
      gh.rotateTokens([TOKEN]);
    }
  });
});

describe('fake Key Vault', () => {
  let kv: FakeKeyVault;
  beforeAll(async () => {
    kv = await startFakeKeyVault({ secrets: { 'github-token': 'first-value-123456' } });
    process.env.IDENTITY_ENDPOINT = kv.identityEndpoint;
    process.env.IDENTITY_HEADER = kv.identityHeader;
  });
  afterAll(async () => {
    delete process.env.IDENTITY_ENDPOINT;
    delete process.env.IDENTITY_HEADER;
    await kv.close();
  });

  const client = (verify = false) =>
    new SecretClient(kv.url, new ManagedIdentityCredential(), {
      disableChallengeResourceVerification: !verify,
      retryOptions: { maxRetries: 0 },
    });

  it('challenges an unauthenticated request with 401 and WWW-Authenticate naming tenant and resource', async () => {
    const res = await fetch(`${kv.url}/secrets/github-token?api-version=7.5`);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      `Bearer authorization="https://login.microsoftonline.com/${kv.tenantId}", resource="${VAULT_RESOURCE}"`,
    );
    expect(await res.json()).toMatchObject({ error: { code: 'Unauthorized' } });
  });

  it('refuses bearer tokens it did not issue, and managed-identity tokens for another audience', async () => {
    const bogus = await fetch(`${kv.url}/secrets/github-token?api-version=7.5`, {
      headers: { authorization: 'Bearer made-up' },
    });
    expect(bogus.status).toBe(401);
    const mi = await fetch(
      `${kv.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent('https://management.azure.com')}`,
      { headers: { 'x-identity-header': kv.identityHeader } },
    );
    const { access_token } = (await mi.json()) as { access_token: string };
    const wrongAudience = await fetch(`${kv.url}/secrets/github-token?api-version=7.5`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(wrongAudience.status).toBe(401);
  });

  it('the managed-identity endpoint demands the identity header', async () => {
    const q = `?api-version=2019-08-01&resource=${encodeURIComponent(VAULT_RESOURCE)}`;
    expect((await fetch(`${kv.identityEndpoint}${q}`)).status).toBe(401);
    const wrong = await fetch(`${kv.identityEndpoint}${q}`, { headers: { 'x-identity-header': 'guess' } });
    expect(wrong.status).toBe(401);
  });

  it('serves a secret to SecretClient through the challenge flow with a managed-identity token', async () => {
    const start = kv.requests.length;
    const secret = await client().getSecret('github-token');
    expect(secret.value).toBe('first-value-123456');
    expect(secret.name).toBe('github-token');
    const seen = kv.requests.slice(start);
    expect(seen.map((r) => [r.authenticated, r.status])).toEqual([
      [false, 401],
      [true, 200],
    ]);
    expect(seen[1]!.apiVersion).toMatch(/^\d{4}-\d{2}-\d{2}|^7\./);
    expect(kv.issued.some((t) => t.resource === VAULT_RESOURCE)).toBe(true);
  });

  it('fails the SDK challenge check for a loopback vault unless verification is disabled', async () => {
    await expect(client(true).getSecret('github-token')).rejects.toThrow(
      /does not match the requested domain/,
    );
  });

  it('answers 404 SecretNotFound for an unknown secret or version', async () => {
    await expect(client().getSecret('no-such-secret')).rejects.toMatchObject({
      statusCode: 404,
      code: 'SecretNotFound',
    });
    await expect(
      client().getSecret('github-token', { version: '0123456789abcdef0123456789abcdef' }),
    ).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
  });

  it('rotates: setSecret makes a new current version, the old one stays readable by version', async () => {
    const c = client();
    const old = await c.getSecret('github-token');
    const version = kv.setSecret('github-token', 'second-value-123456');
    const now = await c.getSecret('github-token');
    expect(now.value).toBe('second-value-123456');
    expect(now.properties.version).toBe(version);
    expect((await c.getSecret('github-token', { version: old.properties.version! })).value).toBe(old.value);
  });

  it('requires an api-version', async () => {
    const mi = await fetch(
      `${kv.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent(VAULT_RESOURCE)}`,
      {
        headers: { 'x-identity-header': kv.identityHeader },
      },
    );
    const { access_token } = (await mi.json()) as { access_token: string };
    const res = await fetch(`${kv.url}/secrets/github-token`, {
      headers: { authorization: `Bearer ${access_token}` },
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'BadParameter' } });
  });
});
