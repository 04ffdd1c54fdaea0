/**
 * Downstream notification: a GitHub `workflow_dispatch` per published (or failed) version, with the
 * token from a setting or from Key Vault secret `github-token`.
 *
 * Node's fetch rather than got: errors from fetch carry no request options, so the Authorization
 * header cannot ride out on a thrown error (got's HTTPError keeps `options.headers`), and retries are
 * ours anyway because a 401 has to re-read the secret before trying again.
 */
import type { TokenCredential } from '@azure/identity';
import type * as KeyVaultSecrets from '@azure/keyvault-secrets';
import type { Config, GithubNotifyConfig } from '../config/config';
import { isLoopbackHost } from '../config/config';
import { keyVaultError } from '../core/azure-errors';
import { MirrorError } from '../core/errors';
import type { Logger } from '../core/log';
import { registerSecret } from '../core/log';

export interface NotifyEvent {
  kind: 'published' | 'failed';
  series: string;
  version: string;
  galleryImageName?: string;
  galleryImageVersion?: string;
  galleryImageVersionId?: string;
  error?: { code: string; message: string };
}

export interface Notifier {
  /** Throws MirrorError NOTIFY_FAILED once its retries are spent (transient) or GitHub refused the request (permanent). */
  notify(event: NotifyEvent): Promise<void>;
}

export interface NotifierOptions {
  /** Attempts per dispatch for 5xx, 429 and timeouts (default 4). */
  readonly attempts?: number;
  /** First backoff delay; doubles per attempt (default 1000 ms). */
  readonly baseDelayMs?: number;
  /** Upper bound of any single wait, Retry-After included (default 30 s). */
  readonly maxDelayMs?: number;
  /** Timeout of each request to GitHub (default 15 s). */
  readonly timeoutMs?: number;
}

/** The Key Vault secret holding the GitHub token. */
export const GITHUB_TOKEN_SECRET = 'github-token';
const API_VERSION = '2022-11-28';
const USER_AGENT = 'bosh-azure-stemcell-mirror';

/** Workflow inputs, named as the earlier Python mirror named them so existing workflows keep working. */
export function dispatchInputs(config: Config, event: NotifyEvent): Record<string, string> {
  const inputs: Record<string, string> = {};
  const g = config.gallery;
  if (g) {
    inputs.gallery_name = g.galleryName;
    if (event.galleryImageName) inputs.gallery_image_name = event.galleryImageName;
    if (event.galleryImageVersion) inputs.gallery_image_version = event.galleryImageVersion;
    inputs.gallery_subscription_id = g.subscriptionId;
    inputs.gallery_resource_group = g.resourceGroup;
  }
  inputs.stemcell_series = event.series;
  inputs.stemcell_version = event.version;
  if (event.kind === 'failed') {
    inputs.status = 'failed';
    inputs.error_code = event.error?.code ?? 'INTERNAL';
  }
  return inputs;
}

export function dispatchUrl(gh: GithubNotifyConfig): string {
  const seg = encodeURIComponent;
  return `${gh.apiUrl}/repos/${seg(gh.owner)}/${seg(gh.repo)}/actions/workflows/${seg(gh.workflow)}/dispatches`;
}

/** Where the token comes from: `current()` is cached; `refresh()` re-reads and says whether it changed. */
interface TokenProvider {
  current(): Promise<string>;
  refresh(stale: string): Promise<boolean>;
}

function settingToken(token: string): TokenProvider {
  registerSecret(token);
  return { current: async () => token, refresh: async () => false };
}

function keyVaultToken(vaultUrl: string, credential: TokenCredential, log: Logger): TokenProvider {
  // Challenge verification demands *.vault.azure.net; only a loopback vault (a local fake) is exempt.
  // Loaded here, not at start: only a process that notifies needs the Key Vault SDK.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { SecretClient } = require('@azure/keyvault-secrets') as typeof KeyVaultSecrets;
  const client = new SecretClient(vaultUrl, credential, {
    disableChallengeResourceVerification: isLoopbackHost(new URL(vaultUrl).hostname),
  });
  let cached: Promise<string> | undefined;

  const read = (): Promise<string> => {
    const p = client.getSecret(GITHUB_TOKEN_SECRET).then(
      (secret) => {
        const value = secret.value?.trim();
        if (!value)
          throw new MirrorError('NOTIFY_FAILED', `Key Vault secret ${GITHUB_TOKEN_SECRET} is empty`);
        registerSecret(value);
        log.info('notify.token-read', { source: 'keyVault', secretVersion: secret.properties.version });
        return value;
      },
      (e: unknown) => {
        // Transient: access granted late (role propagation) or a secret added later heals without a restart.
        throw keyVaultError(e, `Key Vault secret ${GITHUB_TOKEN_SECRET} could not be read`);
      },
    );
    // A failed read must not stick: the next call tries the vault again.
    p.catch(() => {
      if (cached === p) cached = undefined;
    });
    cached = p;
    return p;
  };

  return {
    current: () => cached ?? read(),
    async refresh(stale) {
      // Several dispatches may see the same 401: a read that already brought a new value is reused.
      const seen = await cached?.catch(() => undefined);
      if (seen !== undefined && seen !== stale) return true;
      return (await read()) !== stale;
    },
  };
}

type Attempt =
  | { outcome: 'sent' }
  | { outcome: 'unauthorized'; message: string }
  | { outcome: 'retry'; reason: string; retryAfterMs: number | undefined }
  | { outcome: 'refused'; status: number; message: string };

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** GitHub's `{ message }`, short, with the token cut out should it ever be echoed. */
async function githubMessage(res: Response, token: string): Promise<string> {
  let text = '';
  try {
    text = await res.text();
    const parsed = JSON.parse(text) as { message?: unknown };
    if (typeof parsed.message === 'string') text = parsed.message;
  } catch {
    // not JSON: keep the raw text
  }
  return text.split(token).join('***').replace(/\s+/g, ' ').slice(0, 300);
}

function retryAfterMs(res: Response): number | undefined {
  const v = res.headers.get('retry-after');
  if (v === null) return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

async function dispatchOnce(url: string, body: string, token: string, timeoutMs: number): Promise<Attempt> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        accept: 'application/vnd.github+json',
        'x-github-api-version': API_VERSION,
        authorization: `Bearer ${token}`,
        'user-agent': USER_AGENT,
        'content-type': 'application/json',
      },
      body,
      // A redirect would carry the token elsewhere; GitHub does not redirect dispatches it accepts.
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (e) {
    const timedOut = e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError');
    const code = (e as { cause?: { code?: unknown } }).cause?.code;
    const reason = timedOut
      ? `no answer within ${timeoutMs} ms`
      : `network error ${typeof code === 'string' ? code : ''}`;
    return { outcome: 'retry', reason: reason.trim(), retryAfterMs: undefined };
  }
  if (res.ok) {
    await res.body?.cancel();
    return { outcome: 'sent' };
  }
  const message = await githubMessage(res, token).catch(() => '');
  const rateLimited =
    res.status === 429 ||
    (res.status === 403 &&
      (res.headers.get('x-ratelimit-remaining') === '0' || res.headers.has('retry-after')));
  if (res.status === 401) return { outcome: 'unauthorized', message };
  if (res.status >= 500 || res.status === 408 || rateLimited) {
    return {
      outcome: 'retry',
      reason: `HTTP ${res.status} ${message}`.trim(),
      retryAfterMs: retryAfterMs(res),
    };
  }
  return { outcome: 'refused', status: res.status, message };
}

class GithubNotifier implements Notifier {
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly timeoutMs: number;

  constructor(
    private readonly config: Config,
    private readonly gh: GithubNotifyConfig,
    private readonly tokens: TokenProvider,
    private readonly log: Logger,
    options: NotifierOptions,
  ) {
    this.attempts = Math.max(1, options.attempts ?? 4);
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
    this.timeoutMs = options.timeoutMs ?? 15_000;
  }

  async notify(event: NotifyEvent): Promise<void> {
    const url = dispatchUrl(this.gh);
    const body = JSON.stringify({ ref: this.gh.ref, inputs: dispatchInputs(this.config, event) });
    const log = this.log.child({ series: event.series, version: event.version, stage: 'notify' });
    let token = await this.tokens.current();
    let reread = false;
    for (let attempt = 1; ;) {
      const result = await dispatchOnce(url, body, token, this.timeoutMs);
      if (result.outcome === 'sent') {
        log.info('notify.sent', {
          kind: event.kind,
          workflow: this.gh.workflow,
          attempt,
          galleryImageVersionId: event.galleryImageVersionId,
        });
        return;
      }
      if (result.outcome === 'unauthorized') {
        // Rotation needs no restart: re-read the secret once, and try again only if it changed.
        if (!reread && (await this.tokens.refresh(token))) {
          reread = true;
          log.warn('notify.token-rejected', { action: 'retry with the re-read token' });
          token = await this.tokens.current();
          continue;
        }
        throw new MirrorError(
          'NOTIFY_FAILED',
          `GitHub rejected the token (HTTP 401 ${result.message})`.trim(),
          {
            permanent: false,
          },
        );
      }
      if (result.outcome === 'refused') {
        throw new MirrorError(
          'NOTIFY_FAILED',
          `GitHub refused the workflow dispatch to ${this.gh.owner}/${this.gh.repo} ${this.gh.workflow} (HTTP ${result.status} ${result.message})`,
          { permanent: true },
        );
      }
      if (attempt >= this.attempts) {
        throw new MirrorError(
          'NOTIFY_FAILED',
          `GitHub workflow dispatch failed after ${attempt} attempts (${result.reason})`,
          { permanent: false },
        );
      }
      const backoff = this.baseDelayMs * 2 ** (attempt - 1) * (0.5 + Math.random() / 2);
      const delayMs = Math.min(this.maxDelayMs, Math.max(backoff, result.retryAfterMs ?? 0));
      log.warn('notify.retry', { attempt, reason: result.reason, delayMs: Math.round(delayMs) });
      await sleep(delayMs);
      attempt++;
    }
  }
}

/** Undefined when no GitHub token is configured; the caller logs "notifications off" once. */
export function createNotifier(
  config: Config,
  credential: TokenCredential,
  log: Logger,
  options: NotifierOptions = {},
): Notifier | undefined {
  const gh = config.notify.github;
  if (!gh) return undefined;
  const tokens =
    gh.token.kind === 'setting'
      ? settingToken(gh.token.token)
      : keyVaultToken(gh.token.vaultUrl, credential, log);
  return new GithubNotifier(config, gh, tokens, log, options);
}
