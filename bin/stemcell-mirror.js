#!/usr/bin/env node
'use strict';
// Runs the compiled CLI; builds it first when the checkout has not been built yet. A transfer
// needs V8 options that only the command line can give (src/lib/core/v8-options.ts): without them the
// CLI starts itself again with them.
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const root = join(__dirname, '..');
const cli = join(root, 'dist', 'src', 'cli.js');
if (!existsSync(cli)) {
  execFileSync(
    process.execPath,
    [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.build.json')],
    {
      stdio: 'inherit',
    },
  );
}
const { TRANSFER_NODE_ARGS, startedWithTransferArgs } = require(
  join(root, 'dist', 'src', 'lib', 'core', 'v8-options.js'),
);
if (!startedWithTransferArgs()) {
  const r = spawnSync(
    process.execPath,
    [...process.execArgv, ...TRANSFER_NODE_ARGS, __filename, ...process.argv.slice(2)],
    {
      stdio: 'inherit',
    },
  );
  if (r.error) throw r.error;
  if (r.signal) process.kill(process.pid, r.signal);
  process.exitCode = r.status ?? 1;
} else {
  require(cli)
    .main(process.argv.slice(2))
    .then((code) => {
      process.exitCode = code;
    });
}
