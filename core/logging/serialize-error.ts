/**
 * Turns Error values found in log metadata into plain objects. JSON.stringify(new Error('x')) is "{}", so without
 * this an `{ error: e }` meta would log as an empty object and lose the message, code and stack that an operator
 * needs. VgpuError keeps its code/hint/details.
 */
export function serializeError(value: unknown, depth = 0): unknown {
  if (!(value instanceof Error)) return value;
  const out: Record<string, unknown> = { name: value.name, message: value.message };
  const extra = value as Error & { code?: unknown; hint?: unknown; details?: unknown };
  if (extra.code !== undefined) out.code = extra.code;
  if (extra.hint !== undefined) out.hint = extra.hint;
  if (extra.details !== undefined && Object.keys(extra.details as object).length > 0) out.details = extra.details;
  if (value.stack !== undefined) out.stack = value.stack;
  // Causes can chain; bound the depth so a self-referencing cause cannot loop forever.
  if (value.cause !== undefined && depth < 4) out.cause = serializeError(value.cause, depth + 1);
  return out;
}

/** A shallow copy of `meta` with every top-level Error value serialized. */
export function serializeMeta(meta: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (meta === undefined) return undefined;
  let copy: Record<string, unknown> | undefined;
  for (const [k, v] of Object.entries(meta)) {
    if (v instanceof Error) {
      copy ??= { ...meta };
      copy[k] = serializeError(v);
    }
  }
  return copy ?? meta;
}
