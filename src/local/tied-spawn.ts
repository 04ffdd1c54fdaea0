/**
 * Child processes that end with their parent, however the parent ends: a normal exit, a signal it
 * has no handler for, SIGKILL, a crash, a test runner tearing its worker down. An 'exit' handler
 * covers only the first of these.
 *
 * How: the parent hands each child the read end of a pipe as one extra stdio descriptor and keeps
 * the write end open, unreferenced. When the parent dies the kernel closes the write end, the child
 * reads end-of-file and ends itself. A Node child watches the pipe from a module preloaded with
 * --import (nothing to change in the program it runs); any other command runs under a small shell
 * that watches it in the background and then ends the command's whole process group. The parent also
 * closes its end when the child exits, so a watcher never outlives its command.
 */
import { spawn, type ChildProcess, type SpawnOptions, type StdioOptions } from 'node:child_process';
import type { Socket } from 'node:net';

/** The preloaded watcher: on end-of-file on descriptor `fd`, end this process as SIGTERM would. */
function nodeWatcher(fd: number): string {
  const code = [
    "import { Socket } from 'node:net';",
    `const pipe = new Socket({ fd: ${fd}, readable: true, writable: false });`,
    'pipe.on("error", () => {});',
    'pipe.once("close", () => {',
    '  setTimeout(() => process.exit(1), 5000).unref();',
    '  process.kill(process.pid, "SIGTERM");',
    '});',
    'pipe.resume();',
    'pipe.unref();',
  ].join('\n');
  return `data:text/javascript,${encodeURIComponent(code)}`;
}

/**
 * The shell around a non-Node command: a background watcher holding descriptor `fd` until
 * end-of-file, then SIGTERM to the process group (the command and all it started; the group is the
 * command's own, it is spawned detached). The command itself runs without the descriptor.
 */
function shellWatcher(fd: number): string {
  return [`( cat <&${fd} >/dev/null 2>&1; kill -TERM -$$ 2>/dev/null ) &`, `exec ${fd}<&-`, 'exec "$@"'].join(
    '\n',
  );
}

function stdioArray(stdio: StdioOptions | undefined): (string | number | null | undefined)[] {
  if (stdio === undefined) return ['pipe', 'pipe', 'pipe'];
  if (typeof stdio === 'string') return [stdio, stdio, stdio];
  return [...(stdio as (string | number | null | undefined)[])];
}

/**
 * spawn() for a child that must not outlive this process. `command` is process.execPath for a Node
 * program (its args may start with Node options), or any executable. Same options as spawn(), but
 * stdio must be given as up to three entries plus any 'pipe's the caller reads itself; the watch
 * pipe is added after them.
 */
export function spawnTied(
  command: string,
  args: readonly string[],
  options: SpawnOptions = {},
): ChildProcess {
  const stdio = stdioArray(options.stdio);
  while (stdio.length < 3) stdio.push('pipe');
  const fd = stdio.length;
  stdio.push('pipe');
  const isNode = command === process.execPath;
  const child = isNode
    ? spawn(command, ['--import', nodeWatcher(fd), ...args], { ...options, stdio: stdio as StdioOptions })
    : spawn('/bin/sh', ['-c', shellWatcher(fd), 'tied', command, ...args], {
        ...options,
        stdio: stdio as StdioOptions,
        detached: true,
      });
  const pipe = child.stdio[fd] as Socket | null;
  pipe?.on('error', () => {});
  // The write end stays open for the child's whole life, without keeping this process alive.
  pipe?.unref();
  child.once('exit', () => pipe?.destroy());
  return child;
}
