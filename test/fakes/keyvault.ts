/**
 * A strict local stand-in for Azure Key Vault's secrets API (`GET /secrets/{name}/{version?}`) over
 * https with the test certificate, plus the App Service managed-identity token endpoint
 * (`IDENTITY_ENDPOINT` + `IDENTITY_HEADER`) that issues the only tokens the vault accepts.
 * It speaks the real challenge flow: a request without a bearer token gets 401 and a
 * `WWW-Authenticate` challenge naming the tenant and the resource, as @azure/keyvault-secrets expects.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { testTls } from '../support/tls';
import { sendJson } from './http';

export const VAULT_RESOURCE = 'https://vault.azure.net';
const MI_PATH = '/msi/token';
const SECRET_NAME = /^[0-9a-zA-Z-]{1,127}$/;
const VERSION = /^[0-9a-f]{32}$/;

export interface FakeKeyVaultOptions {
  readonly secrets: Readonly<Record<string, string>>;
  readonly tenantId?: string;
  /** The value the managed-identity endpoint demands in `x-identity-header`. */
  readonly identityHeader?: string;
  /** Bearer tokens accepted besides those the managed-identity endpoint issues for the vault. */
  readonly validTokens?: readonly string[];
}

export interface VaultRequest {
  readonly method: string;
  readonly path: string;
  readonly apiVersion: string | null;
  readonly authenticated: boolean;
  readonly status: number;
}

export interface IssuedToken {
  readonly resource: string;
  readonly token: string;
}

export interface FakeKeyVault {
  /** Vault URL, `https://127.0.0.1:PORT`. */
  readonly url: string;
  /** For `IDENTITY_ENDPOINT`. */
  readonly identityEndpoint: string;
  /** For `IDENTITY_HEADER`. */
  readonly identityHeader: string;
  readonly tenantId: string;
  /** Every secrets request, authenticated or not. */
  readonly requests: VaultRequest[];
  /** Every token the managed-identity endpoint handed out. */
  readonly issued: IssuedToken[];
  /** Adds a new current version of the secret (rotation); returns its version id. */
  setSecret(name: string, value: string): string;
  /** The successful secret reads so far (status 200). */
  secretReads(name?: string): number;
  close(): Promise<void>;
}

interface SecretVersion {
  readonly version: string;
  readonly value: string;
  readonly created: number;
}

function kvError(code: string, message: string): unknown {
  return { error: { code, message } };
}

export async function startFakeKeyVault(opts: FakeKeyVaultOptions): Promise<FakeKeyVault> {
  const tenantId = opts.tenantId ?? '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const identityHeader = opts.identityHeader ?? randomBytes(16).toString('hex');
  const vaultTokens = new Set(opts.validTokens ?? []);
  const store = new Map<string, SecretVersion[]>();
  const requests: VaultRequest[] = [];
  const issued: IssuedToken[] = [];
  const sockets = new Set<Duplex>();
  let url = '';

  function setSecret(name: string, value: string): string {
    if (!SECRET_NAME.test(name)) throw new Error(`invalid secret name ${name}`);
    const version = randomBytes(16).toString('hex');
    const versions = store.get(name) ?? [];
    versions.push({ version, value, created: Math.floor(Date.now() / 1000) });
    store.set(name, versions);
    return version;
  }
  for (const [name, value] of Object.entries(opts.secrets)) setSecret(name, value);

  const challenge =
    `Bearer authorization="https://login.microsoftonline.com/${tenantId}", ` + `resource="${VAULT_RESOURCE}"`;

  function managedIdentity(req: IncomingMessage, res: ServerResponse, q: URLSearchParams): void {
    if (req.method !== 'GET') return sendJson(res, 405, { error: 'method_not_allowed' });
    if (req.headers['x-identity-header'] !== identityHeader) {
      return sendJson(res, 401, {
        error: 'unauthorized',
        error_description: 'missing or wrong X-IDENTITY-HEADER',
      });
    }
    if (q.get('api-version') !== '2019-08-01') {
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'unsupported api-version' });
    }
    const resource = q.get('resource');
    if (!resource)
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'resource is required' });
    const token = `mi-${randomBytes(24).toString('base64url')}`;
    issued.push({ resource, token });
    // Only tokens for the vault's audience open the vault.
    if (resource.replace(/\/+$/, '') === VAULT_RESOURCE) vaultTokens.add(token);
    sendJson(res, 200, {
      access_token: token,
      expires_on: String(Math.floor(Date.now() / 1000) + 3600),
      resource,
      token_type: 'Bearer',
    });
  }

  function secrets(req: IncomingMessage, res: ServerResponse, path: string, q: URLSearchParams): number {
    const auth = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (auth === undefined) {
      sendJson(res, 401, kvError('Unauthorized', 'AKV10000: Request is missing a Bearer or PoP token.'), {
        'www-authenticate': challenge,
      });
      return 401;
    }
    if (!vaultTokens.has(auth)) {
      sendJson(res, 401, kvError('Unauthorized', 'AKV10032: Invalid issuer or audience.'), {
        'www-authenticate': challenge,
      });
      return 401;
    }
    if (!q.get('api-version')) {
      sendJson(res, 400, kvError('BadParameter', 'The api-version query parameter is required.'));
      return 400;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, kvError('BadParameter', `The method ${req.method ?? ''} is not allowed here.`));
      return 405;
    }
    const [, , name = '', version, ...more] = path.split('/');
    if (!SECRET_NAME.test(name) || more.length > 0 || (version && !VERSION.test(version))) {
      sendJson(res, 400, kvError('BadParameter', `The request URI contains an invalid name: ${name}`));
      return 400;
    }
    const versions = store.get(name) ?? [];
    const found = version ? versions.find((v) => v.version === version) : versions.at(-1);
    if (!found) {
      const what = version ? `${name}/${version}` : name;
      sendJson(
        res,
        404,
        kvError(
          'SecretNotFound',
          `A secret with (name/id) ${what} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command.`,
        ),
      );
      return 404;
    }
    sendJson(res, 200, {
      value: found.value,
      id: `${url}/secrets/${name}/${found.version}`,
      attributes: {
        enabled: true,
        created: found.created,
        updated: found.created,
        recoveryLevel: 'Recoverable+Purgeable',
        recoverableDays: 90,
      },
      tags: {},
    });
    return 200;
  }

  const server: Server = createServer(testTls(), (req, res) => {
    const u = new URL(req.url ?? '/', 'https://127.0.0.1');
    if (u.pathname === MI_PATH) return managedIdentity(req, res, u.searchParams);
    if (!/^\/secrets\//.test(u.pathname)) return sendJson(res, 404, kvError('NotFound', 'Not found'));
    const status = secrets(req, res, u.pathname, u.searchParams);
    requests.push({
      method: req.method ?? '',
      path: u.pathname,
      apiVersion: u.searchParams.get('api-version'),
      authenticated: req.headers.authorization !== undefined,
      status,
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    identityEndpoint: `${url}${MI_PATH}`,
    identityHeader,
    tenantId,
    requests,
    issued,
    setSecret,
    secretReads: (name) =>
      requests.filter((r) => r.status === 200 && (name === undefined || r.path.split('/')[2] === name))
        .length,
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
