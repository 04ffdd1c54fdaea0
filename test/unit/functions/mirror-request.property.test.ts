/**
 * POST /api/mirror with any body and content type: a malformed request is a 400 with a reason and
 * reaches no service (no job, no message); the handler never throws. The services are replaced by
 * ones that fail the test if touched, so only the validation in front of them runs (no I/O).
 */
import fc from 'fast-check';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/lib/core/log';
import { parseRequest } from '../../../src/lib/jobs/requests';
import { mirrorRequest } from '../../../src/functions/mirrorRequest';

// vi.mock is hoisted above the imports: what its factory uses must be hoisted too.
const touched = vi.hoisted((): string[] => []);

vi.mock('../../../src/functions/runtime', () => ({
  inInvocation: (_context: unknown, _fields: unknown, body: (log: unknown) => Promise<unknown>) =>
    body(silentLogger),
  services: () => {
    touched.push('services');
    throw new Error('a malformed request reached the services');
  },
}));

function isValidBody(text: string): boolean {
  try {
    parseRequest(JSON.parse(text));
    return true;
  } catch {
    return false;
  }
}

const body = fc.oneof(
  fc.string({ maxLength: 300 }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .record(
      {
        series: fc.oneof(
          fc.constant('bosh-azure-hyperv-ubuntu-jammy-go_agent'),
          fc.string({ maxLength: 40 }),
        ),
        version: fc.oneof(fc.constant('latest'), fc.string({ maxLength: 12 })),
        force: fc.anything(),
      },
      { requiredKeys: [] },
    )
    .map((v) => JSON.stringify(v)),
  fc.string({ minLength: 16 * 1024 + 1, maxLength: 17 * 1024 }),
);
const contentType = fc.oneof(
  fc.constant('application/json'),
  fc.constant('application/json; charset=utf-8'),
  fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', ''),
  fc.string({ maxLength: 40 }),
);

describe('POST /api/mirror (property)', () => {
  it('answers every malformed body with 400 INVALID_REQUEST and touches no service', async () => {
    await fc.assert(
      fc.asyncProperty(body, contentType, async (text, type) => {
        touched.length = 0;
        const request = new HttpRequest({
          method: 'POST',
          url: 'http://127.0.0.1:7071/api/mirror',
          // As the Functions host hands a body over: with its Content-Length (a chunked one is a 411).
          headers: {
            ...(type === '' ? {} : { 'content-type': type }),
            'content-length': String(Buffer.byteLength(text)),
          },
          body: { string: text },
        });
        const res = await mirrorRequest(request, new InvocationContext({ functionName: 'mirrorRequest' }));
        const jsonType = /^application\/json\s*(;|$)/i.test(type);
        if (jsonType && Buffer.byteLength(text) <= 16 * 1024 && isValidBody(text)) {
          // A well-formed request goes on to the services (here: refused by the stub, a 500).
          expect(touched).toEqual(['services']);
          return;
        }
        expect(res.status).toBe(400);
        expect(touched).toEqual([]);
        const answer = res.jsonBody as { error: { code: string; message: string } };
        expect(answer.error.code).toBe('INVALID_REQUEST');
        expect(answer.error.message.length).toBeGreaterThan(0);
      }),
      {
        numRuns: 300,
        // One well-formed request always runs, which proves the stubbed services are the ones called.
        examples: [
          [JSON.stringify({ series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent' }), 'application/json'],
        ],
      },
    );
  });
});
