/**
 * HTTP route templates as the Functions host reads them: literal segments (case-insensitive),
 * `{name}`, `{name?}` (optional, trailing), `{name:constraint}` and a trailing catch-all `{*name}`.
 */
export type RouteParams = Record<string, string>;

interface Segment {
  kind: 'literal' | 'param' | 'catchAll';
  text: string;
  optional: boolean;
  constraint: string | undefined;
}

export interface RouteTemplate {
  readonly template: string;
  readonly segments: readonly Segment[];
}

const PARAM = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}$/;

export function parseRoute(template: string): RouteTemplate {
  const parts = template
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter((p) => p !== '');
  const segments = parts.map((p, i): Segment => {
    const m = PARAM.exec(p);
    if (!m) {
      if (/[{}]/.test(p)) throw new Error(`route "${template}": unsupported segment "${p}"`);
      return { kind: 'literal', text: p.toLowerCase(), optional: false, constraint: undefined };
    }
    const [, star, name = '', constraint, question] = m;
    if (star && i !== parts.length - 1) throw new Error(`route "${template}": a catch-all must come last`);
    return {
      kind: star ? 'catchAll' : 'param',
      text: name,
      optional: question !== undefined || star !== undefined,
      constraint: constraint?.toLowerCase(),
    };
  });
  const firstOptional = segments.findIndex((s) => s.optional);
  if (firstOptional >= 0 && segments.slice(firstOptional).some((s) => !s.optional)) {
    throw new Error(`route "${template}": optional segments must come last`);
  }
  return { template, segments };
}

function satisfies(constraint: string | undefined, value: string): boolean {
  switch (constraint) {
    case undefined:
      return true;
    case 'int':
    case 'long':
      return /^-?\d+$/.test(value);
    case 'alpha':
      return /^[A-Za-z]+$/.test(value);
    case 'bool':
      return /^(true|false)$/i.test(value);
    default:
      return true;
  }
}

/** The parameters when `path` (below /api, already split on '/') fits the template, else undefined. */
export function matchRoute(route: RouteTemplate, path: readonly string[]): RouteParams | undefined {
  const params: RouteParams = {};
  const segs = route.segments;
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i]!;
    if (seg.kind === 'catchAll') {
      const rest = path.slice(i);
      if (rest.length > 0) params[seg.text] = rest.join('/');
      return params;
    }
    const value = path[i];
    if (value === undefined) return seg.optional ? params : undefined;
    if (seg.kind === 'literal') {
      if (value.toLowerCase() !== seg.text) return undefined;
    } else {
      if (value === '' || !satisfies(seg.constraint, value)) return undefined;
      params[seg.text] = value;
    }
  }
  return path.length === segs.length ? params : undefined;
}

/** A request path below `/api/` split into decoded segments; undefined when it is not decodable. */
export function splitPath(path: string): string[] | undefined {
  try {
    return path
      .replace(/^\/+|\/+$/g, '')
      .split('/')
      .filter((p) => p !== '')
      .map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}
