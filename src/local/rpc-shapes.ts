/**
 * The inputs of an invocation in the shapes the Functions host sends them to a Node.js worker, and
 * the HTTP answer read back from the worker's response. The rules come from the host's
 * `GrpcMessageConversionExtensions` (Azure/azure-functions-host) with the capabilities the Node.js
 * worker announces (`RawHttpBodyBytes`, `RpcHttpBodyOnly`, `UseNullableValueDictionaryForHttp`,
 * `RpcHttpTriggerMetadataRemoved`): a string stays a string, a number or date goes as JSON; binding
 * data that is null is left out, as is the in-memory `sys` entry (`ScriptInvocationContextExtensions`,
 * `ShouldSkipBindingData`); an HTTP body travels as bytes and only when `Content-Length` > 0.
 */
import type {
  RpcHttpData,
  RpcInvocationResponse,
  RpcNullableString,
  RpcParameterBinding,
  RpcTypedData,
} from './functions-core';

/** An invocation request before the host gives it an id. */
export interface InvocationInput {
  inputData: RpcParameterBinding[];
  triggerMetadata: Record<string, RpcTypedData>;
}

const asJson = (v: unknown): RpcTypedData => ({ json: JSON.stringify(v) });
const asString = (v: string | undefined): RpcTypedData | undefined =>
  v === undefined ? undefined : { string: v };
const asDate = (d: Date | undefined): RpcTypedData | undefined =>
  d === undefined ? undefined : asJson(d.toISOString());

/** Binding data as trigger metadata: an entry whose value is null is not sent at all. */
function metadata(entries: Record<string, RpcTypedData | undefined>): Record<string, RpcTypedData> {
  const out: Record<string, RpcTypedData> = {};
  for (const [k, v] of Object.entries(entries)) if (v !== undefined) out[k] = v;
  return out;
}

/** A queue message as the queue trigger binds it; `id` and the rest are absent for a test-pane call. */
export interface QueueMessageFacts {
  /** The text after decoding (base64 by default). */
  text: string;
  /** 0 for a test-pane (admin) invocation, which has no message behind it. */
  dequeueCount: number;
  id?: string;
  popReceipt?: string;
  insertedOn?: Date;
  expiresOn?: Date;
  nextVisibleOn?: Date;
}

/** The queue trigger's input: the text as a string, and the message facts as binding data. */
export function queueInvocation(binding: string, m: QueueMessageFacts): InvocationInput {
  return {
    inputData: [{ name: binding, data: { string: m.text } }],
    triggerMetadata: metadata({
      QueueTrigger: { string: m.text },
      DequeueCount: asJson(m.dequeueCount),
      Id: asString(m.id),
      PopReceipt: asString(m.popReceipt),
      InsertionTime: asDate(m.insertedOn),
      ExpirationTime: asDate(m.expiresOn),
      NextVisibleTime: asDate(m.nextVisibleOn),
    }),
  };
}

/** `TimerInfo` as the host serializes it: PascalCase, the status absent before a first run is known. */
export interface TimerFacts {
  isPastDue: boolean;
  last?: Date;
  next?: Date;
}

export function timerInvocation(binding: string, t: TimerFacts): InvocationInput {
  const now = new Date();
  return {
    inputData: [
      {
        name: binding,
        data: asJson({
          Schedule: { AdjustForDST: true },
          ScheduleStatus: {
            Last: (t.last ?? new Date(0)).toISOString(),
            Next: (t.next ?? now).toISOString(),
            LastUpdated: now.toISOString(),
          },
          IsPastDue: t.isPastDue,
        }),
      },
    ],
    triggerMetadata: {},
  };
}

export interface HttpFacts {
  method: string;
  /** The full URL as the client asked for it. */
  url: string;
  /** Lower-case names; several values of one header already joined. */
  headers: Record<string, string>;
  params: Record<string, string>;
  /** The body as received; dropped unless the request declared a positive Content-Length. */
  body: Buffer;
}

const nullable = (m: Record<string, string>): Record<string, RpcNullableString> =>
  Object.fromEntries(Object.entries(m).map(([k, v]) => [k, { value: v }]));

/** Several values of one query parameter are joined with commas, as ASP.NET's StringValues prints them. */
function queryOf(url: URL): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of new Set(url.searchParams.keys())) out[key] = url.searchParams.getAll(key).join(',');
  return out;
}

export function httpInvocation(binding: string, h: HttpFacts): InvocationInput {
  const declared = Number(h.headers['content-length'] ?? '0');
  const http: RpcHttpData = {
    method: h.method,
    url: h.url,
    nullableHeaders: nullable(h.headers),
    nullableQuery: nullable(queryOf(new URL(h.url))),
    nullableParams: nullable(h.params),
    ...(declared > 0 && h.body.length > 0 ? { body: { bytes: h.body } } : {}),
  };
  return { inputData: [{ name: binding, data: { http } }], triggerMetadata: {} };
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  cookies: string[];
  body: Buffer;
}

function bodyBytes(data: RpcTypedData | null | undefined): Buffer {
  if (!data) return Buffer.alloc(0);
  if (data.bytes) return Buffer.from(data.bytes);
  if (typeof data.string === 'string') return Buffer.from(data.string);
  if (typeof data.json === 'string') return Buffer.from(data.json);
  return Buffer.alloc(0);
}

/** The HTTP answer in an invocation response (`$return`); an empty 200 when the function returned none. */
export function httpAnswerOf(response: RpcInvocationResponse): HttpAnswer {
  const http = response.returnValue?.http;
  if (!http) return { status: 200, headers: {}, cookies: [], body: Buffer.alloc(0) };
  return {
    status: Number(http.statusCode ?? '200') || 200,
    headers: { ...(http.headers ?? {}) },
    cookies: (http.cookies ?? []).map(
      (c) => `${c.name ?? ''}=${c.value ?? ''}${c.path?.value ? `; Path=${c.path.value}` : ''}`,
    ),
    body: bodyBytes(http.body),
  };
}
