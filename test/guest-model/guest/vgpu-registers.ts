/**
 * The VF's BAR0 as the guest driver uses it.
 *
 * NV_VIRTUAL_FUNCTION_PRIV_* offsets: NVIDIA open-gpu-kernel-modules
 * src/common/inc/swref/published/ampere/ga102/dev_vm.h (CPU_INTR_LEAF(i) 0x1000+4i, LEAF_EN_SET(i) 0x1200+4i,
 * LEAF_EN_CLEAR(i) 0x1400+4i, LEAF_TRIGGER 0x1640, MAILBOX_SCRATCH(i) 0x2100+4i, DOORBELL 0x2200); a VF guest
 * reaches them with no offset (src/nvidia/src/kernel/gpu/arch/turing/kern_gpu_tu102.c gpuGetVirtRegPhysOffset).
 * The CPU_INTR_TOP registers, the guest RPC control-page layout and the leaf-0 bit assignment are the simulated
 * device's, as its documentation (docs/vfio-user.md, "BAR0 register map" and "Guest RPC") states them; the
 * doorbell handles 0 (RPC setup) and 1 (RPC message) and the scratch registers 2/3 that hold the control page's IOVA
 * (NV_VF_SCRATCH_REGISTER_GUEST_RPC_LO/HI) are src/nvidia/inc/kernel/vgpu/nv_sriov_defines.h's; the guest writes
 * the high half first (src/nvidia/src/kernel/vgpu/arch/ampere/rpcga102.c rpcVgpuGspWriteScratchRegister_GA102).
 */
export const Bar0 = {
  PMC_BOOT_0: 0x000000,
  cpuIntrLeaf: (i: number): number => 0x1000 + 4 * i,
  cpuIntrLeafEnSet: (i: number): number => 0x1200 + 4 * i,
  cpuIntrLeafEnClear: (i: number): number => 0x1400 + 4 * i,
  CPU_INTR_TOP: 0x1600,
  CPU_INTR_TOP_EN_SET: 0x1608,
  CPU_INTR_TOP_EN_CLEAR: 0x1610,
  CPU_INTR_LEAF_TRIGGER: 0x1640,
  mailboxScratch: (i: number): number => 0x2100 + 4 * i,
  DOORBELL: 0x2200,
} as const;

/** Doorbell handles (nv_sriov_defines.h): what the guest writes to DOORBELL. */
export const Doorbell = { RPC_SETUP: 0, RPC_MESSAGE: 1 } as const;

/** MAILBOX_SCRATCH indexes holding the control page IOVA (nv_sriov_defines.h NV_VF_SCRATCH_REGISTER_GUEST_RPC_LO/HI). */
export const SCRATCH_GUEST_RPC_LO = 2;
export const SCRATCH_GUEST_RPC_HI = 3;

/** Leaf-0 bits the device raises (the device's assignment). */
export const LEAF0_RPC_ANSWERED = 1 << 0;
export const LEAF0_FW_EXCEPTION = 1 << 1;

/** MSI-X vector the leaf-0 interrupts arrive on. */
export const RPC_VECTOR = 0;

/** Guest RPC functions and NV_STATUS results (the device's guest RPC table; NV_STATUS values from nvstatuscodes.h). */
export const RpcFunction = { ECHO: 1, GET_INFO: 2, CE_COPY: 3, GET_EXCEPTIONS: 4 } as const;
export const NvStatus = { OK: 0, INVALID_ARGUMENT: 0x1f, NOT_SUPPORTED: 0x56 } as const;

/** Layout of the three guest pages (all little-endian). */
export const ControlPage = { VERSION: 0x00, REQUEST_ID: 0x04, RESPONSE_IOVA: 0x08, MESSAGE_IOVA: 0x10, MESSAGE_SIZE: 0x18 } as const;
export const ResponsePage = { RESPONSE_ID: 0x00, RESULT: 0x04 } as const;
export const MessageBuffer = { FUNCTION: 0x00, LENGTH: 0x04, PAYLOAD: 0x08 } as const;
export const CONTROL_VERSION = 1;
export const MESSAGE_SIZE_MIN = 4096;
export const MESSAGE_SIZE_MAX = 131072;
