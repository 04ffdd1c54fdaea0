/**
 * Storage clients built from the configuration: the host account (queue, table) and the account
 * holding staged VHDs. The one place that knows connection strings versus managed identity.
 */
import type { TokenCredential } from '@azure/identity';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import type { Config } from '../config/config';
import { hasStatus, storageError } from '../core/azure-errors';
import type { Logger } from '../core/log';
import { isLoopbackHost } from '../config/config';

export const REQUEST_QUEUE = 'stemcell-mirror-requests';
export const POISON_QUEUE = `${REQUEST_QUEUE}-poison`;
export const JOBS_TABLE = 'stemcellmirrorjobs';

function isLoopbackConnection(cs: string): boolean {
  const m = /TableEndpoint=([^;]+)/i.exec(cs) ?? /BlobEndpoint=([^;]+)/i.exec(cs);
  try {
    return m?.[1] !== undefined && isLoopbackHost(new URL(m[1]).hostname);
  } catch {
    return false;
  }
}

export function tableClient(config: Config, credential: () => TokenCredential): TableClient {
  const s = config.hostStorage;
  if (s.kind === 'connectionString') {
    // data-tables refuses plain http unless told; only loopback (Azurite) is ever http.
    return TableClient.fromConnectionString(s.connectionString, JOBS_TABLE, {
      allowInsecureConnection: isLoopbackConnection(s.connectionString),
    });
  }
  return new TableClient(s.tableServiceUrl, JOBS_TABLE, credential());
}

export function queueClient(
  config: Config,
  credential: () => TokenCredential,
  name = REQUEST_QUEUE,
): QueueClient {
  const s = config.hostStorage;
  if (s.kind === 'connectionString') return new QueueClient(s.connectionString, name);
  return new QueueClient(`${s.queueServiceUrl.replace(/\/$/, '')}/${name}`, credential());
}

export function vhdContainer(config: Config, credential: () => TokenCredential): ContainerClient {
  const s = config.vhdStorage;
  const service =
    s.kind === 'connectionString'
      ? BlobServiceClient.fromConnectionString(s.connectionString)
      : new BlobServiceClient(s.blobServiceUrl, credential());
  return service.getContainerClient(config.container);
}

/**
 * Makes sure the VHD container exists. The infra creates it and the app's role may not create
 * containers (Storage Blob Data Contributor may; a narrower custom role may not): a 403 here is
 * logged and the transfer goes on, and the first Put Page tells whether the container is really
 * there.
 */
export async function ensureContainer(container: ContainerClient, log: Logger): Promise<void> {
  try {
    await container.createIfNotExists();
  } catch (e) {
    if (!hasStatus(e, 403)) throw storageError(e, `Creating container ${container.containerName} failed`);
    log.warn('storage.container-create-forbidden', { container: container.containerName });
  }
}
