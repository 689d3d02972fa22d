/**
 * How the kit words what it saw: numbers in the notation NVIDIA's and the kernel's tools print (hex ids and
 * offsets, binary units for sizes), errors with their VgpuError code first.
 */
import { isVgpuError } from '../core/contracts/exceptions.js';
import { compareVersions } from '../core/firmware-abi/firmware-version.js';

export function hex(n: number | bigint): string {
  return `0x${(typeof n === 'bigint' || n >= 0 ? n : n >>> 0).toString(16)}`;
}

/** 10de:26b1 */
export function pciId(vendorId: number, deviceId: number): string {
  return `${vendorId.toString(16).padStart(4, '0')}:${deviceId.toString(16).padStart(4, '0')}`;
}

const UNITS: Array<[bigint, string]> = [[1n << 30n, 'GiB'], [1n << 20n, 'MiB'], [1n << 10n, 'KiB']];

/** "2 MiB", "4 GiB", "4100 KiB", "17 bytes". */
export function size(n: bigint): string {
  for (const [unit, name] of UNITS) if (n >= unit && n % unit === 0n) return `${n / unit} ${name}`;
  return `${n} bytes`;
}

/** "[0x40000000, +2 MiB)" */
export function span(offset: bigint, length: bigint): string {
  return `[${hex(offset)}, +${size(length)})`;
}

/** "VGPU_ENOSPC: no free …" / "a plain TypeError (not a VgpuError): …" */
export function describeError(e: unknown): string {
  if (isVgpuError(e)) return `${e.code}: ${e.message}`;
  if (e instanceof Error) return `a plain ${e.name} (not a VgpuError): ${e.message}`;
  return `a thrown ${typeof e} (not an Error): ${String(e)}`;
}

/** A dotted version just below `floor` ("570.144" → "570.143", "570.0" → "569.0"); undefined for "0". */
export function versionBelow(floor: string): string | undefined {
  const parts = floor.split('.').map(Number);
  if (parts.some((p) => !Number.isInteger(p) || p < 0)) return undefined;
  for (let i = parts.length - 1; i >= 0; i--) {
    if (parts[i]! > 0) {
      parts[i]! -= 1;
      return parts.join('.');
    }
  }
  return undefined;
}

export { compareVersions };

export const DOTTED_VERSION = /^\d+(\.\d+)*$/;

/** Bytes of `data` that differ from `expected(i)`: how many, and the index of the first. */
export function differing(data: Uint8Array, expected: (i: number) => number): { count: number; first: number } {
  let count = 0;
  let first = -1;
  for (let i = 0; i < data.length; i++) {
    if (data[i] !== expected(i)) {
      if (first < 0) first = i;
      count++;
    }
  }
  return { count, first };
}

/** A 32-bit pattern repeated little-endian over `length` bytes (what FramebufferMemory.fill writes). */
export function patternBytes(pattern: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  const view = new DataView(out.buffer);
  for (let i = 0; i + 4 <= length; i += 4) view.setUint32(i, pattern >>> 0, true);
  return out;
}

/** Byte i of a repeated little-endian 32-bit pattern. */
export function patternByte(pattern: number, i: number): number {
  return (pattern >>> ((i & 3) * 8)) & 0xff;
}

export function plural(n: number | bigint, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 || n === 1n ? one : many}`;
}
