/**
 * One capped mirror in a fresh process (see `capped.ts`, `mirrorInChild`): its own loopback bosh.io
 * serving the stemcell, the download link paced to 100 MB/s, a fresh Azurite behind the 60 MiB/s
 * Put Page cap, and the mirror itself in a child of this one. Input: one JSON argument
 * (`CappedMirrorInput`); output: one JSON line (`CappedMirror`) on stdout.
 */
import { startFakeBoshIo } from '../test/fakes/boshio';
import { mirrorOnce, PRODUCTION_CAPS, withCappedSink, type CappedMirrorInput } from './capped';
import { startThrottleProxy } from './throttle-proxy';

async function main(input: CappedMirrorInput): Promise<void> {
  const boshio = await startFakeBoshIo();
  try {
    const entry = await boshio.addRelease({
      series: input.series,
      version: input.version,
      body: { path: input.tgzPath },
    });
    const link = await startThrottleProxy({
      targetPort: boshio.port,
      responseBytesPerSecond: PRODUCTION_CAPS.downloadBytesPerSecond,
    });
    try {
      // The API answer sends the download through the paced link.
      const url = entry.regular.url.replace(boshio.url, link.url);
      boshio.seed(input.series, [{ ...entry, regular: { ...entry.regular, url } }]);
      const result = await withCappedSink((sink) => mirrorOnce(input, boshio.url, sink));
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } finally {
      await link.close();
    }
  } finally {
    await boshio.close();
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as CappedMirrorInput).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
});
