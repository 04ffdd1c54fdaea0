/**
 * A strict fake of the Azure Resource Manager routes of one Compute Gallery (GalleryRP), served over
 * HTTPS so the real @azure/arm-compute client talks to it, plus an App Service managed-identity token
 * endpoint (plain http, as in App Service) that issues the only bearer token ARM accepts.
 *
 * Strict means it refuses what Azure refuses: request bodies go through the published JSON schema,
 * then through the service-side rules the schema cannot express (version names, location, parent
 * definition, a fixed-VHD page blob as source, immutable definition properties).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type ServerResponse,
  type Server,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { text as readText } from 'node:stream/consumers';
import { Ajv, type ValidateFunction } from 'ajv';
import type { ContainerClient } from '@azure/storage-blob';
import { testTls } from '../support/tls';
import { sendJson } from './http';

export const API_VERSION = '2025-12-03';
const IDENTITY_API_VERSION = '2019-08-01';
const ARM_RESOURCE = 'https://management.azure.com';
const INT32_MAX = 2 ** 31 - 1;
const MIB = 1024 * 1024;

export interface BlobFacts {
  pageBlob: boolean;
  size: number;
  /** The last 512 bytes of the blob. */
  footer: Buffer;
}

export type LroStyle = 'azure-async-operation' | 'location';

export interface FakeArmOptions {
  blobExists(uri: string): Promise<BlobFacts | undefined>;
  subscriptionId: string;
  resourceGroup: string;
  galleryName: string;
  location: string;
  /** Client ids of user-assigned identities the token endpoint knows; others are refused. */
  userAssignedClientIds?: string[];
  /** Polls of the operation status before a create or delete completes (default 2). */
  pollsUntilDone?: number;
  lroStyle?: LroStyle;
  /** Page size of list answers (default 100); smaller values make clients follow nextLink. */
  pageSize?: number;
}

export interface LoggedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  status: number;
}

export interface TokenRequest {
  query: Record<string, string>;
  identityHeader: string | undefined;
  status: number;
}

export interface ArmError {
  code: string;
  message: string;
}

interface Operation {
  id: string;
  remaining: number;
  /** Applied when the operation ends; returns the error when it ends Failed. */
  complete: () => ArmError | undefined;
  /** The resource URL a PUT created (for the Location style final answer). */
  resourcePath: string | undefined;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  error: ArmError | undefined;
}

type Json = Record<string, unknown>;

export type FaultStatus = 404 | 409 | 429 | 500 | 503;

export interface FaultOptions {
  retryAfterSeconds?: number;
  /** ARM's error code; by default the one Azure gives for the status. */
  code?: string;
  message?: string;
  /** Only requests of this method… */
  method?: string;
  /** …and whose path contains this. */
  pathIncludes?: string;
}

interface Fault {
  status: FaultStatus;
  retryAfter: number;
  code: string | undefined;
  message: string | undefined;
  method: string | undefined;
  pathIncludes: string | undefined;
}

const DEFAULT_FAULT_CODES: Record<FaultStatus, string> = {
  404: 'ResourceNotFound',
  409: 'Conflict',
  429: 'TooManyRequests',
  500: 'InternalServerError',
  503: 'ServiceUnavailable',
};

export interface FakeArm {
  /** https://127.0.0.1:PORT, the ARM endpoint for ComputeManagementClient. */
  readonly endpoint: string;
  /** Value for IDENTITY_ENDPOINT. */
  readonly identityEndpoint: string;
  /** Value for IDENTITY_HEADER. */
  readonly identityHeader: string;
  /** Every ARM request in order (faulted and rejected ones included). */
  readonly requests: LoggedRequest[];
  readonly tokenRequests: TokenRequest[];
  /** Stored resources as ARM would answer a GET, by name. */
  image(name: string): Json | undefined;
  version(definition: string, name: string): Json | undefined;
  /**
   * Answers the next `count` ARM requests (of those `fault.method`/`fault.pathIncludes` match) with
   * `status` and Azure's error code for it, or `fault.code`. A 429 carries Retry-After:
   * `retryAfterSeconds` (a number as the third argument means just that).
   */
  failNext(count: number, status: FaultStatus, fault?: number | FaultOptions): void;
  /**
   * Eventual consistency: after an image definition is created, its first `count` version PUTs
   * answer 404 ParentResourceNotFound, as ARM does while the parent has not reached every instance.
   */
  setParentLag(count: number): void;
  /** A version a BOSH director created itself (Succeeded), with the tags its CPI writes. */
  seedVersion(definition: string, name: string, tags: Record<string, string>): void;
  /** Replaces a version's tags, as a director's CPI does when it starts or stops using it. */
  setVersionTags(definition: string, name: string, tags: Record<string, string>): void;
  /** The creation of this version ends Failed with this error. */
  failVersion(name: string, error: ArmError): void;
  /** Lets the next creation of this version succeed again. */
  clearVersionFailure(name: string): void;
  setLroStyle(style: LroStyle): void;
  setPollsUntilDone(n: number): void;
  /** Answers 403 to operation-status requests, as for an identity whose role covers only the gallery. */
  forbidOperationStatus(on: boolean): void;
  /** Invalidates the issued token: ARM answers 401 to it from now on. */
  revokeToken(): void;
  /** Forgets resources, operations, faults and logs (the issued token stays valid). */
  reset(): void;
  close(): Promise<void>;
}

/** What the fake needs to know of a source blob, read from a real container (Azurite). */
export async function pageBlobFacts(container: ContainerClient, uri: string): Promise<BlobFacts | undefined> {
  const name = decodeURIComponent(new URL(uri).pathname.split('/').slice(3).join('/'));
  const blob = container.getBlobClient(name);
  if (!(await blob.exists())) return undefined;
  const props = await blob.getProperties();
  const size = props.contentLength ?? 0;
  return {
    pageBlob: props.blobType === 'PageBlob',
    size,
    footer: await blob.downloadToBuffer(size - 512, 512),
  };
}

// --- the oracle for fixed VHDs, written apart from the app's own VHD code on purpose ---

/** Why `footer` is not the footer of a fixed VHD of `blobSize` bytes, or undefined when it is. */
export function fixedVhdFooterProblem(footer: Buffer, blobSize: number): string | undefined {
  if (footer.length !== 512) return 'the footer is not 512 bytes';
  if (footer.toString('latin1', 0, 8) !== 'conectix') return 'the footer cookie is not "conectix"';
  const diskType = footer.readUInt32BE(60);
  if (diskType !== 2) return `the disk type is ${diskType}, not 2 (fixed)`;
  let sum = 0;
  for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += footer[i]!;
  const expected = ~sum >>> 0;
  if (footer.readUInt32BE(64) !== expected) return 'the footer checksum is wrong';
  const current = Number(footer.readBigUInt64BE(48));
  if (current !== blobSize - 512) return `the current size ${current} is not the blob size less 512`;
  if (current % MIB !== 0) return `the virtual size ${current} is not a whole number of MiB`;
  return undefined;
}

/**
 * A fixed-VHD footer for a disk of `virtualSize` bytes, for tests to stage blobs with. `diskType` and
 * `checksumDelta` make broken ones.
 */
export function buildVhdFooter(
  virtualSize: number,
  o: { diskType?: number; checksumDelta?: number } = {},
): Buffer {
  const f = Buffer.alloc(512);
  f.write('conectix', 0, 'latin1');
  f.writeUInt32BE(2, 8); // features: reserved bit
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(0xffffffffffffffffn, 16); // data offset: none for fixed disks
  f.write('basm', 28, 'latin1');
  f.write('Wi2k', 36, 'latin1');
  f.writeBigUInt64BE(BigInt(virtualSize), 40);
  f.writeBigUInt64BE(BigInt(virtualSize), 48);
  f.writeUInt32BE(o.diskType ?? 2, 60);
  randomBytes(16).copy(f, 68);
  let sum = 0;
  for (const b of f) sum += b;
  f.writeUInt32BE(((~sum >>> 0) + (o.checksumDelta ?? 0)) >>> 0, 64);
  return f;
}

// --- request bodies ---

function loadValidators(): { image: ValidateFunction; version: ValidateFunction } {
  // Derived from the published Azure REST spec; azure-specs/README.md says from which file and how.
  const file = resolve(__dirname, 'azure-specs', 'gallery-image-put.schema.json');
  const schema = JSON.parse(readFileSync(file, 'utf8')) as { $id: string };
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
  });
  ajv.addFormat('date-time', (s: string) => !Number.isNaN(Date.parse(s)));
  ajv.addSchema(schema);
  return {
    image: ajv.compile({ $ref: `${schema.$id}#/definitions/GalleryImage` }),
    version: ajv.compile({ $ref: `${schema.$id}#/definitions/GalleryImageVersion` }),
  };
}

class HttpFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const bad = (message: string) => new HttpFailure(400, 'InvalidParameter', message);
const normRegion = (r: string) => r.replace(/\s+/g, '').toLowerCase();

function obj(v: unknown): Json | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : undefined;
}

/** ARM answers carry a request id. */
function send(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  sendJson(res, status, body, { ...headers, 'x-ms-request-id': randomUUID() });
}

/** The account name of a blob URL: path-style for loopback emulators, the first host label in Azure. */
function accountOfBlobUrl(uri: string): string | undefined {
  let u: URL;
  try {
    u = new URL(uri);
  } catch {
    return undefined;
  }
  const loopback = u.hostname === '127.0.0.1' || u.hostname === 'localhost';
  return loopback ? u.pathname.split('/')[1] : u.hostname.split('.')[0];
}

export async function startFakeArm(opts: FakeArmOptions): Promise<FakeArm> {
  const validators = loadValidators();
  const identityHeader = randomBytes(16).toString('hex');
  let token = randomBytes(32).toString('base64url');
  let lroStyle: LroStyle = opts.lroStyle ?? 'azure-async-operation';
  let pollsUntilDone = opts.pollsUntilDone ?? 2;
  const pageSize = opts.pageSize ?? 100;
  const requests: LoggedRequest[] = [];
  let operationStatusForbidden = false;
  const tokenRequests: TokenRequest[] = [];
  const images = new Map<string, Json>();
  const versions = new Map<string, Map<string, Json>>();
  const operations = new Map<string, Operation>();
  const versionFailures = new Map<string, ArmError>();
  let faults: Fault[] = [];
  let parentLag = 0;
  const lagging = new Map<string, number>();
  let endpoint = '';

  const galleryPath =
    `/subscriptions/${opts.subscriptionId}/resourceGroups/${opts.resourceGroup}` +
    `/providers/Microsoft.Compute/galleries/${opts.galleryName}`;
  const galleryId = galleryPath;
  const imageId = (name: string) => `${galleryId}/images/${name}`;
  const versionId = (def: string, name: string) => `${imageId(def)}/versions/${name}`;

  const galleryResource = (): Json => ({
    id: galleryId,
    name: opts.galleryName,
    type: 'Microsoft.Compute/galleries',
    location: opts.location,
    properties: {
      provisioningState: 'Succeeded',
      identifier: { uniqueName: `${opts.subscriptionId}-${opts.galleryName}` },
    },
  });

  function startOperation(
    complete: () => ArmError | undefined,
    resourcePath: string | undefined,
  ): { headers: Record<string, string>; op: Operation } {
    const op: Operation = {
      id: randomUUID(),
      remaining: pollsUntilDone,
      complete,
      resourcePath,
      status: 'InProgress',
      error: undefined,
    };
    operations.set(op.id, op);
    const base = `${endpoint}/subscriptions/${opts.subscriptionId}/providers/Microsoft.Compute/locations/${opts.location}`;
    const headers: Record<string, string> =
      lroStyle === 'azure-async-operation'
        ? { 'azure-asyncoperation': `${base}/operations/${op.id}?api-version=${API_VERSION}` }
        : { location: `${base}/operationResults/${op.id}?api-version=${API_VERSION}` };
    return { headers, op };
  }

  /** One status request: counts down, then applies the operation's effect once. */
  function advance(op: Operation): void {
    if (op.status !== 'InProgress') return;
    op.remaining -= 1;
    if (op.remaining > 0) return;
    op.error = op.complete();
    op.status = op.error ? 'Failed' : 'Succeeded';
  }

  function page(items: Json[], query: Record<string, string>, path: string): Json {
    const skip = Number(query.$skiptoken ?? '0');
    const value = items.slice(skip, skip + pageSize);
    const next = skip + pageSize < items.length;
    return {
      value,
      ...(next
        ? { nextLink: `${endpoint}${path}?api-version=${API_VERSION}&$skiptoken=${skip + pageSize}` }
        : {}),
    };
  }

  // --- image definitions ---

  const IMMUTABLE = ['osType', 'osState', 'hyperVGeneration', 'architecture'] as const;

  function putImage(
    name: string,
    body: Json,
  ): { status: number; body: Json; headers: Record<string, string> } {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,78}[A-Za-z0-9]$/.test(name))
      throw bad(`Image definition name "${name}" is invalid`);
    if (!validators.image(body))
      throw bad(`Invalid GalleryImage: ${JSON.stringify(validators.image.errors)}`);
    if (normRegion(String(body.location)) !== normRegion(opts.location)) {
      throw bad(`The location "${String(body.location)}" must be the gallery's location "${opts.location}"`);
    }
    const props = obj(body.properties)!;
    const existing = images.get(name);
    if (existing) {
      const old = obj(existing.properties)!;
      const defaults: Json = { hyperVGeneration: 'V1', architecture: 'x64' };
      for (const key of IMMUTABLE) {
        const before = old[key] ?? defaults[key];
        const after = props[key] ?? defaults[key];
        if (before !== after) {
          throw new HttpFailure(
            409,
            'PropertyChangeNotAllowed',
            `Changing property 'galleryImage.properties.${key}' is not allowed.`,
          );
        }
      }
      if (JSON.stringify(old.identifier) !== JSON.stringify(props.identifier)) {
        throw new HttpFailure(
          409,
          'PropertyChangeNotAllowed',
          "Changing property 'galleryImage.properties.identifier' is not allowed.",
        );
      }
    }
    const resource: Json = {
      id: imageId(name),
      name,
      type: 'Microsoft.Compute/galleries/images',
      location: opts.location,
      ...(body.tags ? { tags: body.tags } : {}),
      properties: { ...props, provisioningState: existing ? 'Updating' : 'Creating' },
    };
    images.set(name, resource);
    if (!existing && parentLag > 0) lagging.set(name, parentLag);
    if (!versions.has(name)) versions.set(name, new Map());
    const { headers } = startOperation(() => {
      (resource.properties as Json).provisioningState = 'Succeeded';
      return undefined;
    }, imageId(name));
    return { status: existing ? 200 : 201, body: resource, headers };
  }

  // --- image versions ---

  async function checkSource(source: Json | undefined): Promise<void> {
    const accountId = source?.storageAccountId;
    const uri = source?.uri;
    if (typeof accountId !== 'string' || accountId === '') {
      throw bad('storageProfile.osDiskImage.source.storageAccountId is required for a VHD source');
    }
    if (typeof uri !== 'string' || uri === '') throw bad('storageProfile.osDiskImage.source.uri is required');
    const m =
      /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/([a-z0-9]{3,24})$/i.exec(
        accountId,
      );
    if (!m) throw bad(`"${accountId}" is not the id of a storage account`);
    if (accountOfBlobUrl(uri)?.toLowerCase() !== m[1]!.toLowerCase()) {
      throw bad(`The blob "${uri}" is not in storage account "${m[1]}"`);
    }
    const blob = await opts.blobExists(uri);
    if (!blob) throw bad(`The blob "${uri}" does not exist`);
    if (blob.size % 512 !== 0) throw bad(`The blob size ${blob.size} is not a multiple of 512 bytes`);
    if (!blob.pageBlob) throw bad(`The blob "${uri}" is not a page blob`);
    const problem = fixedVhdFooterProblem(blob.footer, blob.size);
    if (problem) throw bad(`The blob "${uri}" is not a fixed VHD: ${problem}`);
  }

  function checkVersionName(name: string): void {
    const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(name);
    if (!m || m.slice(1).some((p) => Number(p) > INT32_MAX)) {
      throw bad(
        `The gallery image version name "${name}" is invalid: it must be Major(int32).Minor(int32).Patch(int32)`,
      );
    }
  }

  async function putVersion(
    def: string,
    name: string,
    body: Json,
  ): Promise<{ status: number; body: Json; headers: Record<string, string> }> {
    const lag = lagging.get(def) ?? 0;
    if (lag > 0) lagging.set(def, lag - 1);
    if (!images.has(def) || lag > 0) {
      throw new HttpFailure(
        404,
        'ParentResourceNotFound',
        `Can not perform requested operation on nested resource. Parent resource '${opts.galleryName}/${def}' not found.`,
      );
    }
    checkVersionName(name);
    if (!validators.version(body))
      throw bad(`Invalid GalleryImageVersion: ${JSON.stringify(validators.version.errors)}`);
    if (normRegion(String(body.location)) !== normRegion(opts.location)) {
      throw bad(`The location "${String(body.location)}" must be the gallery's location "${opts.location}"`);
    }
    const tags = obj(body.tags) ?? {};
    if (Object.keys(tags).length > 50) throw bad('A resource can have at most 50 tags');
    for (const [k, v] of Object.entries(tags)) {
      if (k.length > 512 || /[<>%&\\?/]/.test(k))
        throw new HttpFailure(400, 'InvalidTagNameCharacters', `Tag name "${k}" is invalid`);
      if (String(v).length > 256) throw bad(`The value of tag "${k}" is longer than 256 characters`);
    }
    const props = obj(body.properties) ?? {};
    const publishing = obj(props.publishingProfile) ?? {};
    const targets = Array.isArray(publishing.targetRegions) ? (publishing.targetRegions as Json[]) : [];
    if (
      targets.length > 0 &&
      !targets.some((t) => normRegion(String(t.name)) === normRegion(opts.location))
    ) {
      throw bad(`The target regions must include the gallery's region "${opts.location}"`);
    }
    const existing = versions.get(def)!.get(name);
    const source = obj(obj(obj(props.storageProfile)?.osDiskImage)?.source);
    if (existing) {
      const oldSource = obj(obj(obj(obj(existing.properties)?.storageProfile)?.osDiskImage)?.source);
      if (JSON.stringify(oldSource) !== JSON.stringify(source)) {
        throw new HttpFailure(
          409,
          'PropertyChangeNotAllowed',
          "Changing property 'galleryImageVersion.properties.storageProfile' is not allowed.",
        );
      }
    } else {
      await checkSource(source);
    }
    const resource: Json = {
      id: versionId(def, name),
      name,
      type: 'Microsoft.Compute/galleries/images/versions',
      location: opts.location,
      tags,
      properties: {
        ...props,
        publishingProfile: { ...publishing, publishedDate: new Date().toISOString() },
        storageProfile: {
          ...(obj(props.storageProfile) ?? {}),
          osDiskImage: { ...(obj(obj(props.storageProfile)?.osDiskImage) ?? {}), sizeInGB: 5 },
        },
        provisioningState: existing ? 'Updating' : 'Creating',
      },
    };
    versions.get(def)!.set(name, resource);
    const { headers } = startOperation(
      () => {
        const failure = versionFailures.get(name);
        (resource.properties as Json).provisioningState = failure ? 'Failed' : 'Succeeded';
        return failure;
      },
      versionId(def, name),
    );
    return { status: existing ? 200 : 201, body: resource, headers };
  }

  // --- routing ---

  function operationAnswer(res: ServerResponse, id: string, style: LroStyle): void {
    const op = operations.get(id);
    if (!op) throw new HttpFailure(404, 'NotFound', `Operation ${id} not found`);
    advance(op);
    if (style === 'azure-async-operation') {
      send(res, 200, {
        name: op.id,
        status: op.status,
        startTime: new Date().toISOString(),
        ...(op.error ? { error: op.error } : {}),
      });
      return;
    }
    if (op.status === 'InProgress') {
      const loc = `${endpoint}/subscriptions/${opts.subscriptionId}/providers/Microsoft.Compute/locations/${opts.location}/operationResults/${op.id}?api-version=${API_VERSION}`;
      send(res, 202, undefined, { location: loc });
    } else if (op.error) {
      send(res, 400, { error: op.error });
    } else if (op.resourcePath) {
      send(res, 200, lookup(op.resourcePath));
    } else {
      send(res, 204, undefined);
    }
  }

  function lookup(resourcePath: string): Json | undefined {
    const rest = resourcePath.slice(galleryPath.length).split('/').filter(Boolean);
    if (rest[0] !== 'images' || !rest[1]) return undefined;
    if (rest.length === 2) return images.get(rest[1]);
    return versions.get(rest[1])?.get(rest[3] ?? '');
  }

  function deleteWith(res: ServerResponse, exists: boolean, remove: () => void): void {
    if (!exists) {
      send(res, 204, undefined);
      return;
    }
    const { headers } = startOperation(() => {
      remove();
      return undefined;
    }, undefined);
    send(res, 202, undefined, headers);
  }

  async function route(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    body: Json | undefined,
  ): Promise<void> {
    const method = req.method ?? 'GET';
    const path = url.pathname;
    const query = Object.fromEntries(url.searchParams);
    const opMatch =
      /^\/subscriptions\/([^/]+)\/providers\/Microsoft\.Compute\/locations\/[^/]+\/(operations|operationResults)\/([^/]+)$/i.exec(
        path,
      );
    if (opMatch && method === 'GET') {
      if (operationStatusForbidden) {
        throw new HttpFailure(
          403,
          'AuthorizationFailed',
          `The client does not have authorization to perform action 'Microsoft.Compute/locations/operations/read' over scope '${path}'.`,
        );
      }
      operationAnswer(res, opMatch[3]!, opMatch[2] === 'operations' ? 'azure-async-operation' : 'location');
      return;
    }
    const prefix = `/subscriptions/${opts.subscriptionId}/resourceGroups/${opts.resourceGroup}/providers/Microsoft.Compute/galleries/`;
    if (!path.toLowerCase().startsWith(prefix.toLowerCase())) {
      throw new HttpFailure(
        404,
        'ResourceGroupNotFound',
        `Resource group or subscription of ${path} not found`,
      );
    }
    const parts = path.slice(prefix.length).split('/');
    const [gallery, imagesSeg, def, versionsSeg, ver] = parts;
    // Azure carries on with an operation whether or not anyone polls it. While the status URL is
    // forbidden the client can only watch the resource: each read of it stands for time passing.
    if (method === 'GET' && operationStatusForbidden) {
      for (const op of operations.values()) {
        if (op.resourcePath?.toLowerCase() === path.toLowerCase()) advance(op);
      }
    }
    if (gallery !== opts.galleryName) {
      throw new HttpFailure(
        404,
        'ResourceNotFound',
        `The Resource 'Microsoft.Compute/galleries/${gallery}' was not found.`,
      );
    }
    if (parts.length === 1 && method === 'GET') return send(res, 200, galleryResource());
    if (
      imagesSeg !== 'images' ||
      parts.length > 5 ||
      (versionsSeg !== undefined && versionsSeg !== 'versions')
    ) {
      throw new HttpFailure(400, 'InvalidResourceType', `No route for ${method} ${path}`);
    }
    if (def === undefined) {
      if (method === 'GET') return send(res, 200, page([...images.values()], query, path));
    } else if (versionsSeg === undefined) {
      const image = images.get(def);
      if (method === 'GET') {
        if (!image)
          throw new HttpFailure(
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.Compute/galleries/${gallery}/images/${def}' was not found.`,
          );
        return send(res, 200, image);
      }
      if (method === 'PUT') {
        const r = putImage(def, body ?? {});
        return send(res, r.status, r.body, r.headers);
      }
      if (method === 'DELETE') {
        if ((versions.get(def)?.size ?? 0) > 0) {
          throw new HttpFailure(
            409,
            'CannotDeleteResource',
            `Can not delete resource before nested resources are deleted.`,
          );
        }
        return deleteWith(res, image !== undefined, () => {
          images.delete(def);
          versions.delete(def);
        });
      }
    } else if (ver === undefined) {
      if (method === 'GET') {
        if (!images.has(def))
          throw new HttpFailure(
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.Compute/galleries/${gallery}/images/${def}' was not found.`,
          );
        return send(res, 200, page([...versions.get(def)!.values()], query, path));
      }
    } else {
      const existing = versions.get(def)?.get(ver);
      if (method === 'GET') {
        if (!existing) {
          throw new HttpFailure(
            404,
            'ResourceNotFound',
            `The Resource 'Microsoft.Compute/galleries/${gallery}/images/${def}/versions/${ver}' was not found.`,
          );
        }
        return send(res, 200, existing);
      }
      if (method === 'PUT') {
        const r = await putVersion(def, ver, body ?? {});
        return send(res, r.status, r.body, r.headers);
      }
      if (method === 'DELETE') {
        if (existing) (existing.properties as Json).provisioningState = 'Deleting';
        return deleteWith(res, existing !== undefined, () => versions.get(def)?.delete(ver));
      }
    }
    throw new HttpFailure(405, 'MethodNotAllowed', `${method} is not supported on ${path}`);
  }

  async function handleArm(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', endpoint);
    const text = await readText(req);
    const entry: LoggedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      body: undefined,
      status: 0,
    };
    requests.push(entry);
    const answer = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
      entry.status = status;
      send(res, status, { error: { code, message } }, headers);
    };
    try {
      if (text) {
        try {
          entry.body = JSON.parse(text);
        } catch {
          return answer(400, 'InvalidRequestContent', 'The request content is not valid JSON');
        }
      }
      const auth = req.headers.authorization;
      if (auth !== `Bearer ${token}`) {
        return answer(
          401,
          auth ? 'InvalidAuthenticationToken' : 'AuthenticationFailed',
          auth
            ? 'The access token is invalid.'
            : "Authentication failed. The 'Authorization' header is missing.",
          {
            'www-authenticate':
              'Bearer error="invalid_token", error_description="The access token is invalid"',
          },
        );
      }
      const path = url.pathname;
      const at = faults.findIndex(
        (f) =>
          (f.method === undefined || f.method === entry.method) &&
          (f.pathIncludes === undefined || path.includes(f.pathIncludes)),
      );
      const fault = at < 0 ? undefined : faults.splice(at, 1)[0];
      if (fault) {
        const headers: Record<string, string> =
          fault.status === 429 ? { 'retry-after': String(fault.retryAfter) } : {};
        const code = fault.code ?? DEFAULT_FAULT_CODES[fault.status];
        return answer(fault.status, code, fault.message ?? `Injected ${fault.status}`, headers);
      }
      const apiVersion = url.searchParams.get('api-version');
      if (apiVersion === null) {
        return answer(
          400,
          'MissingApiVersionParameter',
          'The api-version query parameter (?api-version=) is required for all requests.',
        );
      }
      if (apiVersion !== API_VERSION) {
        return answer(
          400,
          'InvalidApiVersionParameter',
          `The api-version '${apiVersion}' is invalid. The supported version is '${API_VERSION}'.`,
        );
      }
      const originalEnd = res.end.bind(res);
      res.end = ((...args: Parameters<ServerResponse['end']>) => {
        entry.status = res.statusCode;
        return originalEnd(...args);
      }) as ServerResponse['end'];
      await route(req, res, url, obj(entry.body));
    } catch (e) {
      if (e instanceof HttpFailure) return answer(e.status, e.code, e.message, e.headers);
      return answer(500, 'InternalServerError', e instanceof Error ? e.message : String(e));
    }
  }

  function handleIdentity(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const query = Object.fromEntries(url.searchParams);
    const header = req.headers['x-identity-header'];
    const entry: TokenRequest = {
      query,
      identityHeader: typeof header === 'string' ? header : undefined,
      status: 0,
    };
    tokenRequests.push(entry);
    const fail = (status: number, error: string, description: string) => {
      entry.status = status;
      send(res, status, { error, error_description: description });
    };
    if (req.method !== 'GET' || url.pathname !== '/msi/token') return fail(404, 'not_found', 'No such route');
    if (entry.identityHeader !== identityHeader)
      return fail(401, 'unauthorized', 'The x-identity-header is missing or wrong');
    if (query['api-version'] !== IDENTITY_API_VERSION)
      return fail(400, 'invalid_request', 'Unsupported api-version');
    const resource = query.resource?.replace(/\/+$/, '');
    if (!resource) return fail(400, 'invalid_request', 'resource is required');
    const clientId = query.client_id;
    if (clientId !== undefined && !(opts.userAssignedClientIds ?? []).includes(clientId)) {
      return fail(400, 'invalid_request', `No user-assigned identity with client id ${clientId}`);
    }
    entry.status = 200;
    // Only a token for the management resource opens ARM; others are well-formed but useless.
    const issued = resource === ARM_RESOURCE ? token : randomBytes(32).toString('base64url');
    send(res, 200, {
      access_token: issued,
      expires_on: String(Math.floor(Date.now() / 1000) + 3600),
      resource: query.resource,
      token_type: 'Bearer',
      ...(clientId ? { client_id: clientId } : {}),
    });
  }

  const tls = testTls();
  const arm = createHttpsServer({ cert: tls.cert, key: tls.key }, (req, res) => {
    handleArm(req, res).catch((e: unknown) =>
      send(res, 500, { error: { code: 'InternalServerError', message: String(e) } }),
    );
  });
  const identity = createHttpServer(handleIdentity);
  const listen = (s: Server) =>
    new Promise<number>((ok) => s.listen(0, '127.0.0.1', () => ok((s.address() as AddressInfo).port)));
  const armPort = await listen(arm);
  const identityPort = await listen(identity);
  endpoint = `https://127.0.0.1:${armPort}`;

  return {
    endpoint,
    identityEndpoint: `http://127.0.0.1:${identityPort}/msi/token`,
    identityHeader,
    requests,
    tokenRequests,
    image: (name) => images.get(name),
    version: (def, name) => versions.get(def)?.get(name),
    failNext: (count, status, fault = {}) => {
      const o: FaultOptions = typeof fault === 'number' ? { retryAfterSeconds: fault } : fault;
      for (let i = 0; i < count; i++) {
        faults.push({
          status,
          retryAfter: o.retryAfterSeconds ?? 0,
          code: o.code,
          message: o.message,
          method: o.method,
          pathIncludes: o.pathIncludes,
        });
      }
    },
    setParentLag: (count) => (parentLag = count),
    seedVersion: (definition, name, tags) => {
      if (!versions.has(definition)) versions.set(definition, new Map());
      versions.get(definition)!.set(name, {
        id: versionId(definition, name),
        name,
        type: 'Microsoft.Compute/galleries/images/versions',
        location: opts.location,
        tags: { ...tags },
        properties: {
          publishingProfile: { targetRegions: [{ name: opts.location, regionalReplicaCount: 1 }] },
          storageProfile: { osDiskImage: { hostCaching: 'ReadOnly', sizeInGB: 5 } },
          provisioningState: 'Succeeded',
        },
      });
    },
    setVersionTags: (definition, name, tags) => {
      const v = versions.get(definition)?.get(name);
      if (!v) throw new Error(`no version ${definition}/${name}`);
      v.tags = { ...tags };
    },
    failVersion: (name, error) => versionFailures.set(name, error),
    clearVersionFailure: (name) => void versionFailures.delete(name),
    setLroStyle: (style) => (lroStyle = style),
    setPollsUntilDone: (n) => (pollsUntilDone = n),
    forbidOperationStatus: (on) => (operationStatusForbidden = on),
    revokeToken: () => (token = randomBytes(32).toString('base64url')),
    reset: () => {
      images.clear();
      versions.clear();
      operations.clear();
      versionFailures.clear();
      faults = [];
      parentLag = 0;
      lagging.clear();
      requests.length = 0;
      tokenRequests.length = 0;
      lroStyle = opts.lroStyle ?? 'azure-async-operation';
      pollsUntilDone = opts.pollsUntilDone ?? 2;
    },
    close: async () => {
      arm.closeAllConnections();
      identity.closeAllConnections();
      await Promise.all([
        new Promise<void>((ok) => arm.close(() => ok())),
        new Promise<void>((ok) => identity.close(() => ok())),
      ]);
    },
  };
}
