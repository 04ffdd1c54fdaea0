/** Response shaping for the HTTP functions, so handlers stay short. */
import type { HttpResponseInit } from '@azure/functions';
import type { ErrorCode } from '../lib/errors';

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
