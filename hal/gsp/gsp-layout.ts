/**
 * GSP message-queue layout: the numbers both ends of the host ↔ GSP-RM transport agree on. Each fact and its public
 * source (nouveau `nvkm/subdev/gsp/rm/r535/rpc.c`, nova-core `drivers/gpu/nova-core/gsp/cmdq.rs`, OpenRM
 * `message_queue_priv.h`) is in docs/reference/gsp-queues.md. Generation-neutral: every NVIDIA HAL that talks to
 * GSP-RM uses these.
 *
 * Region (one contiguous range of a SharedArena; offsets relative to the region base):
 *
 *   0x00000  PTE page        64-bit "DMA address" of every 4 KiB page of the region (its own page included);
 *                            the simulated address is the arena offset of the page.
 *   0x01000  command queue   0x40000 bytes, host → GSP. Page 0 = headers, 63 entry slots of 4 KiB.
 *   0x41000  message queue   0x40000 bytes, GSP → host (the "status queue"). Same shape.
 *   0x81000  control page    our own doorbell/control block (the real GPU uses falcon registers and
 *                            interrupts instead; a simulator has neither, so they become words in shared memory).
 *   0x82000  end
 *
 * Queue header page (per queue, written ONLY by that queue's producer):
 *   +0x00 msgqTxHeader (8 × u32): version, size, msgSize, msgCount, writePtr, flags, rxHdrOff, entryOff
 *   +0x20 msgqRxHeader: readPtr — the producer's read pointer of the OTHER queue. So the command-queue page holds
 *         the host's read pointer of the message queue, and the message-queue page holds the GSP's read pointer
 *         of the command queue (pointer ownership as nova-core's `Msgq` documents it: one writer per page, no shared lines).
 *
 * All words are little-endian u32 accessed with 32-bit atomics.
 */

export const GSP_PAGE_SIZE = 0x1000;
export const GSP_PAGE_SHIFT = 12;

/** Bytes of one queue (header page + entry slots). */
export const GSP_QUEUE_SIZE = 0x40000;
/** Entry slots start after the header page. */
export const GSP_QUEUE_ENTRY_OFFSET = 0x1000;
/** Entry (slot) size: one page. */
export const GSP_QUEUE_MSG_SIZE = 0x1000;
/** (size − entryOff) / msgSize = 63 slots; the writer keeps one empty, so at most 62 pages are in flight. */
export const GSP_QUEUE_MSG_COUNT = (GSP_QUEUE_SIZE - GSP_QUEUE_ENTRY_OFFSET) / GSP_QUEUE_MSG_SIZE;
/** msgqTxHeader.version. */
export const GSP_QUEUE_VERSION = 0;
/** msgqTxHeader.flags: 1 = "I want to swap RX". */
export const GSP_QUEUE_FLAGS = 1;
/** Offset of msgqRxHeader inside a queue header page. */
export const GSP_QUEUE_RX_HDR_OFFSET = 0x20;

/** Byte offsets inside a queue header page. */
export const QueueHeader = {
  VERSION: 0x00,
  SIZE: 0x04,
  MSG_SIZE: 0x08,
  MSG_COUNT: 0x0c,
  WRITE_PTR: 0x10,
  FLAGS: 0x14,
  RX_HDR_OFF: 0x18,
  ENTRY_OFF: 0x1c,
  /** msgqRxHeader.readPtr (at rxHdrOff). */
  RX_READ_PTR: GSP_QUEUE_RX_HDR_OFFSET,
} as const;

/** Element header (GSP_MSG_QUEUE_ELEMENT up to the RPC header). */
export const GSP_ELEMENT_HEADER_SIZE = 0x30;
/** rpc_message_header_v03_00. */
export const GSP_RPC_HEADER_SIZE = 0x20;
/** Where the payload starts inside an element. */
export const GSP_ELEMENT_PAYLOAD_OFFSET = GSP_ELEMENT_HEADER_SIZE + GSP_RPC_HEADER_SIZE;
/** An element spans at most 16 pages (64 KiB including headers). */
export const GSP_MAX_ELEMENT_PAGES = 16;
export const GSP_MAX_ELEMENT_SIZE = GSP_MAX_ELEMENT_PAGES * GSP_PAGE_SIZE;
/** Payload bytes one element can carry; larger RPCs continue in CONTINUATION_RECORD elements. */
export const GSP_MAX_ELEMENT_PAYLOAD = GSP_MAX_ELEMENT_SIZE - GSP_ELEMENT_PAYLOAD_OFFSET;

/** Byte offsets inside an element. */
export const Element = {
  AUTH_TAG: 0x00,
  AAD: 0x10,
  CHECKSUM: 0x20,
  SEQUENCE: 0x24,
  ELEM_COUNT: 0x28,
  PAD: 0x2c,
  RPC_HEADER_VERSION: 0x30,
  RPC_SIGNATURE: 0x34,
  RPC_LENGTH: 0x38,
  RPC_FUNCTION: 0x3c,
  RPC_RESULT: 0x40,
  RPC_RESULT_PRIVATE: 0x44,
  RPC_SEQUENCE: 0x48,
  /** union spare / cpuRmGfid. */
  RPC_GFID: 0x4c,
  PAYLOAD: 0x50,
} as const;

export const RPC_HEADER_VERSION = 0x03000000;
/** 'V','R','P','C' as a little-endian u32. */
export const RPC_SIGNATURE = 0x43505256;
/** What the host presets rpc_result / rpc_result_private to. */
export const RPC_RESULT_PENDING = 0xffffffff;

/**
 * NV_VGPU_MSG_FUNCTION_* as GSP-RM 570.144 numbers them (nouveau `nvkm/subdev/gsp/rm/r570/nvrm/rpcfn.h`, an excerpt
 * of open-gpu-kernel-modules 570.144 `rpc_global_enums.h`; docs/reference/gsp-queues.md). Only the functions vgpud
 * names; every number here was checked against that header. 535.113.01 (`rm/r535/nvrm/rpcfn.h`) agrees on 0..200
 * and 202; it differs at 201 (RESERVED_201 there, CTRL_GPU_QUERY_ECC_STATUS in 570) and ends at 203 — 570 adds
 * 203..226 and NUM_FUNCTIONS is 227. We speak 570.
 */
export const GspFunction = {
  NOP: 0,
  SET_GUEST_SYSTEM_INFO: 1,
  ALLOC_ROOT: 2,
  ALLOC_DEVICE: 3,
  ALLOC_MEMORY: 4,
  ALLOC_CTX_DMA: 5,
  ALLOC_CHANNEL_DMA: 6,
  MAP_MEMORY: 7,
  ALLOC_OBJECT: 9,
  FREE: 10,
  LOG: 11,
  ALLOC_VIDMEM: 12,
  UNMAP_MEMORY: 13,
  ALLOC_SUBDEVICE: 19,
  DUP_OBJECT: 21,
  ALLOC_EVENT: 23,
  GET_STATIC_INFO: 51,
  UPDATE_PDE_2: 53,
  SET_PAGE_DIRECTORY: 54,
  VGPU_PF_REG_READ32: 63,
  GET_GSP_STATIC_INFO: 65,
  UPDATE_BAR_PDE: 70,
  CONTINUATION_RECORD: 71,
  GSP_SET_SYSTEM_INFO: 72,
  SET_REGISTRY: 73,
  GSP_RM_CONTROL: 76,
  GET_STATIC_INFO2: 77,
  DUMP_PROTOBUF_COMPONENT: 78,
  UNSET_PAGE_DIRECTORY: 79,
  CTRL_SET_VGPU_FB_USAGE: 85,
  CTRL_GPU_HANDLE_VF_PRI_FAULT: 90,
  GSP_RM_ALLOC: 103,
  CTRL_GPU_MIGRATABLE_OPS: 195,
  INVALIDATE_TLB: 200,
  /** 570 only (535: RESERVED_201); deprecated in the 570 header. */
  CTRL_GPU_QUERY_ECC_STATUS: 201,
  ECC_NOTIFIER_WRITE_ACK: 202,
  /** 570 only (203..226 do not exist in 535). */
  RM_API_CONTROL: 204,
  GET_STATIC_DATA: 207,
  CTRL_SUBDEVICE_GET_VGPU_HEAP_STATS: 215,
  CTRL_EXEC_PARTITIONS_EXPORT: 226,
  /** One past the last function in 570.144 (535.113.01: 203). */
  NUM_FUNCTIONS: 227,
} as const;

/**
 * RPCs the host sends WITHOUT waiting for a reply, and that GSP-RM never answers: the two boot RPCs. nova-core
 * (`drivers/gpu/nova-core/gsp/boot.rs`) sends SetSystemInfo and SetRegistry with `send_command` and no receive;
 * nouveau (`nvkm/subdev/gsp/rm/r535/gsp.c`) sends both with NVKM_GSP_RPC_REPLY_NOWAIT. What arrives next is the
 * GSP_INIT_DONE event. The simulated GSP sends nothing back for these, and the host refuses to `call()` them.
 */
export const GSP_ASYNC_FUNCTIONS: ReadonlySet<number> = new Set([GspFunction.GSP_SET_SYSTEM_INFO, GspFunction.SET_REGISTRY]);

/**
 * NV_VGPU_MSG_EVENT_* as 570.144 numbers them (nouveau `rm/r570/nvrm/msgfn.h`). 535.113.01 (`rm/r535/nvrm/msgfn.h`)
 * agrees up to 0x101a and then differs (0x101b is GSP_SEND_USER_SHARED_DATA there); we use 570's.
 */
export const GspEvent = {
  FIRST: 0x1000,
  GSP_INIT_DONE: 0x1001,
  GSP_RUN_CPU_SEQUENCER: 0x1002,
  POST_EVENT: 0x1003,
  RC_TRIGGERED: 0x1004,
  MMU_FAULT_QUEUED: 0x1005,
  OS_ERROR_LOG: 0x1006,
  RG_LINE_INTR: 0x1007,
  GPUACCT_PERFMON_UTIL_SAMPLES: 0x1008,
  SIM_READ: 0x1009,
  SIM_WRITE: 0x100a,
  SEMAPHORE_SCHEDULE_CALLBACK: 0x100b,
  UCODE_LIBOS_PRINT: 0x100c,
  VGPU_GSP_PLUGIN_TRIGGERED: 0x100d,
  PERF_GPU_BOOST_SYNC_LIMITS_CALLBACK: 0x100e,
  PERF_BRIDGELESS_INFO_UPDATE: 0x100f,
  VGPU_CONFIG: 0x1010,
  DISPLAY_MODESET: 0x1011,
  EXTDEV_INTR_SERVICE: 0x1012,
  NVLINK_INBAND_RECEIVED_DATA_256: 0x1013,
  NVLINK_INBAND_RECEIVED_DATA_512: 0x1014,
  NVLINK_INBAND_RECEIVED_DATA_1024: 0x1015,
  NVLINK_INBAND_RECEIVED_DATA_2048: 0x1016,
  NVLINK_INBAND_RECEIVED_DATA_4096: 0x1017,
  TIMED_SEMAPHORE_RELEASE: 0x1018,
  NVLINK_IS_GPU_DEGRADED: 0x1019,
  PFM_REQ_HNDLR_STATE_SYNC_CALLBACK: 0x101a,
  NVLINK_FAULT_UP: 0x101b,
  GSP_LOCKDOWN_NOTICE: 0x101c,
  MIG_CI_CONFIG_UPDATE: 0x101d,
  UPDATE_GSP_TRACE: 0x101e,
  NVLINK_FATAL_ERROR_RECOVERY: 0x101f,
  GSP_POST_NOCAT_RECORD: 0x1020,
  FECS_ERROR: 0x1021,
  RECOVERY_ACTION: 0x1022,
  NUM_EVENTS: 0x1023,
} as const;

/** Function numbers at or above this are firmware events, not replies. */
export const GSP_EVENT_BASE = GspEvent.FIRST;

const FUNCTION_NAMES = new Map<number, string>();
for (const [k, v] of Object.entries(GspFunction)) FUNCTION_NAMES.set(v, k);
for (const [k, v] of Object.entries(GspEvent)) FUNCTION_NAMES.set(v, k);
/** Name of a function or event number for logs ("GSP_RM_CONTROL", "0x1234" when unknown). */
export function gspFunctionName(fn: number): string {
  return FUNCTION_NAMES.get(fn) ?? `0x${fn.toString(16)}`;
}

/** RM status codes the transport itself interprets (NV_STATUS). */
export const RmStatus = {
  OK: 0,
  NO_MEMORY: 0x51,
  NOT_READY: 0x55,
  TIMEOUT_RETRY: 0x66,
  GENERIC: 0xffff,
  /**
   * rpc_result the simulated GSP answers when a command element fails its checksum. The real firmware's value
   * is not in our sources, so this is a simulator-chosen value outside the NV_STATUS range, recognisable in logs.
   */
  SIM_BAD_CHECKSUM: 0xc5c50001,
  /** rpc_result when a request is malformed (bad signature/version, broken continuation) — simulator choice. */
  SIM_BAD_MESSAGE: 0xc5c50002,
} as const;

/** Region layout, byte offsets from the region base. */
export const GspRegion = {
  PTE: 0x00000,
  CMDQ: 0x01000,
  MSGQ: 0x01000 + GSP_QUEUE_SIZE,
  CONTROL: 0x01000 + 2 * GSP_QUEUE_SIZE,
  SIZE: 0x02000 + 2 * GSP_QUEUE_SIZE,
} as const;
/** Pages the PTE array describes (the whole region, its own page included). */
export const GSP_REGION_PAGES = GspRegion.SIZE / GSP_PAGE_SIZE;

/**
 * Control page words (byte offsets from GspRegion.CONTROL). Our own block: on silicon these are a falcon
 * register (queue-head doorbell), an interrupt line and GSP-RM's heartbeat in its own memory.
 *
 * A doorbell is a COUNTER plus a SLEEPING flag: the producer bumps the counter after publishing its write
 * pointer and calls wake32 only when the consumer has raised the flag (to the number of its sleep, never 0: the
 * producer clears it only if it still holds the number it read — Doorbell.wakeIfSleeping says why). Sleeper: read counter, raise flag,
 * re-check the ring, wait32(counter, seen). Producer: store writePtr, bump counter, read flag. With
 * sequentially consistent atomics one of the two always sees the other, so no wake-up is lost and a busy ring
 * costs no futex syscalls (the ≈50 µs cross-thread wake measured on our 2-vCPU hosts, docs/benchmarks.md, is paid
 * only when a side really sleeps).
 */
export const GspControl = {
  /** 'GSPC' once the host initialised the region. */
  MAGIC: 0x00,
  /** Layout version of this control block (GSP_CONTROL_VERSION). */
  LAYOUT_VERSION: 0x04,
  /** GSP queue-head doorbell: host bumps after publishing cmdq.writePtr (falcon 0xC00 on silicon). */
  GSP_DOORBELL: 0x08,
  /** Set by the GSP while it sleeps on GSP_DOORBELL. */
  GSP_SLEEPING: 0x0c,
  /** Host interrupt line: GSP bumps after publishing msgq.writePtr and on every FW_STATE change. */
  HOST_INTERRUPT: 0x10,
  /** Set by the host while it sleeps on HOST_INTERRUPT. */
  HOST_SLEEPING: 0x14,
  /** GSP bumps after advancing its cmdq read pointer (frees command slots). */
  CMDQ_SPACE: 0x18,
  /** Set by the host while it waits for command-queue space. */
  HOST_SPACE_WAITING: 0x1c,
  /** Host bumps after advancing its msgq read pointer (frees message slots). */
  MSGQ_SPACE: 0x20,
  /** Set by the GSP while it waits for message-queue space. */
  GSP_SPACE_WAITING: 0x24,
  /** GspFwState: written by the GSP (the host writes only OFF at init). */
  FW_STATE: 0x28,
  /** Firmware heartbeat counter, bumped every HEARTBEAT_PERIOD_MS by the GSP; a stalled counter while calls are
   *  pending means the firmware died without saying so (crash detection). */
  HEARTBEAT: 0x2c,
  /** The period the GSP promises for HEARTBEAT, in ms (0 = unknown). */
  HEARTBEAT_PERIOD_MS: 0x30,
  /** Reason code the GSP left when it crashed (0 = none; simulator-defined). */
  CRASH_REASON: 0x34,
  /**
   * Non-zero while the host has calls waiting for a reply (it sets it before publishing the first, clears it when
   * the last is answered). The simulated GSP keeps HEARTBEAT moving only while this is set: a host reads the
   * heartbeat only while it waits (OpenRM's health check sits in its reply-wait path), and an idle GSP thread
   * with a timer would cost every idle simulator a wake-up per period. Simulator layout; a real GSP-RM's heartbeat
   * runs always.
   */
  HOST_WAITING: 0x38,
} as const;

export const GSP_CONTROL_MAGIC = 0x43505347; // 'GSPC'
export const GSP_CONTROL_VERSION = 1;

export const GspFwState = {
  Off: 0,
  Booting: 1,
  Running: 2,
  Crashed: 3,
  Stopped: 4,
} as const;
export type GspFwState = (typeof GspFwState)[keyof typeof GspFwState];

/** Pages an element of `bytes` (headers included) occupies. */
export function elementPages(bytes: number): number {
  return (bytes + GSP_PAGE_SIZE - 1) >>> GSP_PAGE_SHIFT;
}
