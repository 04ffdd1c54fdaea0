/**
 * Functions invoked the way the Node.js worker invokes them: registered through the
 * `@azure/functions-core` stand-in, called through the library's InvocationModel with the RPC data
 * the host sends (rpc-shapes.ts). What a handler receives is what it would receive in Azure.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CoreLogLevel, FunctionsCore } from '../../../src/local/functions-core';
import { loadApp } from '../../../src/local/registry';
import {
  httpAnswerOf,
  httpInvocation,
  queueInvocation,
  timerInvocation,
} from '../../../src/local/rpc-shapes';

let core: FunctionsCore;
const logs: Array<{ level: CoreLogLevel; category: string; message: string }> = [];
const sink = (level: CoreLogLevel, category: 'user' | 'system', message: string) =>
  void logs.push({ level, category, message });

beforeAll(async () => {
  const app = await loadApp(join(__dirname, '..', '..', 'support', 'echo-functions'));
  core = app.core;
  expect(app.functions.map((f) => f.name).sort()).toEqual(['echoHttp', 'echoQueue', 'echoTimer']);
});

const binding = (name: string) =>
  Object.keys(core.functions.get(name.toLowerCase())!.metadata.bindings).find((b) => b !== '$return')!;

async function invoke(name: string, input: ReturnType<typeof queueInvocation>) {
  return core.invoke(name, { invocationId: `id-${logs.length}-${Date.now()}`, ...input }, sink);
}

function returned(r: { returnValue?: { json?: string | null } | null }): Record<string, unknown> {
  return JSON.parse(r.returnValue?.json ?? 'null') as Record<string, unknown>;
}

describe('queue trigger', () => {
  it('hands JSON text over parsed, a JSON string as its string, other text as it is', async () => {
    const cases: Array<[string, unknown]> = [
      ['{"series":"s","version":"1.2"}', { series: 's', version: '1.2' }],
      ['"bosh-azure-hyperv-ubuntu-jammy-go_agent/1.682"', 'bosh-azure-hyperv-ubuntu-jammy-go_agent/1.682'],
      ['bosh-azure-hyperv-ubuntu-jammy-go_agent/1.682', 'bosh-azure-hyperv-ubuntu-jammy-go_agent/1.682'],
      ['{not json', '{not json'],
    ];
    for (const [text, expected] of cases) {
      const r = await invoke('echoQueue', queueInvocation(binding('echoQueue'), { text, dequeueCount: 2 }));
      expect(returned(r).input).toEqual(expected);
    }
  });

  it('gives the message facts as camelCase metadata: dequeueCount a number, dates as text', async () => {
    const insertedOn = new Date('2026-11-30T10:00:00.000Z');
    const r = await invoke(
      'echoQueue',
      queueInvocation(binding('echoQueue'), {
        text: 'x',
        dequeueCount: 3,
        id: 'm-1',
        popReceipt: 'p-1',
        insertedOn,
        expiresOn: insertedOn,
        nextVisibleOn: insertedOn,
      }),
    );
    const meta = returned(r).triggerMetadata as Record<string, unknown>;
    expect(meta).toMatchObject({
      queueTrigger: 'x',
      dequeueCount: 3,
      id: 'm-1',
      popReceipt: 'p-1',
      insertionTime: insertedOn.toISOString(),
    });
    // The host keeps its in-memory `sys` binding data to itself.
    expect(Object.keys(meta).sort()).toEqual([
      'dequeueCount',
      'expirationTime',
      'id',
      'insertionTime',
      'nextVisibleTime',
      'popReceipt',
      'queueTrigger',
    ]);
    expect(logs.some((l) => l.category === 'user' && l.message === 'queue input seen')).toBe(true);
  });

  it('a test-pane call has dequeueCount 0 and no message id', async () => {
    const r = await invoke(
      'echoQueue',
      queueInvocation(binding('echoQueue'), { text: 'x', dequeueCount: 0 }),
    );
    const meta = returned(r).triggerMetadata as Record<string, unknown>;
    // Null binding data is not sent: only the text and the count remain.
    expect(meta).toEqual({ queueTrigger: 'x', dequeueCount: 0 });
  });
});

describe('timer trigger', () => {
  it('turns the host PascalCase TimerInfo into the camelCase Timer', async () => {
    const last = new Date('2026-11-30T00:00:00.000Z');
    const next = new Date('2026-11-30T06:00:00.000Z');
    const r = await invoke(
      'echoTimer',
      timerInvocation(binding('echoTimer'), { isPastDue: true, last, next }),
    );
    const timer = returned(r).timer as Record<string, unknown>;
    expect(timer.isPastDue).toBe(true);
    expect(timer.schedule).toEqual({ adjustForDST: true });
    expect(timer.scheduleStatus).toMatchObject({ last: last.toISOString(), next: next.toISOString() });
    // The library keeps no trigger metadata for timers.
    expect(returned(r).triggerMetadata).toBeUndefined();
  });
});

describe('HTTP trigger', () => {
  const call = async (headers: Record<string, string>, body: string, method = 'POST') => {
    const r = await invoke(
      'echoHttp',
      httpInvocation(binding('echoHttp'), {
        method,
        url: 'http://127.0.0.1:7071/api/echo/abc?x=1&x=2&y=',
        headers,
        params: { name: 'abc' },
        body: Buffer.from(body),
      }),
    );
    const answer = httpAnswerOf(r);
    return { answer, seen: JSON.parse(answer.body.toString()) as Record<string, Record<string, string>> };
  };

  it('passes the body when Content-Length is positive, with headers, query and route parameters', async () => {
    const { answer, seen } = await call(
      { 'content-type': 'application/json', 'content-length': '7' },
      '{"a":1}',
    );
    expect(answer.status).toBe(201);
    expect(answer.headers['x-echo']).toBe('yes');
    expect(seen.body).toBe('{"a":1}');
    expect(seen.headers!['content-type']).toBe('application/json');
    expect(seen.query).toEqual({ x: '1,2', y: '' });
    expect(seen.params).toEqual({ name: 'abc' });
    expect(seen.method).toBe('POST');
  });

  it('gives a chunked body (no Content-Length) to the function empty, as the host does', async () => {
    const { seen } = await call(
      { 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
      '{"a":1}',
    );
    expect(seen.body).toBe('');
  });
});
