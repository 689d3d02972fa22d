/**
 * Exceptions contract: the typed errors every layer throws, and the relay that routes hardware and firmware
 * exceptions (RC errors, MMU faults, error logs, a crashed GSP) to whoever owns the faulting resource.
 *
 * Codes are stable strings (`VGPU_E…`): scripts, the CLI's exit codes and metrics key on them, so a code is never
 * renamed or reused. Every error carries a `hint` that tells the reader what to do next, because an operator who
 * sees "ENOSPC" at 3 a.m. needs the next step, not the errno.
 */

/** Stable error codes. Add new ones at the end of their group; never rename. */
export const ErrorCode = {
  // input and usage
  InvalidArgument: 'VGPU_EINVAL',
  NotFound: 'VGPU_ENOENT',
  UnknownType: 'VGPU_ENODEV_TYPE',
  Config: 'VGPU_ECONFIG',
  /** A request (body, layout, URL) over one of the API's size limits; the message names the limit. */
  TooLarge: 'VGPU_E2BIG',
  /** A request body in a media type the route does not take. */
  MediaType: 'VGPU_EMEDIATYPE',
  /** The kernel refused an attribute write for want of permission (EACCES/EPERM: not root, a read-only file). */
  PermissionDenied: 'VGPU_EACCES',
  // state and concurrency
  Busy: 'VGPU_EBUSY',
  IllegalState: 'VGPU_ESTATE',
  Cancelled: 'VGPU_ECANCELED',
  // resources
  NoSpace: 'VGPU_ENOSPC',
  OutOfMemory: 'VGPU_ENOMEM',
  /** The filesystem of the state dir is full (ENOSPC/EDQUOT): the journal cannot record the step. */
  StateFull: 'VGPU_ESTATEFULL',
  /** Any other failure to write the state journal (EIO, EROFS, …). */
  Journal: 'VGPU_EJOURNAL',
  // devices and firmware
  UnsupportedDevice: 'VGPU_ENODEV',
  FirmwareTooOld: 'VGPU_EFWVER',
  FirmwareBoot: 'VGPU_EFWBOOT',
  FirmwareRpc: 'VGPU_ERPC',
  RpcTimeout: 'VGPU_ETIMEDOUT',
  Checksum: 'VGPU_ECHECKSUM',
  GpuLost: 'VGPU_ELOST',
  // metadata
  Metadata: 'VGPU_EMETADATA',
  // plugins and wiring
  PluginMissing: 'VGPU_EPLUGIN_MISSING',
  PluginCycle: 'VGPU_EPLUGIN_CYCLE',
  PluginStart: 'VGPU_EPLUGIN_START',
  // vGPU lifecycle
  CreateStep: 'VGPU_ECREATE',
  DestroyStep: 'VGPU_EDESTROY',
  Scrub: 'VGPU_ESCRUB',
  Migration: 'VGPU_EMIGRATION',
  // native addon
  NativeRange: 'VGPU_ERANGE',
  NativeAlign: 'VGPU_EALIGN',
  Internal: 'VGPU_EINTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface VgpuErrorOptions {
  /** What the reader should do about it. Required in spirit; defaults to a generic line. */
  hint?: string;
  /** Structured facts (ids, offsets, sizes) for logs and `--json` output. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** The one error class of the project. Subclass only when a caller needs `instanceof` on a family. */
export class VgpuError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, opts: VgpuErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'VgpuError';
    this.code = code;
    this.hint = opts.hint ?? 'see the daemon log for details';
    this.details = opts.details ?? {};
  }

  /** A plain object for JSON APIs and logs. */
  toJSON(): { code: ErrorCode; message: string; hint: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isVgpuError(e: unknown, code?: ErrorCode): e is VgpuError {
  return e instanceof VgpuError && (code === undefined || e.code === code);
}

/** Who an exception belongs to: one vGPU of a GPU, or the physical GPU itself. */
export type ExceptionOwner = { kind: 'vgpu'; gpu: string; vgpuId: string } | { kind: 'gpu'; gpu: string };

/** A hardware or firmware exception as the relay sees it. */
export interface GpuException {
  gpu: string;
  /** GFID the firmware tagged the event with (0 = the PF itself); absent when the source has no gfid. */
  gfid?: number;
  source: 'hardware' | 'firmware' | 'host';
  /** Short kind: 'rc', 'mmu-fault', 'error-log', 'gsp-crash', 'xid', … */
  kind: string;
  message: string;
  /** Raw event number (GSP event id such as 0x1004) when the source is the firmware. */
  eventId?: number;
  fatal: boolean;
  at: number;
  data?: Record<string, unknown>;
}

export type ExceptionListener = (exception: GpuException, owner: ExceptionOwner) => void;

/**
 * Routes an exception to its owner. Owners are resolved through registered resolvers (the vGPU manager registers
 * one that maps a gfid to a vGPU id); an exception no resolver claims belongs to the physical GPU.
 */
export interface ExceptionRelay {
  report(exception: GpuException): ExceptionOwner;
  /** Subscribe to exceptions for one owner (a vGPU id or a GPU's BDF), or to all with `'*'`. Returns unsubscribe. */
  subscribe(owner: string, listener: ExceptionListener): () => void;
  /** Register a resolver from (gpu, gfid) to an owner; the first one returning non-undefined wins. */
  addResolver(resolver: (exception: GpuException) => ExceptionOwner | undefined): () => void;
}
