/**
 * Waits for a copy-engine semaphore word to become non-zero (docs/reference/copy-engine-scrub.md step 8), woken by
 * the FIFO non-stall interrupt of one CHID. The interrupt arrives as a firmware event (`FIFO_NONSTALL`, id 5, payload
 * u32 LE chid — the record the HALs deliver) and may also be forwarded on the bus as 'channel:nonstall'; both wake
 * the waiter. No busy loop: besides the events, a coarse timer re-reads the word in case an interrupt was lost
 * (upstream would sleep the whole 4 s on a lost wake-up).
 */
import type { EventBus, FirmwareEventRecord } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { PhysicalGpu } from '../../core/contracts/hal.js';

export const FIFO_NONSTALL_EVENT_ID = 5;
export const FIFO_NONSTALL_EVENT_NAME = 'FIFO_NONSTALL';
/** Re-check period when no interrupt came. */
export const RECHECK_MS = 100;

export function nonstallChid(e: FirmwareEventRecord): number | undefined {
  if (e.eventId !== FIFO_NONSTALL_EVENT_ID && e.name !== FIFO_NONSTALL_EVENT_NAME) return undefined;
  if (e.payload.byteLength < 4) return undefined;
  return new DataView(e.payload.buffer, e.payload.byteOffset, e.payload.byteLength).getUint32(0, true);
}

/** A listener on one GPU's non-stall interrupts for one CHID; `close()` removes it (idempotent). */
export class NonstallWaiter {
  private wake: (() => void) | undefined;
  private readonly offs: Array<() => void> = [];
  /** Interrupts seen for this CHID (diagnostics). */
  interrupts = 0;

  constructor(gpu: PhysicalGpu, private readonly chid: number, bus?: EventBus) {
    const hit = (): void => { this.interrupts++; this.wake?.(); };
    this.offs.push(gpu.firmware.onEvent((e) => { if (nonstallChid(e) === chid) hit(); }));
    if (bus !== undefined) this.offs.push(bus.on('channel:nonstall', (e) => { if (e.gpu === gpu.bdf && e.chid === chid) hit(); }));
  }

  /**
   * Resolve once `done()` is true; re-evaluated on every interrupt of this CHID and every RECHECK_MS. Rejects
   * with VGPU_ETIMEDOUT after `timeoutMs`, VGPU_ECANCELED when `signal` aborts.
   */
  wait(done: () => boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const finish = (err?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        clearInterval(recheck);
        this.wake = undefined;
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err);
        else resolve();
      };
      const check = (): void => {
        try {
          if (done()) finish();
        } catch (e) {
          finish(e instanceof Error ? e : new Error(String(e)));
        }
      };
      const onAbort = (): void => finish(new VgpuError(ErrorCode.Cancelled, `wait for the copy engine on CHID ${this.chid} was cancelled`, {
        hint: 'the caller aborted the scrub', cause: signal?.reason,
      }));
      const deadline = setTimeout(() => {
        check(); // one last look: the interrupt may be the thing that was lost
        finish(new VgpuError(ErrorCode.RpcTimeout, `the copy engine on CHID ${this.chid} did not release its semaphore within ${timeoutMs} ms`, {
          hint: 'the copy engine is hung or its interrupt is not delivered; check the GPU (RC events, GSP log) or raise timeouts.scrubMs',
          details: { chid: this.chid, timeoutMs, interrupts: this.interrupts },
        }));
      }, timeoutMs);
      const recheck = setInterval(check, Math.max(1, Math.min(RECHECK_MS, timeoutMs)));
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.wake = check;
      check();
    });
  }

  close(): void {
    for (const off of this.offs.splice(0)) off();
    this.wake = undefined;
  }
}
