/**
 * FbScrubber with the copy engine: the upstream procedure (docs/reference/copy-engine-scrub.md), step by step.
 *
 *   1. CE channel on the vGPU's LAST CHID            6. zero the semaphore word through the host mapping
 *   2. 4 KiB semaphore page: channel VA + host map   7. begin(150), NOPs, bind, memset, semaphore + interrupt
 *   3. listener for this CHID's FIFO non-stall       8. submit; wait for the word ≠ 0, woken by the interrupt
 *   4. guest FB mapped into the channel (huge pages) 9. tear everything down in reverse — also on failure
 *   5. lines of ≤ 2 GiB
 *
 * Where this departs from upstream, on purpose:
 *  - A large FB goes out in several submissions (plugins.scrub.submitMiB, 2 GiB by default), steps 6–8 once per
 *    submission: 'scrub:progress' then reports bytes the engine really wrote, and the timeout applies per
 *    submission (a 4 s budget for a whole 48 GB FB is the user-reported upstream problem).
 *  - Every resource is released even when a step fails (upstream leaks on some error paths,
 *    docs/reference/create-order.md); a teardown failure after a successful wipe is still reported, because it
 *    leaks device memory.
 *  - An inexact line split is an error, never a silently shortened wipe.
 */
import type { EventBus } from '../../core/contracts/events.js';
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';
import type { CopyChannel } from '../../core/contracts/channels.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { FbRange, HostMapping } from '../../core/contracts/memory.js';
import type { FbScrubber, ScrubRequest } from '../../core/contracts/scrubber.js';
import type { ScrubRecord } from '../../core/contracts/vgpu-service.js';
import type { Clock } from '../../core/clock.js';
import { NonstallWaiter } from './nonstall-waiter.js';
import { SCRUB_PUSHBUF_DWORDS, buildScrubPushbuf } from './scrub-pushbuf.js';
import type { ScrubSettings } from './scrub-config.js';
import { verifyRange } from './scrub-verify.js';

/** The scrub value (OpenRM MEMSET_PATTERN). */
export const SCRUB_PATTERN = 0;
const SEMAPHORE_BYTES = 4096n;

/** One undo step of the teardown stack. */
interface Undo {
  what: string;
  run: () => void | Promise<void>;
}

export class CeScrubber implements FbScrubber {
  constructor(
    private readonly bus: EventBus,
    private readonly logger: Logger,
    private readonly clock: Clock,
    private readonly settings: () => ScrubSettings,
  ) {}

  async scrub(req: ScrubRequest): Promise<ScrubRecord> {
    const s = this.settings();
    this.checkRequest(req);
    const started = this.clock.now();
    const log = this.logger.child({ gpu: req.gpu.bdf, vgpuId: req.vgpuId, area: 'scrub' });
    const pattern = SCRUB_PATTERN;
    const useCe = req.gpu.caps.has('ce-chan-alloc') && req.gpu.caps.has('pushbuf-submit');
    if (!useCe && !s.hostFallback) {
      throw new VgpuError(ErrorCode.UnsupportedDevice, `${req.gpu.bdf} has no copy-engine channel to scrub with`, {
        hint: 'use a HAL with ce-chan-alloc and pushbuf-submit, or enable plugins.scrub.hostFallback',
      });
    }
    try {
      if (useCe) await this.scrubWithCe(req, s, pattern, log);
      else await this.scrubFromHost(req, pattern, log);
    } catch (e) {
      throw this.typed(e, req);
    }
    let verified: boolean | null = null;
    let badAt: bigint | null = null;
    if (req.verify ?? s.verify) {
      badAt = await verifyRange(req.gpu.memory, req.range, pattern);
      verified = badAt === null;
    }
    const record: ScrubRecord = {
      at: Date.now(), bytes: req.range.size, durationMs: this.clock.now() - started, pattern, verified, reason: req.reason,
    };
    this.bus.emit('scrub:done', { gpu: req.gpu.bdf, vgpuId: req.vgpuId, record });
    if (badAt !== null) {
      log.error('scrub verify FAILED: stale data left in the FB', { offset: String(badAt) });
      throw new VgpuError(ErrorCode.Scrub, `verify after scrubbing ${req.vgpuId}: the word at +0x${badAt.toString(16)} of its FB is not 0x${pattern.toString(16)}`, {
        hint: 'the FB still holds earlier data: do not hand it to a guest; check the copy engine and retry the scrub',
        details: { gpu: req.gpu.bdf, vgpuId: req.vgpuId, offset: String(badAt), record },
      });
    }
    log.info('FB scrubbed', { bytes: String(record.bytes), durationMs: Math.round(record.durationMs), verified, via: useCe ? 'copy-engine' : 'host' });
    return record;
  }

  private async scrubWithCe(req: ScrubRequest, s: ScrubSettings, pattern: number, log: Logger): Promise<void> {
    const { gpu, range, vgpuId } = req;
    const timeoutMs = req.timeoutMs ?? s.timeoutMs;
    const undo: Undo[] = [];
    let failure: { error: unknown } | undefined;
    try {
      // 1. the vGPU's last CHID
      const chid = req.chids.offset + req.chids.count - 1;
      const ch: CopyChannel = await gpu.channels.allocCopyChannel(chid, vgpuId);
      undo.push({ what: 'free copy channel', run: () => ch.free() });
      // 2. semaphore page, in the channel and for the host
      // Below the guest-FB region when the caller names it, like the management heaps: first fit could otherwise
      // put it on a guest placement a VF has selected but no create has reserved yet (that create would then fail).
      const sem: FbRange = gpu.memory.reserve({
        size: SEMAPHORE_BYTES, owner: vgpuId, label: 'semaphore', ...(req.scratchBelow !== undefined ? { below: req.scratchBelow } : {}),
      });
      undo.push({ what: 'free semaphore page', run: () => gpu.memory.free(sem) });
      const semVa = ch.mapMemory(sem, { size: SEMAPHORE_BYTES });
      undo.push({ what: 'unmap semaphore from channel', run: () => ch.unmapMemory(semVa) });
      const semMap: HostMapping = gpu.memory.map(sem, { size: 4n });
      undo.push({ what: 'unmap semaphore host mapping', run: () => semMap.unmap() });
      // 3. the non-stall listener, before any work can complete
      const waiter = new NonstallWaiter(gpu, chid, this.bus);
      undo.push({ what: 'remove non-stall listener', run: () => waiter.close() });
      // 4. the guest FB
      const fbVa = ch.mapMemory(range, { hugePage: true, compressibleDisable: true });
      undo.push({ what: 'unmap guest FB from channel', run: () => ch.unmapMemory(fbVa) });

      const total = range.size;
      const step = s.submitBytes === 0n ? total : s.submitBytes;
      const zero = Buffer.alloc(4);
      for (let done = 0n; done < total; ) {
        const bytes = total - done < step ? total - done : step;
        // 5.–7. (the split happens inside the builder: lines of ≤ 2 GiB)
        const dwords = buildScrubPushbuf({ objectHandle: ch.objectHandle, dstVa: fbVa + done, bytes, pattern, semaphoreVa: semVa });
        semMap.write(0, zero);
        ch.begin(SCRUB_PUSHBUF_DWORDS);
        for (const d of dwords) ch.emit(d);
        // 8.
        await ch.submit({ timeoutMs, ...(req.signal ? { signal: req.signal } : {}) });
        await waiter.wait(() => semMap.read(0, 4).readUInt32LE(0) !== 0, timeoutMs, req.signal);
        done += bytes;
        this.bus.emit('scrub:progress', { gpu: gpu.bdf, vgpuId, done: Number(done), total: Number(total) });
      }
      log.debug('copy engine done', { chid, interrupts: waiter.interrupts });
    } catch (e) {
      failure = { error: e };
    }
    // 9. reverse order, every step attempted even when one fails
    const errors: string[] = [];
    for (const u of undo.reverse()) {
      try {
        await u.run();
      } catch (e) {
        errors.push(`${u.what}: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    if (errors.length > 0) log.error('scrub teardown failed', { errors });
    if (failure !== undefined) throw failure.error;
    if (errors.length > 0) {
      throw new VgpuError(ErrorCode.Scrub, `scrub of ${vgpuId} finished but its teardown failed: ${errors.join('; ')}`, {
        hint: 'device resources may have leaked; check the GPU books and restart the daemon if they grow',
        details: { gpu: gpu.bdf, vgpuId, errors },
      });
    }
  }

  /** No copy engine: wipe through the FB's host fill (the native arena fill, off the event loop). */
  private async scrubFromHost(req: ScrubRequest, pattern: number, log: Logger): Promise<void> {
    log.warn('no copy-engine channel on this GPU: scrubbing from the host');
    await req.gpu.memory.fill(req.range, pattern);
    const total = Number(req.range.size);
    this.bus.emit('scrub:progress', { gpu: req.gpu.bdf, vgpuId: req.vgpuId, done: total, total });
  }

  private checkRequest(req: ScrubRequest): void {
    const bad = (what: string): never => {
      throw new VgpuError(ErrorCode.InvalidArgument, `scrub request: ${what}`, {
        hint: 'pass the vGPU\'s live FB range, its CHID range and its id',
      });
    };
    if (!req || typeof req !== 'object' || !req.gpu || !req.range) bad('gpu and range are required');
    if (typeof req.vgpuId !== 'string' || req.vgpuId === '') bad('vgpuId is required');
    if (req.range.size <= 0n || req.range.size % 4096n !== 0n || req.range.offset % 4n !== 0n) bad(`range #${req.range.id} is not page sized`);
    if (!req.chids || !Number.isInteger(req.chids.offset) || !Number.isInteger(req.chids.count) || req.chids.count < 1) bad('the CHID range is empty');
    if (req.timeoutMs !== undefined && !(Number.isFinite(req.timeoutMs) && req.timeoutMs > 0)) bad(`timeoutMs ${req.timeoutMs} is not a positive number`);
    if (req.scratchBelow !== undefined && (typeof req.scratchBelow !== 'bigint' || req.scratchBelow < SEMAPHORE_BYTES)) bad(`scratchBelow ${String(req.scratchBelow)} leaves no room for the semaphore page`);
  }

  /** Everything leaves as VGPU_ESCRUB, except timeouts and cancellations, which keep their own codes. */
  private typed(e: unknown, req: ScrubRequest): VgpuError {
    if (isVgpuError(e, ErrorCode.RpcTimeout) || isVgpuError(e, ErrorCode.Cancelled) || isVgpuError(e, ErrorCode.Scrub)) return e;
    const code = e instanceof VgpuError ? e.code : undefined;
    return new VgpuError(ErrorCode.Scrub, `scrub of ${req.vgpuId} on ${req.gpu.bdf} failed: ${e instanceof Error ? e.message : String(e)}`, {
      hint: e instanceof VgpuError ? e.hint : 'see the daemon log; the FB was not (completely) wiped',
      details: { gpu: req.gpu.bdf, vgpuId: req.vgpuId, ...(code !== undefined ? { causeCode: code } : {}) },
      cause: e,
    });
  }
}
