/**
 * The one error family of the domain. `code` is part of the public contract (job JSON `error.code`);
 * `permanent` tells the job engine not to retry.
 */
export const ERROR_CODES = {
  CHECKSUM_MISMATCH: 'The download or an archive entry does not match its published checksum',
  ARCHIVE_INVALID: 'The stemcell archive is malformed, truncated or missing an entry',
  VHD_INVALID: 'The disk image is not a fixed VHD Azure can use',
  NOT_FOUND: 'bosh.io does not list this series or version',
  DOWNLOAD_FAILED: 'The stemcell could not be downloaded',
  GALLERY_FAILED: 'The Compute Gallery rejected or failed the operation',
  GALLERY_CONFLICT:
    'The gallery already holds this version with different content or an incompatible definition',
  INVALID_REQUEST: 'The request is malformed',
  CONFIG_INVALID: 'A setting has an invalid value',
  UPSTREAM_UNAVAILABLE: 'A service the mirror depends on cannot be reached',
  STORAGE_FAILED: 'Azure Storage failed the operation',
  NOTIFY_FAILED: 'The downstream notification could not be sent',
  POISONED: 'The request failed on every delivery and was moved to the poison queue',
  INTERNAL: 'An unexpected error',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface MirrorErrorOptions {
  /** Permanent errors fail the job at once; transient ones are retried. */
  permanent?: boolean;
  cause?: unknown;
  /**
   * For a transient error: when the service asked to be tried again (Retry-After, in seconds). The
   * job then waits in a delayed continuation instead of failing the invocation.
   */
  retryAfterSeconds?: number;
}

const PERMANENT_BY_DEFAULT: ReadonlySet<ErrorCode> = new Set([
  'CHECKSUM_MISMATCH',
  'ARCHIVE_INVALID',
  'VHD_INVALID',
  'NOT_FOUND',
  'GALLERY_CONFLICT',
  'INVALID_REQUEST',
  'CONFIG_INVALID',
]);

export class MirrorError extends Error {
  readonly code: ErrorCode;
  readonly permanent: boolean;
  readonly retryAfterSeconds: number | undefined;

  constructor(code: ErrorCode, message: string, options: MirrorErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'MirrorError';
    this.code = code;
    this.permanent = options.permanent ?? PERMANENT_BY_DEFAULT.has(code);
    this.retryAfterSeconds = this.permanent ? undefined : options.retryAfterSeconds;
  }
}

export function isMirrorError(e: unknown): e is MirrorError {
  return e instanceof MirrorError;
}

/** Turns anything thrown into an Error so it can be logged and recorded. */
export function ensureError(e: unknown): Error {
  if (e instanceof Error) return e;
  return new Error(typeof e === 'string' ? e : JSON.stringify(e));
}

/** The stable `{ code, message }` recorded on a job for any thrown value. */
export function toErrorInfo(e: unknown): { code: ErrorCode; message: string } {
  if (isMirrorError(e)) return { code: e.code, message: e.message };
  return { code: 'INTERNAL', message: ensureError(e).message };
}
