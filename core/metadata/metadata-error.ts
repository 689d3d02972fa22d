/**
 * The one way metadata code fails: `VgpuError(Metadata)` whose message names the absolute byte offset and the
 * field, so an operator holding a bad file can open it in a hex editor at the right place.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';

export function hex(n: number | bigint): string {
  return `0x${n.toString(16)}`;
}

export function metadataError(offset: number, field: string, problem: string, hint?: string): VgpuError {
  return new VgpuError(ErrorCode.Metadata, `metadata: ${field} at byte offset ${offset} (${hex(offset)}): ${problem}`, {
    hint: hint ?? 'the vGPU metadata file is corrupt or not for this driver; rebuild it with `npm run metadata:build` or get the file matching the GSP firmware',
    details: { offset, field },
  });
}
