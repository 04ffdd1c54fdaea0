/**
 * The V8 options a transfer needs reach every launcher of the product: the Functions worker (app
 * setting), `func start` (local.settings.json.example), `npm start` and the CLI's bin script.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startedWithTransferArgs, TRANSFER_NODE_ARGS } from '../../src/lib/core/v8-options';
import { ensureBuilt, ROOT, runBin } from '../support/build';

const read = (p: string): string => readFileSync(join(ROOT, p), 'utf8');

describe('V8 options for transfers', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'v8-options-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('are real options this Node accepts', () => {
    expect(TRANSFER_NODE_ARGS.length).toBeGreaterThan(0);
    const r = spawnSync(process.execPath, [...TRANSFER_NODE_ARGS, '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(startedWithTransferArgs([...TRANSFER_NODE_ARGS])).toBe(true);
    expect(startedWithTransferArgs([])).toBe(false);
  });

  it('are set for the Functions worker, func start and npm start', () => {
    const line = TRANSFER_NODE_ARGS.join(' ');
    expect(read('infra/app/function.bicep')).toContain(`languageWorkers__node__arguments: '${line}'`);
    const example = JSON.parse(read('local.settings.json.example')) as { Values: Record<string, string> };
    expect(example.Values.languageWorkers__node__arguments).toBe(line);
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe(`node ${line} dist/src/local/main.js`);
  });

  it('are given to the CLI by its bin script, which starts itself again with them', () => {
    ensureBuilt();
    // Every node process of the run records its options: the bin without them, then the CLI.
    const record = join(scratch, 'argv.jsonl');
    const preload = join(scratch, 'record.js');
    writeFileSync(
      preload,
      `require('node:fs').appendFileSync(${JSON.stringify(record)}, JSON.stringify(process.execArgv) + '\\n');\n`,
    );
    const r = runBin(['--help'], ['-r', preload]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: stemcell-mirror <command>');
    const runs = readFileSync(record, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as string[]);
    expect(runs).toHaveLength(2);
    expect(startedWithTransferArgs(runs[0])).toBe(false);
    expect(startedWithTransferArgs(runs[1])).toBe(true);
  });

  it('passes the exit code of the CLI through the restart', () => {
    const r = runBin(['no-such-command']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('no-such-command');
  });
});
