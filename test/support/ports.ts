/** Loopback ports for tests. */
import { createServer } from 'node:net';

/**
 * A loopback port nothing listens on, for tests of a refused connection. Not for starting a
 * server: another process may take it once it is released (servers listen on port 0 instead).
 */
export function closedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
