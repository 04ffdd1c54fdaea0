import { execFileSync } from 'node:child_process';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { describe, expect, it } from 'vitest';
import { functionTimeoutSeconds } from '../../../src/lib/config/config';
import { isListening, startAzurite } from '../../../src/local/azurite';
import { ensureBuilt, ROOT } from '../../support/build';
import { testTls } from '../../support/tls';

describe('test infrastructure', () => {
  it('starts Azurite on free loopback ports and stops it for good', async () => {
    const a = await startAzurite();
    const c = BlobServiceClient.fromConnectionString(a.connectionString);
    await c.getContainerClient('support-check').create();
    expect((await c.getContainerClient('support-check').getProperties()).etag).toBeTruthy();
    await a.stop();
    expect(await isListening(a.ports.blob)).toBe(false);
  });

  it('takes Azurite down with the process that started it', async () => {
    ensureBuilt();
    const script =
      `require(${JSON.stringify(join(ROOT, 'dist', 'src', 'local', 'azurite.js'))})` +
      `.startAzurite().then((a) => { console.log(a.ports.blob); process.exit(0); });`;
    const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    const port = Number(out.trim());
    expect(port).toBeGreaterThan(0);
    const deadline = Date.now() + 10_000;
    while ((await isListening(port)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(await isListening(port)).toBe(false);
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
