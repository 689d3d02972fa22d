/**
 * CHIDs of an Ada GPU reserved for vGPUs (docs/reference/core-driver-interface.md ops 11–13,
 * docs/reference/create-order.md).
 *
 * Pool size: Ada's host channel space is 2048 CHIDs; the RFC v1 core kept 512 for its own use and gave the other
 * 1536 to vGPUs (RFC v1 patch "nvkm/vgpu: introduce the reserved channel allocator"), while the nova-core WIP reports
 * all 2048. We reserve the full 2048 for vGPUs because in this design the host driver allocates no channels of its
 * own outside the vGPU manager (its scrub channel uses the vGPU's own last CHID,
 * docs/reference/copy-engine-scrub.md), and 2048 keeps the upstream per-vGPU formula exact: prev_pow2(2048 / 32) = 64
 * CHIDs for a 32-instance type, as in NVIDIA's captured config snapshot (docs/reference/host-rpc-mailbox.md).
 *
 * The copy-engine channel (op 23) belongs to the scrub issue: until then it throws VGPU_ENODEV and the HAL does
 * not advertise 'ce-chan-alloc'.
 */
import type { CopyChannel } from '../../core/contracts/channels.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { ChannelPoolBase } from '../../core/alloc/channel-pool.js';

export const ADA_VGPU_CHID_COUNT = 2048;

export class AdaChannelPool extends ChannelPoolBase {
  constructor(private readonly bdf: string) {
    super(ADA_VGPU_CHID_COUNT, { name: `CHID pool of ${bdf}` });
  }

  allocCopyChannel(chid: number, owner: string): Promise<CopyChannel> {
    return Promise.reject(new VgpuError(ErrorCode.UnsupportedDevice, `copy-engine channels are not implemented for ${this.bdf} yet`, {
      hint: "the Ada HAL does not advertise 'ce-chan-alloc'; scrub with memory.fill (host fill) until it does",
      details: { chid, owner },
    }));
  }
}
