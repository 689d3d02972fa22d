/**
 * The typed failure of a physical-GPU manager's bring-up: which step failed (docs/reference/create-order.md M3–M5),
 * with the underlying error as `cause`. Everything the steps before it acquired has been released when this is
 * thrown.
 */
import { VgpuError, isVgpuError, ErrorCode } from '../contracts/exceptions.js';

export const PGPU_INIT_STEPS = [
  'alloc-client',
  'vmmu-segment-size',
  'ecc-status',
  'hardware-config',
  'firmware-version',
  'load-metadata',
  'upload-types',
  'fb-region',
] as const;
export type PgpuInitStep = (typeof PGPU_INIT_STEPS)[number];

const STEP_CODE: Record<PgpuInitStep, ErrorCode> = {
  'alloc-client': ErrorCode.FirmwareRpc,
  'vmmu-segment-size': ErrorCode.FirmwareRpc,
  'ecc-status': ErrorCode.FirmwareRpc,
  'hardware-config': ErrorCode.UnsupportedDevice,
  'firmware-version': ErrorCode.FirmwareRpc,
  'load-metadata': ErrorCode.Metadata,
  'upload-types': ErrorCode.FirmwareRpc,
  'fb-region': ErrorCode.NoSpace,
};

export class PgpuInitError extends VgpuError {
  readonly step: PgpuInitStep;
  readonly gpu: string;

  constructor(gpu: string, step: PgpuInitStep, cause: unknown) {
    const inner = cause instanceof Error ? cause.message : String(cause);
    // Keep the inner code when it is more precise (e.g. VGPU_EMETADATA, VGPU_ETIMEDOUT, VGPU_ELOST).
    const code = isVgpuError(cause) ? cause.code : STEP_CODE[step];
    super(code, `vGPU manager of ${gpu} failed at step '${step}': ${inner}`, {
      hint: isVgpuError(cause) ? cause.hint : 'see the daemon log for the failing step',
      details: { gpu, step, ...(isVgpuError(cause) ? cause.details : {}) },
      cause,
    });
    this.name = 'PgpuInitError';
    this.step = step;
    this.gpu = gpu;
  }
}
