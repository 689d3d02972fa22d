/**
 * The FB view of a session that carries only the device state (MigrationStateOptions.fbByCaller): the process that
 * maps the FB moves its pages itself (the vfio-user device front, front-fb-stream.ts), so the daemon's session sees
 * an FB of no pages — its stream is header, firmware context and trailer — and a dirty source with nothing to track.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { DirtySource } from './dirty-tracker.js';
import type { FbRegion } from './fb-region.js';

export const NO_FB: FbRegion = {
  size: 0n,
  window(offset: bigint, length: number): Buffer {
    throw new VgpuError(ErrorCode.NativeRange, `FB window 0x${offset.toString(16)}+0x${length.toString(16)} of a device-state-only session`, {
      hint: 'the FB of this session is moved by the process that maps it: a page frame here is a stream for another session',
    });
  },
  hashPages: async () => new BigUint64Array(0),
  zero: async () => undefined,
};

export function noDirtyPages(pageSize: number): DirtySource {
  return {
    pageSize,
    pageCount: 0,
    kind: 'log',
    start: async () => undefined,
    collect: async () => new Uint32Array(0),
    peekCount: () => 0,
    stop: () => undefined,
  };
}
