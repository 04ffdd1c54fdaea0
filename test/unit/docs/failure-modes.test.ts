/**
 * docs/failure-modes.md names, for each fault, the test that proves it (`file > describe > test`,
 * with `> case` for a row of a table-driven test). This keeps those names true: every file exists,
 * and every title is a string in it. A row without a test must say "not yet tested".
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../../support/build';
import { describe, expect, it } from 'vitest';

const DOC = 'docs/failure-modes.md';

interface Row {
  line: number;
  fault: string;
  proof: string;
}

/** The data rows of every table: the first and last cell of each. */
function rows(markdown: string): Row[] {
  const out: Row[] = [];
  markdown.split('\n').forEach((text, i) => {
    if (!text.startsWith('|') || /^\|\s*(fault|-{3})/.test(text)) return;
    const cells = text
      .slice(1, text.endsWith('|') ? -1 : undefined)
      .split(' | ')
      .map((c) => c.trim());
    out.push({ line: i + 1, fault: cells[0] ?? '', proof: cells.at(-1) ?? '' });
  });
  return out;
}

/** The test references of a cell: each backticked `path > title > …`. */
function references(cell: string): string[][] {
  return [...cell.matchAll(/`([^`]+\.test\.ts(?: > [^`]+)+)`/g)].map((m) => m[1]!.split(' > '));
}

/** Whether `title` is a string literal in `source`, in any of the three quotes. */
function quoted(source: string, title: string): boolean {
  return [`'${title}'`, `"${title}"`, `\`${title}\``].some((q) => source.includes(q));
}

/** What is wrong with the doc: unreadable rows, missing files, titles not found. */
function problems(markdown: string, read: (path: string) => string | undefined): string[] {
  const out: string[] = [];
  const all = rows(markdown);
  if (all.length === 0) out.push('no table rows found');
  for (const row of all) {
    const refs = references(row.proof);
    if (refs.length === 0) {
      if (!/not yet tested/i.test(row.proof))
        out.push(`line ${row.line}: names no test and does not say "not yet tested"`);
      continue;
    }
    for (const [path, ...titles] of refs) {
      const source = read(path!);
      if (source === undefined) {
        out.push(`line ${row.line}: ${path} does not exist`);
        continue;
      }
      for (const t of titles)
        if (!quoted(source, t)) out.push(`line ${row.line}: "${t}" is not a title in ${path}`);
    }
  }
  return out;
}

const readRepo = (path: string): string | undefined => {
  const full = join(ROOT, path);
  return existsSync(full) ? readFileSync(full, 'utf8') : undefined;
};

describe('docs/failure-modes.md', () => {
  const doc = readFileSync(join(ROOT, DOC), 'utf8');

  it('names only tests that exist, by file and title', () => {
    expect(problems(doc, readRepo)).toEqual([]);
  });

  it('covers every area the mirror meets, each with tested rows', () => {
    const sections = [...doc.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual([
      'HTTP bodies (`POST /api/mirror`)',
      'Queue messages',
      'Portal test pane inputs',
      'bosh.io answers',
      'Archives',
      'VHDs',
      'Storage',
      'Resource Manager (the gallery)',
      'Key Vault and GitHub',
      'The schedule and the settings',
    ]);
    const untested = rows(doc).filter((r) => references(r.proof).length === 0);
    expect(rows(doc).length).toBeGreaterThan(untested.length * 10);
  });

  it('catches a renamed test, a missing file and a row with no proof', () => {
    const row = (proof: string) => `| a fault | seen | kept | ${proof} |\n`;
    const once = 'test/unit/core/once.test.ts > onceUntilFailure';
    expect(
      problems(row(`\`${once} > shares one run between callers and tries again after a failure\``), readRepo),
    ).toEqual([]);
    expect(problems(row(`\`${once} > shares one run between callers\``), readRepo)).toEqual([
      'line 1: "shares one run between callers" is not a title in test/unit/core/once.test.ts',
    ]);
    expect(problems(row('`test/unit/nowhere.test.ts > x > y`'), readRepo)).toEqual([
      'line 1: test/unit/nowhere.test.ts does not exist',
    ]);
    expect(problems(row('we think so'), readRepo)).toEqual([
      'line 1: names no test and does not say "not yet tested"',
    ]);
    expect(problems(row('not yet tested'), readRepo)).toEqual([]);
  });
});
