/**
 * One self-signed certificate for 127.0.0.1/localhost, made at test time, for every HTTPS fake
 * (ARM, Key Vault). The global setup writes it to a folder and points NODE_EXTRA_CA_CERTS at it,
 * so the real SDK clients in test workers and in child processes trust it like a real CA.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';

export interface TestTls {
  cert: string;
  key: string;
}

const CERT_ENV = 'BASM_TEST_TLS_DIR';

export async function createTestTls(): Promise<{ dir: string; tls: TestTls }> {
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keySize: 2048,
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  });
  const dir = mkdtempSync(join(tmpdir(), 'basm-tls-'));
  writeFileSync(join(dir, 'cert.pem'), pems.cert);
  writeFileSync(join(dir, 'key.pem'), pems.private);
  return { dir, tls: { cert: pems.cert, key: pems.private } };
}

/** The certificate the global setup made (inside a test worker or a child process of one). */
export function testTls(): TestTls {
  const dir = process.env[CERT_ENV];
  if (!dir) throw new Error(`${CERT_ENV} is not set: run the tests through vitest (global setup)`);
  return {
    cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    key: readFileSync(join(dir, 'key.pem'), 'utf8'),
  };
}

export { CERT_ENV };
