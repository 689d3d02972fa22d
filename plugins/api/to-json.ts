/**
 * JSON for the control API: bigints (FB sizes and offsets) become decimal strings, because JSON numbers lose
 * precision above 2^53 and a 48 GiB offset printed as a float would be a lie one day.
 */
export function toJsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v.toString();
  if (Array.isArray(v)) return v.map(toJsonValue);
  if (v !== null && typeof v === 'object') {
    if (v instanceof Date) return v.toISOString();
    if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
    if (v instanceof Error) return { name: v.name, message: v.message };
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toJsonValue(x);
    return out;
  }
  return v;
}

/** One NDJSON line. */
export function ndjsonLine(v: unknown): string {
  return `${JSON.stringify(toJsonValue(v))}\n`;
}
