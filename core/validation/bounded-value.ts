/**
 * Bounds on a parsed value (a JSON request body, a parsed layout), checked by one linear walk that stops at the
 * first limit crossed. A client can send a 1 MiB body with 100,000 keys; every later step (zod, planning, the
 * YAML library's key checks) costs more per key than this walk, so the bounds are checked first and a refusal
 * costs almost nothing.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export interface ValueLimits {
  /** Object keys in the whole value. */
  maxKeys: number;
  /** Keys of any one object. */
  maxKeysPerObject: number;
  /** Elements of any one array. */
  maxArrayLength: number;
  /** Nesting of objects and arrays (the top value is depth 1). */
  maxDepth: number;
  /** Characters of any string and of any key. */
  maxStringLength: number;
}

/** A refusal for a request that is too big, naming the limit: VGPU_E2BIG (HTTP 413). */
export function tooLarge(what: string, limit: string, hint: string, details: Record<string, unknown> = {}): VgpuError {
  return new VgpuError(ErrorCode.TooLarge, `${what} (limit: ${limit})`, { hint, details: { limit, ...details } });
}

/**
 * Throw VGPU_E2BIG naming the first limit `value` crosses (`where` names it: "layout", "request body"). Also
 * refuses a `__proto__` key: a JavaScript object cannot hold it as a plain key, so it would silently vanish.
 */
export function checkValueBounds(value: unknown, limits: ValueLimits, where: string): void {
  let keys = 0;
  const hint = `make the ${where} smaller; docs/operations.md lists the limits`;
  // Iterative, so a deeply nested value cannot overflow the stack before the depth check sees it.
  const stack: { v: unknown; depth: number; path: string }[] = [{ v: value, depth: 1, path: '' }];
  while (stack.length > 0) {
    const { v, depth, path } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length > limits.maxStringLength) {
        throw tooLarge(`a string in the ${where} at ${path || '(root)'} has ${v.length} characters`, `${limits.maxStringLength} characters`, hint, { path });
      }
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth > limits.maxDepth) {
      throw tooLarge(`the ${where} nests deeper than ${limits.maxDepth} levels at ${path || '(root)'}`, `${limits.maxDepth} levels`, hint, { path });
    }
    if (Array.isArray(v)) {
      if (v.length > limits.maxArrayLength) {
        throw tooLarge(`a list in the ${where} at ${path || '(root)'} has ${v.length} items`, `${limits.maxArrayLength} items`, hint, { path });
      }
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], depth: depth + 1, path: path ? `${path}.${i}` : String(i) });
      continue;
    }
    const own = Object.keys(v);
    if (own.length > limits.maxKeysPerObject) {
      throw tooLarge(`a map in the ${where} at ${path || '(root)'} has ${own.length} keys`, `${limits.maxKeysPerObject} keys per map`, hint, { path });
    }
    keys += own.length;
    if (keys > limits.maxKeys) throw tooLarge(`the ${where} has more than ${limits.maxKeys} keys`, `${limits.maxKeys} keys`, hint);
    for (let i = own.length - 1; i >= 0; i--) {
      const k = own[i]!;
      const at = path ? `${path}.${k.slice(0, 40)}` : k.slice(0, 40);
      if (k.length > limits.maxStringLength) {
        throw tooLarge(`a key in the ${where} at ${path || '(root)'} has ${k.length} characters`, `${limits.maxStringLength} characters`, hint, { path });
      }
      if (k === '__proto__') {
        throw new VgpuError(ErrorCode.InvalidArgument, `the ${where} has a key named __proto__ at ${path || '(root)'}`, {
          hint: 'rename that key', details: { path },
        });
      }
      stack.push({ v: (v as Record<string, unknown>)[k], depth: depth + 1, path: at });
    }
  }
}
