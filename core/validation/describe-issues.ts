/**
 * Validation problems as lines an operator can act on, each DISTINCT problem once. A real file repeats the same
 * mistake in many places (an older vgpud refused NVIDIA's published layout file with one "device-filter: unknown
 * key" per entry, 56 lines), and 56 copies of one line hide the one other line that matters. So problems are
 * grouped by what is wrong, and a group lists its count and the first few places:
 *
 *   gpus.0.policy: expected one of "homogeneous"|"heterogeneous", got "mixed"
 *   device-filter: unknown key (56 times, at vgpu-configs.default.0, vgpu-configs.default.1, vgpu-configs.default.2 and 53 more)
 *
 * Used for the daemon's config (core/config) and for every request and layout the control API validates.
 */
import type { z } from 'zod';

/** How many places a repeated problem lists before "and N more". */
export const PLACES_SHOWN = 3;

export interface Problem {
  /** Where, as key path segments. */
  path: readonly (string | number)[];
  /** What is wrong, without the place (e.g. "unknown key", "expected a number"). */
  what: string;
  /** The offending value, shown for a single occurrence and next to each listed place. */
  got?: string;
}

const joinPath = (path: readonly (string | number)[]): string => path.map(String).join('.');

/**
 * One line per distinct problem. Problems are the same when they say the same thing about a key of the same name
 * (the last path segment that is not an array index); the first occurrence keeps its position in the output.
 */
export function groupProblems(problems: readonly Problem[], placesShown = PLACES_SHOWN): string[] {
  const groups = new Map<string, { name: string; what: string; items: Problem[] }>();
  for (const p of problems) {
    const name = [...p.path].reverse().find((s) => typeof s === 'string' && !/^\d+$/.test(s));
    const key = `${String(name)}\u0000${p.what}`;
    let g = groups.get(key);
    if (g === undefined) {
      g = { name: name === undefined ? '' : String(name), what: p.what, items: [] };
      groups.set(key, g);
    }
    g.items.push(p);
  }
  const lines: string[] = [];
  for (const g of groups.values()) {
    const first = g.items[0]!;
    if (g.items.length === 1) {
      lines.push(`${joinPath(first.path) || '(root)'}: ${g.what}${first.got !== undefined ? `, got ${first.got}` : ''}`);
      continue;
    }
    // The place of a repeated problem is where the named key sits (its parent path), plus the value when it varies.
    const places = g.items.slice(0, placesShown).map((p) => {
      const at = p.path[p.path.length - 1] === g.name ? p.path.slice(0, -1) : p.path;
      return `${joinPath(at) || '(root)'}${p.got !== undefined ? ` (got ${p.got})` : ''}`;
    });
    const more = g.items.length - places.length;
    lines.push(`${g.name || '(value)'}: ${g.what} (${g.items.length} times, at ${places.join(', ')}${more > 0 ? ` and ${more} more` : ''})`);
  }
  return lines;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const key of path) {
    if (v === null || typeof v !== 'object') return undefined;
    if (!Object.hasOwn(v, key)) return undefined;
    v = (v as Record<PropertyKey, unknown>)[key];
  }
  return v;
}

/** A value as a short JSON-ish string for an error line. */
export function showValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = undefined;
  }
  if (s === undefined) s = String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** zod issues as Problems; `input` (the validated value) supplies the "got" of each. */
export function problemsOf(issues: readonly z.core.$ZodIssue[], input?: unknown): Problem[] {
  const out: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path.map((s) => (typeof s === 'symbol' ? String(s) : s));
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: [...path, key], what: 'unknown key' });
      continue;
    }
    const what = issue.message.replace(/^Invalid (input|option): /, '').replace(/, received \w+$/, '');
    out.push({ path, what, ...(input !== undefined ? { got: showValue(valueAt(input, issue.path)) } : {}) });
  }
  return out;
}

/** zod issues as grouped lines (see groupProblems). */
export function describeIssues(issues: readonly z.core.$ZodIssue[], input?: unknown): string[] {
  return groupProblems(problemsOf(issues, input));
}
