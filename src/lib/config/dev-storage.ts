/**
 * Development storage (Azurite), as the Azure SDKs and Core Tools define it: the well-known account
 * and key published in the Azurite README, on the standard ports 10000–10002. Only ever used on
 * loopback; it is no secret.
 */

/** The value of AzureWebJobsStorage that means "development storage". */
export const DEV_STORAGE = 'UseDevelopmentStorage=true';

export const DEV_STORAGE_ACCOUNT = 'devstoreaccount1';
export const DEV_STORAGE_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export interface DevStoragePorts {
  blob: number;
  queue: number;
  table: number;
}

/** The ports "development storage" means. */
export const DEV_STORAGE_PORTS: Readonly<DevStoragePorts> = { blob: 10000, queue: 10001, table: 10002 };

/** The connection string of an Azurite on 127.0.0.1 at `ports`. */
export function devStorageConnectionString(ports: DevStoragePorts = DEV_STORAGE_PORTS): string {
  const base = 'http://127.0.0.1';
  return (
    `DefaultEndpointsProtocol=http;AccountName=${DEV_STORAGE_ACCOUNT};AccountKey=${DEV_STORAGE_KEY};` +
    `BlobEndpoint=${base}:${ports.blob}/${DEV_STORAGE_ACCOUNT};` +
    `QueueEndpoint=${base}:${ports.queue}/${DEV_STORAGE_ACCOUNT};` +
    `TableEndpoint=${base}:${ports.table}/${DEV_STORAGE_ACCOUNT};`
  );
}
