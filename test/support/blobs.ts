/** Azurite with one container, for tests of code that writes blobs. */
import { BlobServiceClient, type ContainerClient, type PageBlobClient } from '@azure/storage-blob';
import { afterAll, beforeAll } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite';

export interface BlobTestbed {
  readonly container: ContainerClient;
  readonly connectionString: string;
  /** A page blob client under a name no other test of the file uses. */
  newBlob(): PageBlobClient;
}

/** Starts Azurite before the file's tests and stops it after; the container is made at start. */
export function useBlobContainer(name: string, prefix = 'blob'): BlobTestbed {
  let azurite: Azurite | undefined;
  let container: ContainerClient | undefined;
  let n = 0;
  beforeAll(async () => {
    azurite = await startAzurite();
    container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
    await container.create();
  });
  afterAll(async () => {
    await azurite?.stop();
  });
  const get = (): ContainerClient => {
    if (!container) throw new Error('the blob container is made in beforeAll');
    return container;
  };
  return {
    get container() {
      return get();
    },
    get connectionString() {
      if (!azurite) throw new Error('Azurite is started in beforeAll');
      return azurite.connectionString;
    },
    newBlob: () => get().getPageBlobClient(`${prefix}-${++n}.vhd`),
  };
}
