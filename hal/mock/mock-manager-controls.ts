/**
 * The RM controls the vGPU manager sends at bring-up (docs/lifecycle.md: VMMU segment size, ECC status, GSP features,
 * type upload), answered by a mock GPU's firmware the way GSP-RM answers them. The
 * mock firmware answers nothing by itself; a test (or the mock's conformance fixture) installs these.
 */
import {
  RmControl, encodeEccStatus, encodeGspFeatures, encodeVmmuSegmentSize,
} from '../../core/firmware-abi/rm-controls.js';
import type { MockGpu } from './mock-gpu.js';

const MiB = 1n << 20n;

/** Answer the manager's bring-up controls on `gpu`; `ecc` is the ECC state the GPU reports. */
export function answerManagerControls(gpu: MockGpu, segmentSize = 512n * MiB, ecc = false): void {
  gpu.firmware.onControl(RmControl.GPU_GET_VMMU_SEGMENT_SIZE, () => encodeVmmuSegmentSize(segmentSize));
  gpu.firmware.onControl(RmControl.GPU_QUERY_ECC_STATUS, () => encodeEccStatus({ units: [{ enabled: ecc, supported: true }] }));
  // The running build, as GSP-RM reports it (the image the test booted unless the device overrides it).
  gpu.firmware.onControl(RmControl.GSP_GET_FEATURES, () => encodeGspFeatures({ bValid: true, firmwareVersion: gpu.firmware.info().version }));
  gpu.firmware.onControl(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, () => {});
}
