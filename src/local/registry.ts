/**
 * The functions of the app, as the function files declare them. Outside the Functions host the
 * `app.*` registration calls are no-ops, so the local host swaps in recorders, loads every file in
 * src/functions (compiled or not), and serves exactly what they registered.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { app as functionsApp } from '@azure/functions';
import type {
  HttpFunctionOptions,
  HttpHandler,
  HttpMethod,
  HttpMethodFunctionOptions,
  StorageQueueFunctionOptions,
  StorageQueueHandler,
  TimerFunctionOptions,
  TimerHandler,
} from '@azure/functions';

export interface HttpFunction {
  kind: 'http';
  name: string;
  /** The template below /api; the function name when the file gives none (as the host does). */
  route: string;
  methods: HttpMethod[];
  authLevel: 'anonymous' | 'function' | 'admin';
  handler: HttpHandler;
}

export interface QueueFunction {
  kind: 'queue';
  name: string;
  queueName: string;
  /** The app setting naming the storage account. */
  connection: string;
  handler: StorageQueueHandler;
}

export interface TimerFunction {
  kind: 'timer';
  name: string;
  /** As written, with `%SETTING%` references unresolved. */
  schedule: string;
  runOnStartup: boolean;
  handler: TimerHandler;
}

export type FunctionRegistration = HttpFunction | QueueFunction | TimerFunction;

/** The functions folder beside this one: dist/src/functions when compiled, src/functions otherwise. */
export function defaultFunctionsDir(): string {
  return join(__dirname, '..', 'functions');
}

function moduleFiles(dir: string): string[] {
  // Compiled: the .js files; under a TypeScript loader (tests): the .ts sources.
  const ext = __filename.endsWith('.ts') ? '.ts' : '.js';
  return readdirSync(dir)
    .filter((f) => f.endsWith(ext) && !f.endsWith('.d.ts') && !f.includes('.test.'))
    .sort()
    .map((f) => join(dir, f));
}

function recorders(out: FunctionRegistration[]) {
  const http = (name: string, o: HttpFunctionOptions) => {
    out.push({
      kind: 'http',
      name,
      route: o.route ?? name,
      methods: o.methods && o.methods.length > 0 ? [...o.methods] : ['GET', 'POST'],
      authLevel: o.authLevel ?? 'anonymous',
      handler: o.handler,
    });
  };
  const method =
    (m: HttpMethod) =>
    (name: string, o: HttpHandler | HttpMethodFunctionOptions): void =>
      http(name, typeof o === 'function' ? { handler: o, methods: [m] } : { ...o, methods: [m] });
  return {
    http,
    get: method('GET'),
    put: method('PUT'),
    post: method('POST'),
    patch: method('PATCH'),
    deleteRequest: method('DELETE'),
    storageQueue: (name: string, o: StorageQueueFunctionOptions) => {
      out.push({ kind: 'queue', name, queueName: o.queueName, connection: o.connection, handler: o.handler });
    },
    timer: (name: string, o: TimerFunctionOptions) => {
      out.push({
        kind: 'timer',
        name,
        schedule: o.schedule,
        runOnStartup: o.runOnStartup ?? false,
        handler: o.handler,
      });
    },
  };
}

let loaded: Promise<FunctionRegistration[]> | undefined;

/**
 * Loads the function files once per process (a module registers when it is first evaluated) and
 * returns what they registered. Registration calls of other trigger kinds stay the library's no-ops.
 */
export function loadFunctions(dir: string = defaultFunctionsDir()): Promise<FunctionRegistration[]> {
  loaded ??= (async () => {
    const app = functionsApp as unknown as Record<string, unknown>;
    const found: FunctionRegistration[] = [];
    const swap = recorders(found);
    const saved = Object.fromEntries(Object.keys(swap).map((k) => [k, app[k]]));
    Object.assign(app, swap);
    try {
      for (const file of moduleFiles(dir)) await import(pathToFileURL(file).href);
    } finally {
      Object.assign(app, saved);
    }
    const names = new Set<string>();
    for (const f of found) {
      if (names.has(f.name.toLowerCase())) throw new Error(`function "${f.name}" is registered twice`);
      names.add(f.name.toLowerCase());
    }
    return found;
  })();
  return loaded;
}
