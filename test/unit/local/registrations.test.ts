/**
 * What the app registers, read the way the host reads it: the function files loaded with the
 * `@azure/functions-core` stand-in, each function's metadata as `registerFunction` received it.
 * These are the names, triggers, queues, routes and schedule of DESIGN §3.
 */
import { describe, expect, it } from 'vitest';
import { loadApp } from '../../../src/local/registry';

describe('the app registrations', () => {
  it('are the five functions of the contract, with their triggers as the host reads them', async () => {
    const { core, functions, unsupported } = await loadApp();
    expect(unsupported).toEqual([]);
    const byName = Object.fromEntries(functions.map(({ triggerBinding: _b, ...f }) => [f.name, f]));
    expect(byName).toEqual({
      mirrorPoison: {
        kind: 'queue',
        name: 'mirrorPoison',
        queueName: 'stemcell-mirror-requests-poison',
        connection: 'AzureWebJobsStorage',
      },
      mirrorRequest: {
        kind: 'http',
        name: 'mirrorRequest',
        route: 'mirror',
        methods: ['POST'],
        authLevel: 'function',
      },
      mirrorSchedule: {
        kind: 'timer',
        name: 'mirrorSchedule',
        schedule: '%BASM_SCHEDULE%',
        runOnStartup: false,
      },
      mirrorStatus: {
        kind: 'http',
        name: 'mirrorStatus',
        route: 'mirror/{series?}/{version?}',
        methods: ['GET'],
        authLevel: 'function',
      },
      mirrorWorker: {
        kind: 'queue',
        name: 'mirrorWorker',
        queueName: 'stemcell-mirror-requests',
        connection: 'AzureWebJobsStorage',
      },
    });
    // The raw metadata: one trigger binding each, typed as the host expects, and the HTTP output
    // binding the library adds for the answer.
    const types = Object.fromEntries(
      [...core.functions.values()].map(({ metadata }) => [
        metadata.name,
        Object.values(metadata.bindings)
          .map((b) => `${b.direction}:${b.type}`)
          .sort(),
      ]),
    );
    expect(types).toEqual({
      mirrorPoison: ['in:queueTrigger'],
      mirrorRequest: ['in:httpTrigger', 'out:http'],
      mirrorSchedule: ['in:timerTrigger'],
      mirrorStatus: ['in:httpTrigger', 'out:http'],
      mirrorWorker: ['in:queueTrigger'],
    });
  });
});
