/**
 * Functions that hand back what they receive, for the invocation-path test: the arguments the
 * library builds from host-shaped RPC data, exactly as a handler of the app gets them. A queue or
 * timer function's return value travels back in the response's `returnValue`, an HTTP one as the
 * body.
 */
import { app, type HttpRequest, type InvocationContext, type Timer } from '@azure/functions';

app.storageQueue('echoQueue', {
  queueName: 'echo-queue',
  connection: 'AzureWebJobsStorage',
  handler: (input: unknown, context: InvocationContext) => {
    context.log('queue input seen');
    return { input, triggerMetadata: context.triggerMetadata };
  },
});

app.timer('echoTimer', {
  schedule: '%ECHO_SCHEDULE%',
  handler: (timer: Timer, context: InvocationContext) => ({
    timer,
    triggerMetadata: context.triggerMetadata,
  }),
});

app.http('echoHttp', {
  route: 'echo/{name?}',
  methods: ['POST', 'GET'],
  handler: async (request: HttpRequest) => ({
    status: 201,
    headers: { 'x-echo': 'yes' },
    jsonBody: {
      method: request.method,
      url: request.url,
      body: await request.text(),
      headers: Object.fromEntries(request.headers),
      query: Object.fromEntries(request.query),
      params: { ...request.params },
    },
  }),
});
