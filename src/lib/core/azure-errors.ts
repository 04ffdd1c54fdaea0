/**
 * The one boundary between the Azure SDKs' errors and ours. Every Blob, Table, Queue, Key Vault and
 * Resource Manager call translates what it throws here, recognising the SDK's error with the Azure
 * core library's own guard (`isRestError`) and branching on the HTTP status and the service's error
 * code, never on message text (the pattern of the SDKs' own `errorHelpers`).
 */
import { isRestError, type RestError } from '@azure/core-rest-pipeline';
import { MirrorError, type ErrorCode } from './errors';

export { isRestError };

/** What Azure said: the HTTP status (undefined when no answer came) and the service's error code. */
export interface AzureFault {
  status: number | undefined;
  code: string;
  message: string;
}

/**
 * The service's `{ code, message }`: Resource Manager and Key Vault put it in `details.error`,
 * Storage in `details.errorCode` / the `x-ms-error-code` header, data-tables in
 * `details.odataError`; a request that never got an answer carries the SDK's own code
 * (`REQUEST_SEND_ERROR`, `ECONNREFUSED`, …).
 */
export function azureFault(e: RestError): AzureFault {
  const d = (e.details ?? {}) as {
    error?: { code?: unknown; message?: unknown };
    errorCode?: unknown;
    odataError?: { code?: unknown; message?: unknown };
  };
  const header = e.response?.headers.get('x-ms-error-code');
  const odataMessage = (d.odataError?.message as { value?: unknown } | undefined)?.value;
  const code = [d.error?.code, d.errorCode, d.odataError?.code, header, e.code].find(
    (c): c is string => typeof c === 'string' && c !== '',
  );
  const message = [d.error?.message, odataMessage].find((m): m is string => typeof m === 'string');
  return {
    status: e.statusCode,
    code: code ?? (e.statusCode === undefined ? 'NoResponse' : `HTTP${e.statusCode}`),
    message: firstLine(message ?? e.message),
  };
}

/** Storage and ARM messages append request ids and times on further lines: keep the first. */
function firstLine(text: string): string {
  return text.split('\n')[0]!.trim();
}

/** The status of an SDK error, or undefined for anything else (and for a request with no answer). */
export function restStatus(e: unknown): number | undefined {
  return isRestError(e) ? e.statusCode : undefined;
}

/** True for an SDK error with exactly this HTTP status. */
export function hasStatus(e: unknown, status: number): boolean {
  return restStatus(e) === status;
}

/**
 * Worth another try later: no answer at all (network), 408, 429 and 5xx. Azure's guidance for
 * Storage and Resource Manager alike ("Transient fault handling", Azure Architecture Center).
 */
export function isTransientRestError(e: RestError): boolean {
  const s = e.statusCode;
  return s === undefined || s === 408 || s === 429 || s >= 500;
}

/**
 * Statuses with which Storage refuses the request itself (malformed, too large, a range it cannot
 * satisfy): asking again cannot help. Everything else may heal: the network, 408/429/5xx, a 403
 * while a role assignment propagates, a 404/409/412 from a resource another process just changed.
 */
const STORAGE_REFUSALS: ReadonlySet<number> = new Set([400, 405, 411, 413, 414, 416]);

/**
 * Our error for a failed Storage call (Blob, Queue, Table): `STORAGE_FAILED`, permanent only for a
 * request Storage refuses as such. Callers handle the statuses they expect (404 missing, 409 exists,
 * 412 stale) before calling this. A value that is already ours passes through.
 */
export function storageError(e: unknown, what: string): MirrorError {
  return translate(e, what, 'STORAGE_FAILED', (r) => !STORAGE_REFUSALS.has(r.statusCode ?? 0));
}

/** The same for Key Vault, whose failures only delay a notification (`NOTIFY_FAILED`, transient). */
export function keyVaultError(e: unknown, what: string): MirrorError {
  return translate(e, what, 'NOTIFY_FAILED', () => true);
}

function translate(
  e: unknown,
  what: string,
  code: ErrorCode,
  transient: (r: RestError) => boolean,
): MirrorError {
  if (e instanceof MirrorError) return e;
  if (isRestError(e)) {
    const f = azureFault(e);
    const status = f.status === undefined ? 'no answer' : String(f.status);
    return new MirrorError(code, `${what}: Azure answered ${status} ${f.code}: ${f.message}`, {
      permanent: !transient(e),
      cause: e,
    });
  }
  const message = e instanceof Error ? e.message : String(e);
  // Not an SDK error: a socket or stream failure on the way, worth another try.
  return new MirrorError(code, `${what}: ${message}`, { permanent: false, cause: e });
}
