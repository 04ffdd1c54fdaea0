/**
 * The host's HTTP side: function routes under /api (no key asked locally, as with Core Tools) and
 * the admin route `POST /admin/functions/<name>` with `{ "input": "..." }`, as the portal's test
 * pane calls it for non-HTTP functions. As the host does: a path whose route exists but not for
 * this method is 404; the request body reaches the function only when `Content-Length` > 0 (a
 * chunked body arrives empty); an admin call without a body is 400; a queue function called from
 * the admin route gets the text as it is, `dequeueCount` 0 and no message id.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import type { Invoker } from './invoke';
import type { FunctionRegistration, HttpFunction } from './registry';
import { httpAnswerOf, httpInvocation, queueInvocation } from './rpc-shapes';
import { matchRoute, parseRoute, splitPath, type RouteTemplate } from './routes';
import type { TimerRunner } from './timer';

/** The Functions host refuses larger request bodies (100 MB); a local host needs far less. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

export interface HttpServerOptions {
  functions: readonly FunctionRegistration[];
  timers: ReadonlyMap<string, TimerRunner>;
  invoker: Invoker;
  log: Logger;
}

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > limit) throw new BodyTooLarge(`the body is larger than ${limit} bytes`);
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  res.writeHead(status, {
    ...(body === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  res.end(text);
}

function headersOf(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
}

interface Route {
  fn: HttpFunction;
  template: RouteTemplate;
}

export function createHttpServer(o: HttpServerOptions): Server {
  const routes: Route[] = o.functions
    .filter((f): f is HttpFunction => f.kind === 'http')
    .map((fn) => ({ fn, template: parseRoute(fn.route) }));
  const byName = new Map(o.functions.map((f) => [f.name.toLowerCase(), f]));

  const serveFunction = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const path = splitPath(url.pathname.slice('/api'.length));
    if (path === undefined)
      return send(res, 400, { error: { code: 'INVALID_REQUEST', message: 'bad path encoding' } });
    const method = (req.method ?? 'GET').toUpperCase();
    const matches = routes
      .map((r) => ({ r, params: matchRoute(r.template, path) }))
      .filter((m) => m.params !== undefined);
    if (matches.length === 0) return send(res, 404);
    const hit = matches.find((m) => m.r.fn.methods.includes(method as HttpFunction['methods'][number]));
    // The host routes on path and method together: a route of another method is no route at all.
    if (!hit) return send(res, 404);
    const body = await readBody(req, MAX_BODY_BYTES);
    const fn = hit.r.fn;
    const input = httpInvocation(fn.triggerBinding, {
      method,
      url: url.toString(),
      headers: headersOf(req),
      params: hit.params ?? {},
      body,
    });
    let answer;
    try {
      answer = httpAnswerOf(await o.invoker.run(fn.name, `http ${method} ${url.pathname}`, input));
    } catch {
      // The invoker logged the error; the caller sees what the host shows: a bare 500.
      return send(res, 500);
    }
    for (const c of answer.cookies) res.appendHeader('set-cookie', c);
    res.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length) });
    res.end(answer.body);
  };

  const serveAdmin = async (req: IncomingMessage, res: ServerResponse, name: string): Promise<void> => {
    const fn = byName.get(name.toLowerCase());
    if (!fn) return send(res, 404, { error: { code: 'NOT_FOUND', message: `no function named "${name}"` } });
    if (fn.kind === 'http') {
      return send(res, 400, {
        error: {
          code: 'INVALID_REQUEST',
          message: `${fn.name} is an HTTP function: call its route under /api`,
        },
      });
    }
    let input: unknown;
    try {
      const text = (await readBody(req, MAX_ADMIN_BODY_BYTES)).toString('utf8');
      if (text.trim() === '') {
        return send(res, 400, {
          error: { code: 'INVALID_REQUEST', message: 'the body must be JSON: {"input": "..."}' },
        });
      }
      input = (JSON.parse(text) as { input?: unknown } | null)?.input;
    } catch (e) {
      if (e instanceof BodyTooLarge) throw e;
      return send(res, 400, {
        error: { code: 'INVALID_REQUEST', message: 'the body must be JSON: {"input": "..."}' },
      });
    }
    if (fn.kind === 'timer') {
      const timer = o.timers.get(fn.name);
      if (timer) void timer.trigger(false);
      return send(res, 202);
    }
    if (typeof input !== 'string') {
      return send(res, 400, {
        error: { code: 'INVALID_REQUEST', message: `${fn.name} needs {"input": "<message text>"}` },
      });
    }
    // The text goes straight to the binding: no message behind it, so no id and dequeueCount 0.
    const invocation = queueInvocation(fn.triggerBinding, { text: input, dequeueCount: 0 });
    // Like the host's admin API: accepted at once, the invocation runs on its own.
    o.invoker.run(fn.name, 'admin', invocation).catch(() => undefined);
    send(res, 202);
  };

  return createServer((req, res) => {
    const url = new URL(req.url ?? '/', `http://${req.headers.host ?? '127.0.0.1'}`);
    const admin = /^\/admin\/functions\/([^/]+)\/?$/i.exec(url.pathname);
    const work = async () => {
      if (admin) {
        if (req.method !== 'POST') return send(res, 405, undefined, { allow: 'POST' });
        return serveAdmin(req, res, decodeURIComponent(admin[1]!));
      }
      if (/^\/admin\/host\/status\/?$/i.test(url.pathname)) return send(res, 200, { state: 'Running' });
      if (url.pathname.toLowerCase() === '/api' || url.pathname.toLowerCase().startsWith('/api/')) {
        return serveFunction(req, res, url);
      }
      return send(res, 404);
    };
    work().catch((e: unknown) => {
      if (e instanceof BodyTooLarge)
        return send(res, 413, { error: { code: 'INVALID_REQUEST', message: e.message } });
      o.log.error('http.failed', { path: url.pathname, error: toErrorInfo(e) });
      if (!res.headersSent) send(res, 500);
      else res.destroy();
    });
  });
}
