/**
 * Resolve what an operator typed for a vGPU type — "941", "NVIDIA RTX6000-Ada-24Q", "RTX6000-Ada-24Q" or "24Q" —
 * against a GPU's types, the same way for every backend: an id exactly, a full name with or without "NVIDIA ", or
 * a unique suffix after the last '-'. An unknown or ambiguous spec is a typed error listing what exists.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export function resolveType<T extends { id: number; name: string }>(types: readonly T[], spec: number | string, gpu: string): T {
  const list = (): string => types.map((t) => `${t.id} ${t.name}`).join(', ');
  const unknown = (): VgpuError => new VgpuError(ErrorCode.UnknownType, `${gpu} has no vGPU type '${String(spec).slice(0, 100)}'`, {
    hint: `installed types: ${list() || '(none)'}`, details: { gpu, type: String(spec).slice(0, 100) },
  });
  if (typeof spec === 'number' || /^\d+$/.test(spec)) {
    const t = types.find((x) => x.id === Number(spec));
    if (t === undefined) throw unknown();
    return t;
  }
  const want = spec.trim().toLowerCase();
  const exact = types.filter((t) => t.name.toLowerCase() === want || t.name.toLowerCase() === `nvidia ${want}`);
  const hits = exact.length > 0 ? exact : types.filter((t) => t.name.toLowerCase().endsWith(`-${want}`));
  if (hits.length === 1) return hits[0]!;
  if (hits.length === 0) throw unknown();
  throw new VgpuError(ErrorCode.InvalidArgument, `'${spec}' matches several types on ${gpu}: ${hits.map((t) => t.name).join(', ')}`, {
    hint: 'give the full name or the type id', details: { gpu, type: spec },
  });
}
