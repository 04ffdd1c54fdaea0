import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { CERT_ENV, createTestTls } from './tls';

/** Runs once before the workers start: they inherit the environment set here. */
export default async function setup(): Promise<() => void> {
  const { dir } = await createTestTls();
  process.env[CERT_ENV] = dir;
  process.env.NODE_EXTRA_CA_CERTS = join(dir, 'cert.pem');
  return () => rmSync(dir, { recursive: true, force: true });
}
