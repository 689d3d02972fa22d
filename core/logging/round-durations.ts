/**
 * Durations as people read them: `2.21 ms`, not `2.2054560000105994 ms`. Measured times carry float noise from
 * performance.now(); three significant digits say everything a reader can use.
 */

/** 2.2054 → 2.21, 45.678 → 45.7, 1234.5 → 1235 (3 significant digits, whole numbers from 100 up). */
export function roundDuration(ms: number): number {
  if (!Number.isFinite(ms)) return ms;
  const a = Math.abs(ms);
  const digits = a < 10 ? 2 : a < 100 ? 1 : 0;
  const f = 10 ** digits;
  return Math.round(ms * f) / f;
}

/** "2.21 ms", "45.7 ms", "1235 ms", "12.3 s" from 12 345 ms up. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return `${ms} ms`;
  if (Math.abs(ms) >= 10_000) return `${roundDuration(ms / 1000)} s`;
  return `${roundDuration(ms)} ms`;
}

/** Keys whose numbers are durations: `durationMs`, `ms`, `elapsedMs`, `uptimeSec`… */
const DURATION_KEY = /(?:^ms$|Ms$|Sec$|^sec$|Seconds$)/;

/** A copy of log metadata with every duration-named number rounded (also one level down, e.g. `stop.pauseMs`). */
export function roundDurationsIn(meta: Record<string, unknown>, depth = 2): Record<string, unknown> {
  let out: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(meta)) {
    let nv: unknown = v;
    if (typeof v === 'number' && !Number.isInteger(v) && DURATION_KEY.test(k)) nv = roundDuration(v);
    else if (depth > 1 && v !== null && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype) {
      const inner = roundDurationsIn(v as Record<string, unknown>, depth - 1);
      if (inner !== v) nv = inner;
    }
    if (nv !== v) {
      out ??= { ...meta };
      out[k] = nv;
    }
  }
  return out ?? meta;
}
