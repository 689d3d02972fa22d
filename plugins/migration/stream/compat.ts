/**
 * What a destination must match before it touches anything: the stream's header carries the source vGPU's
 * compatibility data and the destination compares it field by field. The guest sees all of these (its FB size,
 * its channel IDs, the device id in config space, the firmware ABI its driver negotiated), so any difference would
 * hand the guest a different device mid-flight; NVIDIA's own docs require matching driver versions too.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';

export interface MigrationCompat {
  vgpuTypeId: number;
  vgpuTypeName: string;
  /** Guest FB size in bytes (decimal string in JSON). */
  fbBytes: bigint;
  chidCount: number;
  /** GSP firmware build, e.g. "570.144". */
  firmwareVersion: string;
  /** PCI device id the VF shows the guest. */
  pciVdevId: number;
  pageSize: number;
}

/** Fields in the order they are checked (the first mismatch is reported). */
export const COMPAT_FIELDS: readonly (keyof MigrationCompat)[] = [
  'vgpuTypeId', 'vgpuTypeName', 'fbBytes', 'chidCount', 'firmwareVersion', 'pciVdevId', 'pageSize',
];

export function compatToJson(c: MigrationCompat): string {
  return JSON.stringify({ ...c, fbBytes: c.fbBytes.toString() });
}

/** Parse the header JSON; a missing or mistyped field is a malformed stream (VGPU_EMIGRATION). */
export function compatFromJson(text: string): MigrationCompat {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    throw bad('header JSON does not parse', { cause: e });
  }
  const num = (k: string): number => {
    const v = raw[k];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`header field ${k} is not a non-negative integer`, { field: k });
    return v;
  };
  const str = (k: string): string => {
    const v = raw[k];
    if (typeof v !== 'string') throw bad(`header field ${k} is not a string`, { field: k });
    return v;
  };
  const fb = str('fbBytes');
  if (!/^\d+$/.test(fb)) throw bad('header field fbBytes is not a decimal size', { field: 'fbBytes' });
  return {
    vgpuTypeId: num('vgpuTypeId'), vgpuTypeName: str('vgpuTypeName'), fbBytes: BigInt(fb), chidCount: num('chidCount'),
    firmwareVersion: str('firmwareVersion'), pciVdevId: num('pciVdevId'), pageSize: num('pageSize'),
  };
}

function bad(message: string, extra: { field?: string; cause?: unknown } = {}): VgpuError {
  return new VgpuError(ErrorCode.Migration, `malformed migration stream: ${message}`, {
    hint: 'the stream is not from a compatible vgpud source or was damaged; restart the migration from the source',
    details: extra.field !== undefined ? { field: extra.field } : {},
    cause: extra.cause,
  });
}

/** Throws VGPU_EMIGRATION naming the first field where the stream (source) and this destination differ. */
export function checkCompat(source: MigrationCompat, destination: MigrationCompat): void {
  for (const f of COMPAT_FIELDS) {
    const s = source[f];
    const d = destination[f];
    if (s !== d) {
      const show = (v: unknown): string => (typeof v === 'number' && f !== 'pageSize' && f !== 'chidCount' ? `${v} (0x${v.toString(16)})` : String(v));
      throw new VgpuError(ErrorCode.Migration, `incompatible migration stream: ${f} is ${show(s)} at the source but ${show(d)} at the destination`, {
        hint: f === 'firmwareVersion'
          ? 'run the same GSP firmware build on both hosts (NVIDIA requires matching vGPU driver versions)'
          : 'create the destination vGPU with the same type on a GPU of the same kind, then migrate again',
        details: { field: f, source: String(s), destination: String(d) },
      });
    }
  }
}
