/**
 * The V8 options every process that runs a transfer starts with: the Functions worker (app setting
 * `languageWorkers__node__arguments`), the local host (`npm start`) and the CLI (its bin script).
 *
 * A transfer streams gigabytes through short-lived Buffers while the JavaScript heap stays near
 * 25 MB. V8 sizes its old-generation limit from that small heap; with the Buffers' bytes counted
 * against it, the headroom drops below the young generation's size and V8 marks and compacts again
 * and again: 60–80 full collections for a 1 GiB VHD in most runs, about 3 s of CPU, 40 % of the
 * mirror's. A 128 MB initial old generation leaves the headroom V8 wants: 1–3 collections, peak
 * RSS unchanged (measured with `npm run bench`, 1 GiB and 4 GiB). Options that cannot go through
 * NODE_OPTIONS (this one cannot), so each launcher passes them on the command line.
 */
export const TRANSFER_NODE_ARGS: readonly string[] = Object.freeze(['--initial-old-space-size=128']);

/** True when this process was started with every one of the options. */
export function startedWithTransferArgs(execArgv: readonly string[] = process.execArgv): boolean {
  return TRANSFER_NODE_ARGS.every((a) => execArgv.includes(a));
}
