/**
 * A stand-in for `@azure/functions-core`, the module the official Node.js language worker provides
 * to `@azure/functions` at run time (it is not an npm package). Outside the worker the library finds
 * no such module and drops into "test mode", where `app.*` registers nothing. With this stand-in
 * installed first, the library registers each function here exactly as it does with the worker
 * (`setProgrammingModel`, then `registerFunction(metadata, callback)` per function), and an
 * invocation goes through the library's own path: `getInvocationModel` → `getArguments` →
 * `invokeFunction` → `getResponse`, fed with the RPC shapes the host sends.
 *
 * The shapes below are the subset of the worker's protobuf messages (azure-functions-language-worker-protobuf,
 * `FunctionRpc.proto`: TypedData, RpcHttp, InvocationRequest/Response) this app's triggers use.
 */
import Module from 'node:module';
import { join } from 'node:path';

/** One binding of a function as the library describes it (`type`, `direction`, and its options). */
export interface RpcBindingInfo {
  type?: string;
  direction?: 'in' | 'out' | 'inout';
  dataType?: string;
  [option: string]: unknown;
}

/** What `registerFunction` receives: the name and the bindings by binding name (trigger, `$return`). */
export interface CoreFunctionMetadata {
  name: string;
  functionId?: string;
  bindings: Record<string, RpcBindingInfo>;
  retryOptions?: unknown;
}

export interface RpcNullableString {
  value?: string;
}

/** `RpcHttp` as the host fills it for a non-streaming worker (nullable maps, raw body bytes). */
export interface RpcHttpData {
  method?: string;
  url?: string;
  nullableHeaders?: Record<string, RpcNullableString>;
  nullableQuery?: Record<string, RpcNullableString>;
  nullableParams?: Record<string, RpcNullableString>;
  headers?: Record<string, string>;
  body?: RpcTypedData | null;
  statusCode?: string;
  cookies?: Array<{ name?: string; value?: string; path?: { value?: string } | null }>;
}

/** `TypedData`: exactly one member is set (none for a null value). */
export interface RpcTypedData {
  string?: string | null;
  json?: string | null;
  bytes?: Uint8Array | null;
  http?: RpcHttpData | null;
  int?: number | null;
  double?: number | null;
}

export interface RpcParameterBinding {
  name: string;
  data: RpcTypedData;
}

/** `InvocationRequest` without the function id (the stand-in looks functions up by name). */
export interface RpcInvocationRequest {
  invocationId: string;
  inputData: RpcParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
}

export interface RpcInvocationResponse {
  invocationId: string;
  outputData?: RpcParameterBinding[];
  returnValue?: RpcTypedData | null;
}

/** `RpcLog.Level` names as the library passes them, and the category (`user` or `system`). */
export type CoreLogLevel = 'trace' | 'debug' | 'information' | 'warning' | 'error' | 'critical' | 'none';
export type CoreLogSink = (level: CoreLogLevel, category: 'user' | 'system', message: string) => void;

type FunctionCallback = (...args: unknown[]) => unknown;

interface CoreInvocationContext {
  invocationId: string;
  request: RpcInvocationRequest;
  metadata: CoreFunctionMetadata;
  state?: string;
  log(level: CoreLogLevel, category: 'user' | 'system', message: string): void;
}

interface InvocationModel {
  getArguments(): Promise<{ context: unknown; inputs: unknown[] }>;
  invokeFunction(context: unknown, inputs: unknown[], callback: FunctionCallback): Promise<unknown>;
  getResponse(context: unknown, result: unknown): Promise<RpcInvocationResponse>;
}

interface ProgrammingModel {
  name: string;
  version: string;
  getInvocationModel(coreCtx: CoreInvocationContext): InvocationModel;
}

export interface RegisteredFunction {
  readonly metadata: CoreFunctionMetadata;
  readonly callback: FunctionCallback;
}

/** Registrations and the programming model of this process, as the worker keeps them. */
class FunctionsCore {
  readonly functions = new Map<string, RegisteredFunction>();
  programmingModel: ProgrammingModel | undefined;
  /** Where `coreApi.log` (the library's system log) goes outside an invocation. */
  systemLog: CoreLogSink = () => undefined;
  /** Set once loading is over: like the worker, no registration after start-up. */
  locked = false;

  /** The module object `require('@azure/functions-core')` returns. */
  readonly api = {
    version: '3.0.0-local',
    hostVersion: '4.0.0-local',
    setProgrammingModel: (model: ProgrammingModel): void => {
      this.programmingModel = model;
    },
    getProgrammingModel: (): ProgrammingModel | undefined => this.programmingModel,
    registerFunction: (metadata: CoreFunctionMetadata, callback: FunctionCallback): { dispose(): void } => {
      if (this.locked) throw new Error('a function can only be registered while the app loads');
      const id = metadata.functionId ?? metadata.name;
      if (this.functions.has(id.toLowerCase())) throw new Error(`function "${id}" is registered twice`);
      this.functions.set(id.toLowerCase(), { metadata, callback });
      return { dispose: () => void this.functions.delete(id.toLowerCase()) };
    },
    registerHook: (): never => {
      throw new Error('invocation hooks are not supported by the local host');
    },
    log: (level: CoreLogLevel, category: 'user' | 'system', message: string): void =>
      this.systemLog(level, category, message),
    Disposable: class {
      constructor(private readonly onDispose: () => void) {}
      dispose(): void {
        this.onDispose();
      }
    },
  };

  /**
   * One invocation through the library's own path. Resolves with the response (return value and
   * outputs as RPC data); rejects with what the handler threw.
   */
  async invoke(
    name: string,
    request: RpcInvocationRequest,
    log: CoreLogSink,
  ): Promise<RpcInvocationResponse> {
    const fn = this.functions.get(name.toLowerCase());
    if (!fn) throw new Error(`function "${name}" is not registered`);
    const model = this.programmingModel;
    if (!model) throw new Error('@azure/functions set no programming model');
    const coreCtx: CoreInvocationContext = {
      invocationId: request.invocationId,
      request,
      metadata: fn.metadata,
      log,
    };
    const invocation = model.getInvocationModel(coreCtx);
    const { context, inputs } = await invocation.getArguments();
    coreCtx.state = 'invocation';
    let result: unknown;
    try {
      result = await invocation.invokeFunction(context, inputs, fn.callback);
    } finally {
      coreCtx.state = undefined;
    }
    return invocation.getResponse(context, result);
  }
}

const CORE_ID = '@azure/functions-core';
/** The cache key the module is filed under; no file by that name exists. */
const CORE_FILE = join(__dirname, '@azure-functions-core.local.js');

let installed: FunctionsCore | undefined;

type ResolveFilename = (request: string, parent: unknown, ...rest: unknown[]) => string;

/**
 * Makes `require('@azure/functions-core')` return the stand-in in this process, from now on. Must
 * run before the first `app.*` call: the library looks the module up once and remembers the answer.
 */
export function installFunctionsCore(): FunctionsCore {
  if (installed) return installed;
  const core = new FunctionsCore();
  const loader = Module as unknown as {
    _resolveFilename: ResolveFilename;
    _cache: Record<string, unknown>;
  };
  const mod = new Module(CORE_FILE);
  mod.filename = CORE_FILE;
  mod.loaded = true;
  mod.exports = core.api;
  loader._cache[CORE_FILE] = mod;
  const resolve = loader._resolveFilename;
  loader._resolveFilename = function (request, parent, ...rest) {
    return request === CORE_ID ? CORE_FILE : resolve.call(this, request, parent, ...rest);
  };
  installed = core;
  return core;
}

export type { FunctionsCore };
