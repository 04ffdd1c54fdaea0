import { createServer } from 'node:https';
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { functionTimeoutSeconds } from '../src/lib/config';
import { isListening, startAzurite } from '../src/local/azurite';
import { testTls } from './support/tls';

describe('test infrastructure', () => {
  it('starts Azurite on free loopback ports and stops it for good', async () => {
    const a = await startAzurite();
    const c = BlobServiceClient.fromConnectionString(a.connectionString);
    await c.getContainerClient('support-check').create();
    expect((await c.getContainerClient('support-check').getProperties()).etag).toBeTruthy();
    await a.stop();
    expect(await isListening(a.ports.blob)).toBe(false);
  });

  it('reads functionTimeout from host.json', () => {
    expect(functionTimeoutSeconds()).toBe(30 * 60);
  });

  it('makes workers trust the certificate made at test time', async () => {
    const srv = createServer(testTls(), (_q, s) => s.end('trusted'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const { port } = srv.address() as { port: number };
    const res = await fetch(`https://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('trusted');
    srv.close();
  });
});
