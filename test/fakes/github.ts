/**
 * A strict local stand-in for GitHub's "create a workflow dispatch event" endpoint, on plain http at
 * 127.0.0.1, both at the root (api.github.com style) and under `/api/v3` (GitHub Enterprise Server).
 * It rejects what GitHub rejects (credentials, headers, body shape, the 25-input limit, inputs the
 * workflow does not declare) and can fail on demand: 5xx, 429, or a request that never gets an answer.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { sendJson } from './http';

/** GitHub's current limit on `workflow_dispatch` inputs. */
export const MAX_DISPATCH_INPUTS = 25;
/** The inputs a downstream workflow declares: the earlier Python mirror's, plus series, version, status. */
export const MIRROR_WORKFLOW_INPUTS: readonly string[] = [
  'gallery_name',
  'gallery_image_name',
  'gallery_image_version',
  'gallery_subscription_id',
  'gallery_resource_group',
  'stemcell_series',
  'stemcell_version',
  'status',
  'error_code',
];
export const GITHUB_API_VERSION = '2022-11-28';
const DOCS = 'https://docs.github.com/rest/actions/workflows#create-a-workflow-dispatch-event';

export interface FakeWorkflow {
  /** Inputs declared under `on.workflow_dispatch.inputs`; undefined accepts any names (up to the limit). */
  readonly inputs?: readonly string[];
  readonly required?: readonly string[];
}

export interface FakeGithubOptions {
  readonly owner: string;
  readonly repo: string;
  /** Workflows by file name or numeric id, as the URL names them. */
  readonly workflows: Readonly<Record<string, FakeWorkflow>>;
  /** Tokens GitHub accepts right now. */
  readonly tokens: readonly string[];
  /** Branches and tags a dispatch may name. */
  readonly refs?: readonly string[];
}

export interface AcceptedDispatch {
  readonly prefix: '' | '/api/v3';
  readonly owner: string;
  readonly repo: string;
  readonly workflow: string;
  readonly ref: string;
  readonly inputs: Readonly<Record<string, string>>;
  readonly token: string;
  readonly userAgent: string;
  readonly accept: string;
  readonly apiVersion: string;
}

export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly status: number | 'hang';
}

export type Fault = 500 | 502 | 503 | 429 | 'hang';

export interface FakeGithub {
  /** Base URL like api.github.com: `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** Base URL like GitHub Enterprise Server: `http://127.0.0.1:PORT/api/v3`. */
  readonly enterpriseUrl: string;
  readonly dispatches: AcceptedDispatch[];
  readonly requests: SeenRequest[];
  /** The next `count` requests (after none are pending) fail with `fault`. */
  failNext(count: number, fault: Fault): void;
  /** Drops faults not yet used. */
  clearFaults(): void;
  /** Replaces the accepted tokens: the old ones answer 401 Bad credentials from now on. */
  rotateTokens(tokens: readonly string[]): void;
  close(): Promise<void>;
}

const DISPATCH_PATH =
  /^(\/api\/v3)?\/repos\/([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\/actions\/workflows\/([A-Za-z0-9_.-]+)\/dispatches$/;
const ACCEPTED_MEDIA = new Set(['application/vnd.github+json', 'application/vnd.github.v3+json']);
const MAX_BODY = 1024 * 1024;

class Reject extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) reject(new Reject(413, 'Payload too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function bearer(req: IncomingMessage): string | undefined {
  const m = /^(?:Bearer|token)\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  return m?.[1];
}

function checkHeaders(req: IncomingMessage): void {
  // GitHub refuses anonymous clients outright.
  if (!req.headers['user-agent']) {
    throw new Reject(
      403,
      'Request forbidden by administrative rules. Please make sure your request has a User-Agent header',
    );
  }
  const accept = (req.headers.accept ?? '').split(',').map((s) => s.split(';')[0]!.trim().toLowerCase());
  if (!accept.some((a) => ACCEPTED_MEDIA.has(a))) {
    throw new Reject(
      415,
      `Unsupported 'Accept' header: ${JSON.stringify(req.headers.accept ?? '')}. Must accept 'application/vnd.github+json'`,
    );
  }
  const version = req.headers['x-github-api-version'];
  if (version !== GITHUB_API_VERSION) {
    throw new Reject(
      400,
      `API version '${String(version ?? '')}' is not supported. Send X-GitHub-Api-Version: ${GITHUB_API_VERSION}`,
    );
  }
}

function parseDispatch(
  text: string,
  workflow: FakeWorkflow,
  refs: readonly string[],
): { ref: string; inputs: Record<string, string> } {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Reject(400, 'Problems parsing JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new Reject(400, 'Problems parsing JSON');
  const { ref, inputs = {}, ...rest } = body as { ref?: unknown; inputs?: unknown };
  const extra = Object.keys(rest);
  if (extra.length > 0)
    throw new Reject(
      422,
      `Invalid request.\n\n${extra.map((k) => `"${k}"`).join(', ')} is not a permitted key.`,
    );
  if (typeof ref !== 'string' || ref === '')
    throw new Reject(422, 'Invalid request.\n\n"ref" wasn\'t supplied.');
  if (inputs === null || typeof inputs !== 'object' || Array.isArray(inputs)) {
    throw new Reject(422, "Invalid request.\n\nFor 'properties/inputs', is not an object.");
  }
  const entries = Object.entries(inputs as Record<string, unknown>);
  if (entries.length > MAX_DISPATCH_INPUTS) {
    throw new Reject(
      422,
      `you may only define up to ${MAX_DISPATCH_INPUTS} \`inputs\` for a \`workflow_dispatch\` event`,
    );
  }
  const bad = entries.filter(([, v]) => typeof v !== 'string').map(([k]) => k);
  if (bad.length > 0)
    throw new Reject(422, `Invalid request.\n\nInputs must be strings: ${JSON.stringify(bad)}`);
  if (workflow.inputs) {
    const unexpected = entries.map(([k]) => k).filter((k) => !workflow.inputs!.includes(k));
    if (unexpected.length > 0)
      throw new Reject(422, `Unexpected inputs provided: ${JSON.stringify(unexpected)}`);
  }
  for (const name of workflow.required ?? []) {
    if (!(name in inputs)) throw new Reject(422, `Required input '${name}' not provided`);
  }
  if (!refs.includes(ref.replace(/^refs\/(heads|tags)\//, '')))
    throw new Reject(422, `No ref found for: ${ref}`);
  return { ref, inputs: inputs as Record<string, string> };
}

export async function startFakeGithub(opts: FakeGithubOptions): Promise<FakeGithub> {
  let tokens = new Set(opts.tokens);
  const refs = opts.refs ?? ['main'];
  const dispatches: AcceptedDispatch[] = [];
  const requests: SeenRequest[] = [];
  const faults: Fault[] = [];
  const sockets = new Set<Socket>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number | 'hang'> {
    const path = (req.url ?? '/').split('?')[0]!;
    const m = DISPATCH_PATH.exec(path);
    const fault = faults.shift();
    if (fault === 'hang') return 'hang';
    if (fault !== undefined) {
      // Drain the body so the connection stays usable, as a real front end would.
      await readBody(req).catch(() => undefined);
      sendJson(
        res,
        fault,
        { message: fault === 429 ? 'API rate limit exceeded' : 'Server Error' },
        fault === 429 ? { 'retry-after': '0' } : {},
      );
      return fault;
    }
    try {
      if (!m) throw new Reject(404, 'Not Found');
      if (req.method !== 'POST') throw new Reject(404, 'Not Found');
      const token = bearer(req);
      if (req.headers.authorization === undefined) throw new Reject(401, 'Requires authentication');
      if (token === undefined || !tokens.has(token)) throw new Reject(401, 'Bad credentials');
      checkHeaders(req);
      const [, prefix, owner, repo, workflowName] = m;
      // GitHub hides repositories the token cannot see behind a 404.
      if (owner !== opts.owner || repo !== opts.repo) throw new Reject(404, 'Not Found');
      const workflow = opts.workflows[workflowName!];
      if (!workflow) throw new Reject(404, 'Not Found');
      const { ref, inputs } = parseDispatch(await readBody(req), workflow, refs);
      dispatches.push({
        prefix: prefix === '/api/v3' ? '/api/v3' : '',
        owner: owner,
        repo: repo,
        workflow: workflowName!,
        ref,
        inputs,
        token,
        userAgent: req.headers['user-agent'] ?? '',
        accept: req.headers.accept ?? '',
        apiVersion: String(req.headers['x-github-api-version']),
      });
      sendJson(res, 204);
      return 204;
    } catch (e) {
      const r = e instanceof Reject ? e : new Reject(500, 'Server Error');
      sendJson(
        res,
        r.status,
        { message: r.message, documentation_url: DOCS, status: String(r.status) },
        r.headers,
      );
      return r.status;
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).then(
      (status) => requests.push({ method: req.method ?? '', path: req.url ?? '', status }),
      () => res.destroy(),
    );
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url,
    enterpriseUrl: `${url}/api/v3`,
    dispatches,
    requests,
    failNext(count, fault) {
      for (let i = 0; i < count; i++) faults.push(fault);
    },
    clearFaults() {
      faults.length = 0;
    },
    rotateTokens(next) {
      tokens = new Set(next);
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
