/** Response shaping for the HTTP functions, so handlers stay short. */
import type { HttpResponseInit } from '@azure/functions';
import { isMirrorError, toErrorInfo, type ErrorCode } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' };

export function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponseInit {
  return { status, jsonBody: body, headers: { ...JSON_HEADERS, ...headers } };
}

export function problem(
  status: number,
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): HttpResponseInit {
  return json(status, { error: { code, message, ...extra } });
}

/** The HTTP status for an error code, for errors that reach an HTTP answer. */
export function statusFor(code: ErrorCode): number {
  switch (code) {
    case 'INVALID_REQUEST':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'UPSTREAM_UNAVAILABLE':
    case 'STORAGE_FAILED':
      return 503;
    default:
      return 500;
  }
}

/** The answer for anything a handler threw; what is not one of ours is logged as `event` first. */
export function errorResponse(e: unknown, log: Logger, event: string): HttpResponseInit {
  const info = toErrorInfo(e);
  if (!isMirrorError(e)) log.error(event, { error: info });
  return problem(statusFor(info.code), info.code, info.message);
}
