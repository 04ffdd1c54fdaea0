import { Linter } from 'eslint';
import tseslint from 'typescript-eslint';
import { describe, expect, it } from 'vitest';
import { layerRules } from '../../eslint.layers.mjs';

type Config = Linter.Config;

/** Lints `code` as if it were the file at `path`, with only the layering rules on. */
function lint(path: string, code: string): string[] {
  const linter = new Linter({ configType: 'flat' });
  const configs: Config[] = [
    { files: ['**/*.ts'], languageOptions: { parser: tseslint.parser } },
    ...layerRules(),
  ];
  return linter.verify(code, configs, { filename: path }).map((m) => m.message);
}

describe('import layering of src/lib', () => {
  it('refuses an import that points up', () => {
    const problems = lint('src/lib/core/planted.ts', "import { runMirror } from '../mirror/runner';\n");
    expect(problems).toHaveLength(1);
    expect(problems[0]).toContain('src/lib/core may import only from core');
  });

  it('refuses a type-only import that points up, and one between folders of a layer', () => {
    expect(lint('src/lib/jobs/x.ts', "import type { Services } from '../mirror/services';\n")).toHaveLength(
      1,
    );
    expect(lint('src/lib/azure/x.ts', "import { sendDispatch } from '../notify/github';\n")).toHaveLength(1);
  });

  it('refuses the Functions runtime and the programs above src/lib', () => {
    expect(lint('src/lib/mirror/x.ts', "import { app } from '@azure/functions';\n")).toHaveLength(1);
    expect(lint('src/lib/mirror/x.ts', "import { main } from '../../cli';\n")).toHaveLength(1);
    expect(lint('src/lib/mirror/x.ts', "import { x } from '../../local/host';\n")).toHaveLength(1);
  });

  it('allows imports that point down or stay in the folder', () => {
    expect(lint('src/lib/mirror/x.ts', "import { JobStore } from '../jobs/store';\n")).toEqual([]);
    expect(
      lint('src/lib/azure/x.ts', "import type { ImageDefinitionSpec } from '../stemcell/cpi-image';\n"),
    ).toEqual([]);
    expect(lint('src/lib/core/x.ts', "import { MirrorError } from './errors';\n")).toEqual([]);
  });
});
