import { describe, it, expect } from 'vitest';
import { BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../src/local/azurite';
import { functionTimeoutSeconds } from '../src/lib/config';

describe('smoke', () => {
  it('starts azurite', async () => {
    const a = await startAzurite();
    const c = BlobServiceClient.fromConnectionString(a.connectionString);
    await c.getContainerClient('smoke').create();
    expect(functionTimeoutSeconds()).toBe(1800);
    await a.stop();
  });
});

describe('tls', () => {
  it('trusts the test certificate in workers', async () => {
    const https = await import('node:https');
    const { testTls } = await import('./support/tls');
    const srv = https.createServer(testTls(), (_q, s) => s.end('hi'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const port = (srv.address() as { port: number }).port;
    const res = await fetch(`https://127.0.0.1:${port}/`);
    expect(await res.text()).toBe('hi');
    srv.close();
  });
});
