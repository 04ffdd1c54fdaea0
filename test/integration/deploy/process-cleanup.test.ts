/**
 * A run that fails leaves no process behind. Every child the suite, the local host or the benchmark
 * starts goes through spawnTied (src/local/tied-spawn.ts) and ends with its parent, however the
 * parent ends; an 'exit' handler alone misses SIGKILL, crashes and a test runner's teardown. Here a
 * parent starts Azurite, a Node child and a shell command that way, plus one plain child as the
 * control, and is killed with SIGKILL: the tied ones go, the control stays (so the check can fail).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, ROOT } from '../../support/build';

/** Running (a zombie, dead but not yet reaped, counts as gone). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  }
}

async function until(done: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (done()) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return done();
}

const dist = (m: string) => JSON.stringify(join(ROOT, 'dist', 'src', 'local', m));
const PARENT = `
const { spawn } = require('node:child_process');
const { startAzurite } = require(${dist('azurite.js')});
const { spawnTied } = require(${dist('tied-spawn.js')});
(async () => {
  const azurite = await startAzurite();
  const node = spawnTied(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  const shell = spawnTied('sleep', ['600'], { stdio: 'ignore' });
  const plain = spawn('sleep', ['601'], { stdio: 'ignore' });
  console.log(JSON.stringify({ azurite: azurite.pid, node: node.pid, shell: shell.pid, plain: plain.pid }));
})();
setInterval(() => {}, 1000);
`;

let control = 0;
afterAll(() => {
  if (control && alive(control)) process.kill(control, 'SIGKILL');
});

describe('children tied to their parent', () => {
  it('end when the parent is killed with SIGKILL; a plain child is left behind', async () => {
    ensureBuilt();
    const parent = spawn(process.execPath, ['-e', PARENT], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      parent.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      parent.once('exit', (code) =>
        reject(new Error(`parent exited with ${code} before starting its children`)),
      );
    });
    const pids = JSON.parse(line) as { azurite: number; node: number; shell: number; plain: number };
    control = pids.plain;
    const tied = { azurite: pids.azurite, node: pids.node, shell: pids.shell };
    expect(Object.values(tied).every(alive)).toBe(true);

    parent.kill('SIGKILL');
    await new Promise((r) => parent.once('exit', r));

    const gone = await until(() => !Object.values(tied).some(alive), 15_000);
    expect(Object.fromEntries(Object.entries(tied).filter(([, pid]) => alive(pid)))).toEqual({});
    expect(gone).toBe(true);
    // The control: nothing ends a child that was not tied, so the check above could fail.
    expect(alive(pids.plain)).toBe(true);
  }, 60_000);
});
