/**
 * The functions of the app, as the host learns them: the function files are loaded with the
 * `@azure/functions-core` stand-in in place, so `@azure/functions` registers each one with its
 * binding metadata (the worker's "worker indexing"), and the host reads the trigger binding of each:
 * type, queue and connection, route, methods, authLevel, schedule. Nothing else is read from the
 * files; the handlers stay behind the library's invocation path.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { HttpMethod } from '@azure/functions';
import { installFunctionsCore, type CoreFunctionMetadata, type FunctionsCore } from './functions-core';

interface Registered {
  name: string;
  /** The name of the trigger binding: the key its input travels under in an invocation request. */
  triggerBinding: string;
}

export interface HttpFunction extends Registered {
  kind: 'http';
  /** The template below /api; the function name when the file gives none (as the host does). */
  route: string;
  methods: HttpMethod[];
  authLevel: 'anonymous' | 'function' | 'admin';
}

export interface QueueFunction extends Registered {
  kind: 'queue';
  queueName: string;
  /** The app setting naming the storage account. */
  connection: string;
}

export interface TimerFunction extends Registered {
  kind: 'timer';
  /** As written, with `%SETTING%` references unresolved. */
  schedule: string;
  runOnStartup: boolean;
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

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * The registration the host reads from one function's metadata, or undefined for a trigger type
 * the local host does not serve. The defaults are the library's (route = function name).
 */
export function toRegistration(metadata: CoreFunctionMetadata): FunctionRegistration | undefined {
  const trigger = Object.entries(metadata.bindings).find(
    ([, b]) => b.direction === 'in' && /trigger$/i.test(b.type ?? ''),
  );
  if (!trigger) return undefined;
  const [triggerBinding, b] = trigger;
  const name = metadata.name;
  switch (b.type?.toLowerCase()) {
    case 'httptrigger':
      return {
        kind: 'http',
        name,
        triggerBinding,
        route: str(b.route) ?? name,
        methods: Array.isArray(b.methods)
          ? b.methods.map((m) => String(m).toUpperCase() as HttpMethod)
          : ['GET', 'POST'],
        authLevel: (str(b.authLevel) ?? 'anonymous') as HttpFunction['authLevel'],
      };
    case 'queuetrigger':
      return {
        kind: 'queue',
        name,
        triggerBinding,
        queueName: str(b.queueName) ?? '',
        connection: str(b.connection) ?? 'AzureWebJobsStorage',
      };
    case 'timertrigger':
      return {
        kind: 'timer',
        name,
        triggerBinding,
        schedule: str(b.schedule) ?? '',
        runOnStartup: b.runOnStartup === true,
      };
    default:
      return undefined;
  }
}

export interface LoadedApp {
  readonly core: FunctionsCore;
  readonly functions: FunctionRegistration[];
  /** Registered functions whose trigger the local host does not serve. */
  readonly unsupported: string[];
}

let loaded: Promise<LoadedApp> | undefined;

/**
 * Loads the function files once per process (a module registers when it is first evaluated) and
 * returns what they registered. Throws when `@azure/functions` was used before the stand-in was in
 * place (it then stays in its test mode and registers nothing).
 */
export function loadApp(dir: string = defaultFunctionsDir()): Promise<LoadedApp> {
  loaded ??= (async () => {
    const core = installFunctionsCore();
    for (const file of moduleFiles(dir)) await import(pathToFileURL(file).href);
    core.locked = true;
    if (!core.programmingModel) {
      throw new Error(
        '@azure/functions registered nothing: it was loaded in test mode before the local host installed @azure/functions-core',
      );
    }
    const functions: FunctionRegistration[] = [];
    const unsupported: string[] = [];
    for (const { metadata } of core.functions.values()) {
      const r = toRegistration(metadata);
      if (r) functions.push(r);
      else unsupported.push(metadata.name);
    }
    return { core, functions, unsupported };
  })();
  return loaded;
}

/** The registrations alone (what the host serves). */
export async function loadFunctions(dir?: string): Promise<FunctionRegistration[]> {
  return (await loadApp(dir)).functions;
}
