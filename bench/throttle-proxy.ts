/**
 * A loopback HTTP proxy that puts production's rate limits in front of a local server: Put Page
 * request bodies paced per blob (Azure's throughput target for one page blob, ~60 MiB/s) in front of
 * Azurite, and response bodies paced per proxy (the download link, 100 MB/s) in front of the fake
 * bosh.io. Everything else passes through untouched. It counts the Put Page bytes of each blob, so a
 * run can tell how many transfers really reached the sink.
 */
import { Agent, createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A token bucket on a virtual clock: `take(n)` resolves when n more bytes fit the rate. Up to
 * `burstBytes` may go at once after an idle spell, which also absorbs the timers' millisecond
 * jitter, so the long-run rate is exact.
 */
export class Pacer {
  /** The moment (seconds) up to which the rate is spent. */
  private spentUntil = 0;
  private booked = false;
  /** Seconds, after the first booking, in which the rate went unused (nothing was there to send). */
  idleSeconds = 0;
  constructor(
    readonly bytesPerSecond: number,
    private readonly burstBytes = 1024 * 1024,
  ) {
    if (!(bytesPerSecond > 0)) throw new Error(`a pacer needs a positive rate, got ${bytesPerSecond}`);
  }

  /** Seconds to wait before n bytes may go; books them. */
  book(n: number, nowSeconds = performance.now() / 1000): number {
    const burstSeconds = this.burstBytes / this.bytesPerSecond;
    // Before the first byte nothing was waiting to go: that time is not the sink's idle time.
    if (this.booked) this.idleSeconds += Math.max(0, nowSeconds - burstSeconds - this.spentUntil);
    this.booked = true;
    this.spentUntil = Math.max(this.spentUntil, nowSeconds - burstSeconds);
    this.spentUntil += n / this.bytesPerSecond;
    return Math.max(0, this.spentUntil - nowSeconds);
  }

  async take(n: number): Promise<void> {
    const wait = this.book(n);
    if (wait > 0) await sleep(wait * 1000);
  }
}

export interface ThrottleProxyOptions {
  /** The server behind the proxy, on loopback. */
  targetPort: number;
  /** Put Page (PUT …?comp=page) request bodies, per blob path; unpaced when undefined. */
  putPageBytesPerSecond?: number;
  /** Response bodies, all requests together; unpaced when undefined. */
  responseBytesPerSecond?: number;
}

export interface BlobPutStats {
  puts: number;
  bytes: number;
  /** Seconds between its first and last paced byte in which the cap went unused; 0 unpaced. */
  idleSeconds: number;
  /**
   * Seconds each Put Page waited, its body all forwarded, for the server's answer: long waits mean
   * the server behind the proxy, not the cap, held the rate down.
   */
  answerWaits: number[];
}

/** What the proxy counts itself; the idle time comes from the blob's pacer. */
type PutCounts = Omit<BlobPutStats, 'idleSeconds'>;

export interface ThrottleProxy {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  /** Put Page requests and body bytes per blob path (`/account/container/blob`). */
  putPages(): Map<string, BlobPutStats>;
  /** Response body bytes sent to clients, all requests. */
  responseBytes(): number;
  close(): Promise<void>;
}

function isPutPage(req: IncomingMessage, url: URL): boolean {
  return req.method === 'PUT' && url.searchParams.get('comp') === 'page';
}

/** Copies `from` into `to` chunk by chunk, each chunk let through by `pace`, with backpressure. */
async function pump(
  from: Readable,
  to: Writable,
  pace: ((n: number) => Promise<void>) | undefined,
  count: (n: number) => void,
): Promise<void> {
  for await (const chunk of from) {
    const b = chunk as Buffer;
    if (pace) await pace(b.length);
    count(b.length);
    if (to.destroyed) return;
    if (!to.write(b)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          to.off('drain', done);
          to.off('close', done);
          resolve();
        };
        to.once('drain', done);
        to.once('close', done);
      });
    }
  }
}

export async function startThrottleProxy(o: ThrottleProxyOptions): Promise<ThrottleProxy> {
  const agent = new Agent({ keepAlive: true });
  const blobPacers = new Map<string, Pacer>();
  const responsePacer =
    o.responseBytesPerSecond === undefined ? undefined : new Pacer(o.responseBytesPerSecond);
  const stats = new Map<string, PutCounts>();
  const sockets = new Set<Socket>();
  let responseBytes = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    let pace: ((n: number) => Promise<void>) | undefined;
    let stat: PutCounts | undefined;
    if (isPutPage(req, url)) {
      const blob = url.pathname;
      stat = stats.get(blob) ?? { puts: 0, bytes: 0, answerWaits: [] };
      stats.set(blob, stat);
      stat.puts++;
      if (o.putPageBytesPerSecond !== undefined) {
        let p = blobPacers.get(blob);
        if (!p) blobPacers.set(blob, (p = new Pacer(o.putPageBytesPerSecond)));
        const pacer = p;
        pace = (n) => pacer.take(n);
      }
    }
    const upstream = request({
      host: '127.0.0.1',
      port: o.targetPort,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
    });
    // Either side going away ends the other; no error of a torn exchange may go unhandled.
    const answered = new Promise<IncomingMessage>((resolve, reject) => {
      upstream.once('response', (up) => {
        up.on('error', () => res.destroy());
        resolve(up);
      });
      upstream.on('error', (e) => {
        res.destroy();
        reject(e);
      });
    });
    answered.catch(() => undefined);
    req.on('error', () => upstream.destroy());
    res.on('error', () => upstream.destroy());
    req.once('aborted', () => upstream.destroy());
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    await pump(req, upstream, pace, (n) => {
      if (stat) stat.bytes += n;
    });
    upstream.end();
    const forwarded = performance.now();
    const up = await answered;
    stat?.answerWaits.push((performance.now() - forwarded) / 1000);
    res.writeHead(up.statusCode ?? 502, up.statusMessage, up.headers);
    const responsePace = responsePacer ? (n: number) => responsePacer.take(n) : undefined;
    await pump(up, res, responsePace, (n) => (responseBytes += n));
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) {
        res.writeHead(502, { 'content-length': 0 });
        res.end();
      } else {
        res.destroy();
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    putPages: () =>
      new Map(
        [...stats].map(([k, v]) => [
          k,
          { ...v, idleSeconds: blobPacers.get(k)?.idleSeconds ?? 0, answerWaits: [...v.answerWaits] },
        ]),
      ),
    responseBytes: () => responseBytes,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}

/** A storage connection string whose blob endpoint goes through `proxyPort` (queue and table do not). */
export function viaProxy(connectionString: string, proxyPort: number): string {
  const out = connectionString.replace(
    /BlobEndpoint=http:\/\/127\.0\.0\.1:\d+\//,
    `BlobEndpoint=http://127.0.0.1:${proxyPort}/`,
  );
  if (out === connectionString) throw new Error('the connection string has no loopback BlobEndpoint');
  return out;
}
