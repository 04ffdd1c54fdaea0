/**
 * Properties of the settings parsers that take structured text: BASM_GALLERY_TARGET_REGIONS and
 * BASM_SCHEDULE. Any value either starts the app with a usable setting or stops it with a
 * ConfigError naming the setting; nothing else is thrown.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, type Config, type Env } from '../../../src/lib/config/config';
import { ZRS_REGIONS } from '../../../src/lib/config/zrs-regions';
import { nextOccurrence } from '../../../src/lib/jobs/schedule-health';

const RUNS = { numRuns: 300 };
const GALLERY: Env = {
  AZURE_SUBSCRIPTION_ID: '00000000-0000-4000-8000-000000000001',
  AZURE_RESOURCE_GROUP: 'rg-stemcells',
  AZURE_REGION: 'westeurope',
  AZURE_GALLERY_NAME: 'bosh_stemcells',
};

function load(env: Env, setting: string): Config | undefined {
  try {
    return loadConfig(env, 1800);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).setting).toBe(setting);
    return undefined;
  }
}

const region = fc.stringMatching(/^[a-z][a-z0-9]{1,12}$/);

describe('BASM_GALLERY_TARGET_REGIONS (property)', () => {
  it('reads back any list it documents, with the home region added when missing', () => {
    const zrs = [...ZRS_REGIONS];
    const item = fc.oneof(
      fc.tuple(region, fc.constantFrom(undefined, 'Standard_LRS', 'Premium_LRS')),
      fc.tuple(
        fc.constantFrom(...zrs),
        fc.constantFrom(undefined, 'Standard_LRS', 'Standard_ZRS', 'Premium_LRS'),
      ),
    );
    const list = fc.uniqueArray(fc.tuple(item, fc.integer({ min: 1, max: 100 }), fc.boolean()), {
      minLength: 1,
      maxLength: 8,
      selector: ([[name]]) => name,
    });
    fc.assert(
      fc.property(list, (items) => {
        const text = items
          .map(([[n, type], r, implicit]) =>
            type !== undefined ? `${n} = ${r} : ${type}` : implicit && r === 1 ? n : `${n} = ${r}`,
          )
          .join(' , ');
        const c = load({ ...GALLERY, BASM_GALLERY_TARGET_REGIONS: text }, 'BASM_GALLERY_TARGET_REGIONS')!;
        const want = items.map(([[name, type], replicas]) => ({
          name,
          replicas,
          ...(type === undefined ? {} : { storageAccountType: type }),
        }));
        if (!want.some((w) => w.name === 'westeurope')) want.unshift({ name: 'westeurope', replicas: 1 });
        expect(c.gallery!.targetRegions).toEqual(want);
      }),
      RUNS,
    );
  });

  it('refuses zone-redundant replicas in a region without zone-redundant storage, naming the setting', () => {
    const noZrs = region.filter((n) => !ZRS_REGIONS.has(n));
    fc.assert(
      fc.property(noZrs, fc.integer({ min: 1, max: 100 }), (n, r) => {
        const env = { ...GALLERY, BASM_GALLERY_TARGET_REGIONS: `westeurope=1,${n}=${r}:Standard_ZRS` };
        if (n === 'westeurope') return;
        expect(load(env, 'BASM_GALLERY_TARGET_REGIONS')).toBeUndefined();
      }),
      RUNS,
    );
  });

  it('any text: usable regions (unique, 1-100 replicas, home included) or a ConfigError naming it', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc
        .array(
          fc.tuple(
            fc.oneof(region, fc.string({ maxLength: 8 })),
            fc.oneof(fc.integer({ min: -5, max: 1000 }).map(String), fc.string({ maxLength: 4 })),
          ),
          { maxLength: 5 },
        )
        .map((xs) => xs.map(([n, r]) => `${n}=${r}`).join(',')),
    );
    fc.assert(
      fc.property(text, (t) => {
        const c = load({ ...GALLERY, BASM_GALLERY_TARGET_REGIONS: t }, 'BASM_GALLERY_TARGET_REGIONS');
        if (!c) return;
        const regions = c.gallery!.targetRegions;
        expect(new Set(regions.map((r) => r.name)).size).toBe(regions.length);
        expect(
          regions.every((r) => Number.isInteger(r.replicas) && r.replicas >= 1 && r.replicas <= 100),
        ).toBe(true);
        expect(regions.map((r) => r.name)).toContain('westeurope');
      }),
      RUNS,
    );
  });
});

const field = (max: number) =>
  fc.oneof(
    fc.constant('*'),
    fc.integer({ min: 0, max }).map(String),
    fc.integer({ min: 1, max: Math.max(1, max) }).map((n) => `*/${n}`),
    fc
      .tuple(fc.integer({ min: 0, max }), fc.integer({ min: 0, max }))
      .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
    fc.uniqueArray(fc.integer({ min: 0, max }), { minLength: 1, maxLength: 3 }).map((xs) => xs.join(',')),
  );
const ncrontab = fc
  .tuple(field(59), field(59), field(23), field(31), field(12), field(6))
  .map((f) => f.join(' '));

describe('BASM_SCHEDULE (property)', () => {
  it('any text: a schedule the health check can evaluate, or a ConfigError naming it', () => {
    const text = fc.oneof(
      ncrontab,
      fc.string({ maxLength: 40 }),
      fc
        .array(fc.stringMatching(/^[0-9*/,\-A-Za-z?LW#]{1,6}$/), { minLength: 5, maxLength: 7 })
        .map((xs) => xs.join(' ')),
    );
    fc.assert(
      fc.property(text, (t) => {
        const c = load({ BASM_SCHEDULE: t }, 'BASM_SCHEDULE');
        if (!c) return;
        expect(c.schedule.split(/\s+/)).toHaveLength(6);
        const after = new Date('2026-11-30T12:00:00Z');
        const next = nextOccurrence(c.schedule, after);
        if (next) expect(next.getTime()).toBeGreaterThan(after.getTime());
      }),
      RUNS,
    );
  });
});
