/**
 * Firmware contract: the GSP of one physical GPU, as the core driver exposes it
 * (docs/reference/core-driver-interface.md duty 1 and ops 4–10, docs/reference/gsp-queues.md). The vGPU manager never
 * sees queues or registers: it boots the firmware, allocates RM clients, sends RM controls and raw RPCs, and listens
 * to firmware events.
 *
 * All calls are asynchronous and look synchronous to the caller: `await rpc(...)` resolves with the reply of that
 * call, whatever else is in flight.
 */
import type { FirmwareEventRecord } from './events.js';

export interface FirmwareImage {
  /** GSP build version the image carries, e.g. "570.144". */
  version: string;
  /** Where it came from (file path, "embedded"), for logs. */
  source?: string;
}

export interface FirmwareInfo {
  /** Version string reported by the running firmware (GSP_GET_FEATURES firmwareVersion). */
  version: string;
  /** True once GSP_INIT_DONE arrived. */
  initDone: boolean;
  /**
   * True when the HAL attached to a firmware that was already running (a daemon restart: what an earlier run made
   * may still live in it); false when this host booted it (nothing of an earlier run can). Absent: the HAL cannot
   * tell.
   */
  attached?: boolean;
}

export interface RpcOptions {
  /** Reply timeout; defaults to the HAL's (OpenRM-like 1.5 × 4 s). Tests shrink it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export type FirmwareState = 'off' | 'booting' | 'running' | 'crashed';

/**
 * An RM client allocated in the firmware: RM handles of the client, its device and subdevice objects
 * (docs/reference/core-driver-interface.md op 4 allocates client + device; controls addressed to the GPU go to the
 * subdevice).
 */
export interface RmClient {
  readonly hClient: number;
  readonly hDevice: number;
  readonly hSubdevice: number;
}

/** The three per-vGPU firmware log areas (docs/reference/host-rpc-mailbox.md), plus the firmware's own log. */
export type LogContext = 'init-task' | 'vgpu-task' | 'kernel' | 'gsp';

export type RpcObserver = (e: { fn: string; ms: number; error?: string }) => void;

/** Log text written since a cursor (Firmware.readLogSince). */
export interface LogChunk {
  /** The new bytes, oldest first (complete lines or not: the reader splits them). */
  text: Uint8Array;
  /** Cursor for the next call: the area's running count of bytes ever written. */
  cursor: number;
  /** Bytes written since the old cursor that the area no longer holds (it wrapped): 0 normally. */
  lost: number;
}

export type FirmwareEventListener = (event: FirmwareEventRecord) => void;

export interface Firmware {
  readonly state: FirmwareState;

  /** Load and start the GSP; resolves when the firmware reports init done. Refuses an image below the HAL floor. */
  boot(image: FirmwareImage, opts?: RpcOptions): Promise<FirmwareInfo>;
  /** Orderly stop (unbind, daemon shutdown with `detach=false`). */
  shutdown(): Promise<void>;
  info(): FirmwareInfo;

  /** Raw RPC by function number (NV_VGPU_MSG_FUNCTION_*); payload excludes the RPC header. */
  rpc(fn: number, payload: Uint8Array, opts?: RpcOptions): Promise<Uint8Array>;

  /**
   * Allocate an RM client with device and subdevice objects (op 4, "alloc_gsp_client"). With `hClient` the HAL
   * uses that client handle (and derives the others from it) instead of choosing one, so a caller can journal the
   * handle BEFORE the allocation and free it after a crash; a handle already in use is refused.
   */
  allocClient(opts?: RpcOptions & { hClient?: number }): Promise<RmClient>;
  /** Free a client and every object under it (op 5). Idempotent. */
  freeClient(client: RmClient, opts?: RpcOptions): Promise<void>;
  /**
   * Send an RM control to the client's subdevice (ops 7–10). `params` is the control's parameter block; the
   * resolved value is the parameter block as the firmware returned it (same size). A non-zero RM status rejects
   * with a typed error carrying the status.
   */
  control(client: RmClient, cmd: number, params: Uint8Array, opts?: RpcOptions): Promise<Uint8Array>;

  /** Firmware events (RC, MMU fault, error log, post event, FIFO non-stall …). Returns unsubscribe. */
  onEvent(listener: FirmwareEventListener): () => void;
  /** The same events as an async stream, ended when the firmware stops or the signal aborts. */
  events(signal?: AbortSignal): AsyncIterable<FirmwareEventRecord>;

  /**
   * Observe every RPC this host sends (function name, round trip in ms, error code if it failed), for the
   * per-GPU latency histogram. Optional: a HAL without a message transport has nothing to report.
   */
  observeRpcs?(listener: RpcObserver): () => void;

  /** Snapshot of a log buffer: the GSP's own (`'gsp'`) or one of a vGPU's areas (by gfid). */
  readLog(context: LogContext, gfid?: number): Uint8Array;

  /**
   * Only what a vGPU's log area received since `cursor` (0 at first; then the returned cursor). Optional: without it
   * a reader diffs `readLog` snapshots, which copies the whole area every time.
   */
  readLogSince?(context: LogContext, gfid: number, cursor: number): LogChunk;

  /**
   * Told when the firmware wrote log text for a gfid (on a GSP, the interrupt the host services and reads the logs
   * on). Optional: a firmware that cannot say so is polled by whoever drains its logs. Returns unsubscribe.
   */
  onLogWritten?(listener: (gfid: number) => void): () => void;
}
