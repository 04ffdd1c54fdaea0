/** POST /api/mirror: validate, resolve against bosh.io, record the job, enqueue, 202. */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { jobView } from '../lib/jobs/view';
import { parseRequest } from '../lib/jobs/requests';
import { submitMirrorRequest } from '../lib/mirror/submit';
import { errorResponse, json, problem } from './responses';
import { inInvocation, services } from './runtime';

const MAX_BODY_BYTES = 16 * 1024;

export async function mirrorRequest(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return inInvocation(context, {}, async (log) => {
    const type = request.headers.get('content-type') ?? '';
    if (!/^application\/json\s*(;|$)/i.test(type)) {
      return problem(400, 'INVALID_REQUEST', 'the body must be JSON (Content-Type: application/json)');
    }
    // The Functions host hands a body over only when Content-Length declares it: a chunked body
    // reaches this function empty. Say so instead of calling an empty body malformed.
    const length = request.headers.get('content-length');
    if (length === null) {
      return problem(
        411,
        'INVALID_REQUEST',
        'send the body with a Content-Length header: the Functions host drops a chunked body',
      );
    }
    const declared = Number(length);
    if (declared > MAX_BODY_BYTES)
      return problem(400, 'INVALID_REQUEST', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    const text = await request.text();
    if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
      return problem(400, 'INVALID_REQUEST', `the body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return problem(400, 'INVALID_REQUEST', 'the body is not valid JSON');
    }
    try {
      const parsed = parseRequest(body);
      const { job } = await submitMirrorRequest(parsed, services(log), log);
      const statusUrl = new URL(`/api/mirror/${job.series}/${job.version}`, request.url).toString();
      return json(
        202,
        { series: job.series, version: job.version, status: job.status, statusUrl, job: jobView(job) },
        { location: statusUrl, 'retry-after': '30' },
      );
    } catch (e) {
      return errorResponse(e, log, 'request.failed');
    }
  });
}

app.http('mirrorRequest', {
  route: 'mirror',
  methods: ['POST'],
  authLevel: 'function',
  handler: mirrorRequest,
});
