/**
 * Resource Manager's answers, classified once, by HTTP status and ARM error code (never by message
 * text). Sources: "Troubleshoot common Azure deployment errors" and "Throttling Resource Manager
 * requests" (learn.microsoft.com, Azure Resource Manager), and what the Compute gallery answers in
 * the field (see the project's notes).
 */
import { azureFault, isRestError, isTransientRestError } from '../core/azure-errors';
import { MirrorError } from '../core/errors';

/**
 * 409 codes that mean "another write to this resource is under way, try again later", not that
 * the request conflicts with what exists.
 */
const CONCURRENCY_CODES: ReadonlySet<string> = new Set([
  'ConflictingConcurrentWriteNotAllowed',
  'AnotherOperationInProgress',
  'OperationPreempted',
  'RetryableError',
]);

/**
 * 404 codes that, right after the parent was created, mean "not replicated to this ARM instance
 * yet" (eventual consistency), not that the parent is missing.
 */
const NOT_YET_VISIBLE_CODES: ReadonlySet<string> = new Set(['ParentResourceNotFound']);

export type ArmErrorKind =
  /** Throttled: Azure says when to come back (Retry-After, seconds; undefined when it did not say). */
  | { kind: 'throttled'; retryAfterSeconds: number | undefined }
  /** Worth a few quick retries with backoff inside the invocation: a concurrent write, or a parent not yet visible. */
  | { kind: 'backoff' }
  /** Transient in general (network, 408, 5xx): the SDK has already retried it; the job retries later. */
  | { kind: 'transient' }
  /** The request conflicts with what exists (PropertyChangeNotAllowed, an existing resource, …). */
  | { kind: 'conflict' }
  /** Refused for good (400, 403, 404 of a missing resource, …). */
  | { kind: 'refused' };

/** How to treat what an ARM call threw. Anything but an SDK error counts as transient. */
export function classifyArmError(e: unknown): ArmErrorKind {
  if (!isRestError(e)) return { kind: 'transient' };
  const { status, code } = azureFault(e);
  if (status === 429) return { kind: 'throttled', retryAfterSeconds: retryAfterSeconds(e) };
  if (status === 409) return CONCURRENCY_CODES.has(code) ? { kind: 'backoff' } : { kind: 'conflict' };
  if (status === 404 && NOT_YET_VISIBLE_CODES.has(code)) return { kind: 'backoff' };
  if (isTransientRestError(e)) return { kind: 'transient' };
  return { kind: 'refused' };
}

/** Retry-After of an answer, in whole seconds: delta-seconds or an HTTP date (RFC 9110 §10.2.3). */
export function retryAfterSeconds(e: unknown): number | undefined {
  return isRestError(e) ? parseRetryAfter(e.response?.headers.get('retry-after')) : undefined;
}

/** A Retry-After header value in whole seconds (delta-seconds or an HTTP date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  const v = value?.trim();
  if (v === undefined || v === '') return undefined;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

/**
 * Our error for anything a gallery call threw: a conflict is a permanent `GALLERY_CONFLICT`; a
 * refusal a permanent `GALLERY_FAILED`; everything else a transient `GALLERY_FAILED`, carrying
 * Azure's Retry-After when it gave one.
 */
export function toGalleryError(e: unknown, what: string): MirrorError {
  if (e instanceof MirrorError) return e;
  const c = classifyArmError(e);
  let text: string;
  if (isRestError(e)) {
    const { code, message } = azureFault(e);
    text = `${what}: Azure answered ${e.statusCode ?? 'no status'} ${code}: ${message}`;
  } else {
    text = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  }
  if (c.kind === 'conflict') return new MirrorError('GALLERY_CONFLICT', text, { cause: e });
  return new MirrorError('GALLERY_FAILED', text, {
    permanent: c.kind === 'refused',
    cause: e,
    ...(c.kind === 'throttled' && c.retryAfterSeconds !== undefined
      ? { retryAfterSeconds: c.retryAfterSeconds }
      : {}),
  });
}
