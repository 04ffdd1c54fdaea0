/**
 * The layers of src/lib, bottom first (DESIGN §6). A folder may import from the layers below it and
 * from itself; folders of one layer do not know each other. The stemcell's own rules (archive, VHD,
 * the CPI's naming) sit below the Azure adapters that act on them. Nothing in src/lib knows the
 * Functions runtime or the programs built on it (functions, local host, CLI).
 */
export const LAYERS = [
  ['core'],
  ['config'],
  ['boshio', 'stemcell'],
  ['azure', 'notify'],
  ['jobs'],
  ['mirror'],
];
const ABOVE_LIB = ['../../functions', '../../functions/*', '../../local', '../../local/*', '../../cli'];

export function layerRules() {
  return LAYERS.flatMap((layer, rank) =>
    layer.map((folder) => {
      const forbidden = LAYERS.flatMap((other, r) =>
        r > rank || r === rank ? other.filter((f) => f !== folder) : [],
      );
      return {
        files: [`src/lib/${folder}/**/*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              paths: [
                { name: '@azure/functions', message: 'src/lib never depends on the Functions runtime.' },
              ],
              patterns: [
                {
                  group: [...forbidden.flatMap((f) => [`../${f}`, `../${f}/*`]), ...ABOVE_LIB],
                  message: `src/lib/${folder} may import only from ${LAYERS.slice(0, rank)
                    .flat()
                    .concat(folder)
                    .join(
                      ', ',
                    )} (imports point down: core ← config ← boshio, stemcell ← azure, notify ← jobs ← mirror).`,
                },
              ],
            },
          ],
        },
      };
    }),
  );
}
