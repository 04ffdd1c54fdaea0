/**
 * Mirror requests: what the queue carries, what POST /api/mirror accepts, and what a person types
 * into the portal test pane. Validated with a JSON schema, then with the naming rules.
 */
import Ajv, { type ErrorObject } from 'ajv';
import { MirrorError } from '../core/errors';
import { isAzureSeries, isSeriesName, isStemcellVersion } from '../core/names';

export interface MirrorRequest {
  series: string;
  /** An exact version or "latest". */
  version: string;
  force?: boolean;
  reason?: string;
}

/** Where a message came from: a new request re-arms failed jobs; a continuation only advances one. */
export interface QueueMessage extends MirrorRequest {
  continuation?: boolean;
  /**
   * A continuation that watches the run holding this lease owner and takes the job over if that
   * run dies (jobs/job.ts `watchdogVerdict`). Always with `continuation`.
   */
  watchdog?: string;
}

const requestSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['series'],
  properties: {
    series: { type: 'string', minLength: 1, maxLength: 100 },
    version: { type: 'string', minLength: 1, maxLength: 40 },
    force: { type: 'boolean' },
    reason: { type: 'string', maxLength: 200 },
    continuation: { type: 'boolean' },
    watchdog: { type: 'string', minLength: 1, maxLength: 200 },
  },
} as const;

const ajv = new Ajv({ allErrors: true });
const validateRequest = ajv.compile(requestSchema);

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) =>
      e.keyword === 'additionalProperties'
        ? `unknown field "${String((e.params as { additionalProperty?: unknown }).additionalProperty)}"`
        : `${e.instancePath.replace(/^\//, '') || 'body'} ${e.message ?? 'is invalid'}`,
    )
    .join('; ');
}

/** Checks shape and names; `allowContinuation` only for queue messages. */
export function parseRequest(value: unknown, allowContinuation = false): QueueMessage {
  if (!validateRequest(value)) throw new MirrorError('INVALID_REQUEST', describe(validateRequest.errors));
  const v = value as QueueMessage;
  for (const field of ['continuation', 'watchdog'] as const) {
    if (v[field] !== undefined && !allowContinuation) {
      throw new MirrorError('INVALID_REQUEST', `unknown field "${field}"`);
    }
  }
  if (v.watchdog !== undefined && v.continuation !== true) {
    throw new MirrorError('INVALID_REQUEST', 'a watchdog message is a continuation ("continuation": true)');
  }
  const series = v.series.trim();
  const version = (v.version ?? 'latest').trim();
  if (!isSeriesName(series)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `"${series}" is not a stemcell series name (e.g. bosh-azure-hyperv-ubuntu-jammy-go_agent)`,
    );
  }
  if (!isAzureSeries(series)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `"${series}" is not an Azure series (bosh-azure-…): only those carry a VHD`,
    );
  }
  if (version !== 'latest' && !isStemcellVersion(version)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `"${version}" is not a stemcell version (e.g. 1.682) or "latest"`,
    );
  }
  return {
    series,
    version,
    ...(v.force === undefined ? {} : { force: v.force }),
    ...(v.reason === undefined ? {} : { reason: v.reason }),
    ...(v.continuation ? { continuation: true } : {}),
    ...(v.watchdog === undefined ? {} : { watchdog: v.watchdog }),
  };
}

/**
 * A queue message as the worker receives it: the Functions host hands over an object for JSON text
 * and a string otherwise; the portal test pane sends either JSON or plain `series` / `series/version`.
 */
export function parseQueueMessage(message: unknown): QueueMessage {
  if (typeof message === 'string' || Buffer.isBuffer(message)) {
    const text = message.toString().trim();
    if (text.startsWith('{')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new MirrorError('INVALID_REQUEST', 'the message starts like JSON but does not parse');
      }
      return parseRequest(parsed, true);
    }
    const [series, version, ...rest] = text.split('/');
    if (rest.length > 0 || !series) {
      throw new MirrorError('INVALID_REQUEST', 'expected JSON, "series" or "series/version"');
    }
    return parseRequest({ series, version: version || 'latest' }, true);
  }
  return parseRequest(message, true);
}

/** The wire form: base64 of the JSON text, as the Functions host decodes queue messages by default. */
export function encodeQueueMessage(message: QueueMessage): string {
  return Buffer.from(JSON.stringify(message), 'utf8').toString('base64');
}
