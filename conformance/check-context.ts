/**
 * What a check works with: the fixture, the device under test, and helpers that turn whatever the HAL does into a
 * pass or a failure worded in the HAL's terms. Every HAL call a check makes goes through `attempt` (or one of the
 * expectation helpers), so
 *
 *   - an operation that should have worked and threw fails the check as "memory.reserve(2 MiB, align 2 MiB) failed:
 *     VGPU_ENOSPC: …", naming the operation and the HAL's own error;
 *   - a call that never settles fails the check after `settings.callMs` instead of hanging the whole run (a broken
 *     HAL must be reported, not wait forever).
 *
 * The context remembers every GPU it opened and closes it after the check, then opens the device once more and
 * closes it ("settle"), so each check starts from a device whose firmware is off — also after a check that
 * detached a GPU (its firmware keeps running until someone closes it) or crashed the firmware.
 */
import type { FirmwareImage, FirmwareInfo } from '../core/contracts/firmware.js';
import type { PciDeviceInfo, PhysicalGpu } from '../core/contracts/hal.js';
import type { Logger } from '../core/contracts/logger.js';
import { isVgpuError, type ErrorCode, type VgpuError } from '../core/contracts/exceptions.js';
import { ConformanceFailure, ConformanceSkip } from './check.js';
import { describeError } from './describe.js';
import type { HalFixture } from './hal-fixture.js';

export interface KitSettings {
  /** RPC timeout the kit opens GPUs with (and gives the calls it expects to succeed). */
  rpcTimeoutMs: number;
  /** Deadline of one boot. */
  bootTimeoutMs: number;
  /** Deadline of any one HAL call; a call still pending after it fails the check as hung. */
  callMs: number;
  /** How long the kit waits for something the HAL must do on its own (deliver an event, fail a call). */
  waitMs: number;
  /** Timeout the kit gives a call whose reply it arranged to be lost. */
  shortTimeoutMs: number;
  /** Deadline of one copy-engine scrub. */
  scrubTimeoutMs: number;
}

/** Generous bounds: they only decide when a HAL that never answers is declared hung, on a loaded 2-core host. */
export const DEFAULT_SETTINGS: KitSettings = Object.freeze({
  rpcTimeoutMs: 10_000,
  bootTimeoutMs: 30_000,
  callMs: 60_000,
  waitMs: 15_000,
  shortTimeoutMs: 400,
  scrubTimeoutMs: 30_000,
});

interface Tracked {
  gpu: PhysicalGpu;
  /** Closed or detached by the check itself: cleanup leaves it alone. */
  released: boolean;
}

export class CheckContext {
  private readonly tracked: Tracked[] = [];
  private readonly deferred: Array<{ what: string; run: () => unknown }> = [];

  constructor(readonly fixture: HalFixture, readonly logger: Logger, readonly settings: KitSettings) {}

  get device(): PciDeviceInfo {
    return this.fixture.devices[0]!;
  }

  get bdf(): string {
    return this.device.bdf;
  }

  get hal(): HalFixture['hal'] {
    return this.fixture.hal;
  }

  fail(message: string): never {
    throw new ConformanceFailure(message);
  }

  /** Fail unless `ok`; the message is built only on failure. */
  expect(ok: boolean, message: () => string): void {
    if (!ok) this.fail(message());
  }

  /** The capability, or a skip saying the HAL does not offer it. */
  need<T>(capability: T | undefined, what: string): T {
    if (capability === undefined || capability === null) throw new ConformanceSkip(`the HAL offers no ${what}`);
    return capability;
  }

  skip(reason: string): never {
    throw new ConformanceSkip(reason);
  }

  // ---- calls ----------------------------------------------------------------------------------------------------

  /** Run a HAL operation that must work; a throw or a hang fails the check naming `what`. */
  async attempt<T>(what: string, fn: () => T | Promise<T>, ms = this.settings.callMs): Promise<T> {
    try {
      return await this.within(what, Promise.resolve().then(fn), ms);
    } catch (e) {
      if (e instanceof ConformanceFailure || e instanceof ConformanceSkip) throw e;
      throw new ConformanceFailure(`${what} failed: ${describeError(e)}`, { cause: e });
    }
  }

  /** The synchronous form of `attempt`. */
  attemptSync<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof ConformanceFailure || e instanceof ConformanceSkip) throw e;
      throw new ConformanceFailure(`${what} failed: ${describeError(e)}`, { cause: e });
    }
  }

  /**
   * `fn` must reject with a VgpuError of one of `codes` (any code when empty), within `ms`. `onSuccess` gets what
   * it resolved with, so a wrongly opened GPU is still closed.
   */
  async rejects(what: string, fn: () => Promise<unknown>, codes: readonly ErrorCode[], opts: { ms?: number; onSuccess?: (v: unknown) => void } = {}): Promise<VgpuError> {
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: await this.within(what, Promise.resolve().then(fn), opts.ms ?? this.settings.callMs) };
    } catch (e) {
      if (e instanceof ConformanceFailure) throw e;
      outcome = { ok: false, error: e };
    }
    if (outcome.ok) {
      opts.onSuccess?.(outcome.value);
      this.fail(`${what} did not ${expected(codes)} (it succeeded)`);
    }
    return this.checkError(what, outcome.error, codes);
  }

  /** `fn` must throw a VgpuError of one of `codes` (any code when empty), synchronously. */
  throws(what: string, fn: () => unknown, codes: readonly ErrorCode[]): VgpuError {
    try {
      fn();
    } catch (e) {
      return this.checkError(what, e, codes);
    }
    return this.fail(`${what} did not ${expected(codes)} (it succeeded)`);
  }

  private checkError(what: string, e: unknown, codes: readonly ErrorCode[]): VgpuError {
    if (!isVgpuError(e) || (codes.length > 0 && !codes.includes(e.code))) {
      this.fail(`${what} did not ${expected(codes)} (it threw ${describeError(e)})`);
    }
    return e;
  }

  /** `p` within `ms`, or fail with "<what> did not settle within <ms> ms". */
  async within<T>(what: string, p: Promise<T>, ms: number): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new ConformanceFailure(`${what} did not settle within ${ms} ms`)), ms);
    });
    try {
      return await Promise.race([p, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Wait until `subscribe`'s callback is called with a value (e.g. an event listener that resolves on the event it
   * wants), failing with "<what> within <ms> ms" otherwise. `subscribe` returns its unsubscribe function.
   */
  async waitFor<T>(what: string, subscribe: (done: (value: T) => void) => (() => void) | void, ms = this.settings.waitMs): Promise<T> {
    let off: (() => void) | void = undefined;
    try {
      return await this.within(what, new Promise<T>((resolve) => { off = subscribe(resolve); }), ms);
    } finally {
      (off as (() => void) | undefined)?.();
    }
  }

  // ---- GPUs -----------------------------------------------------------------------------------------------------

  /** Open the device (the fixture's first unless given), run the fixture's onOpen, and close it after the check. */
  async open(device: PciDeviceInfo = this.device): Promise<PhysicalGpu> {
    const gpu = await this.attempt(`open() of ${device.bdf}`, () => this.hal.open(device, { logger: this.logger, rpcTimeoutMs: this.settings.rpcTimeoutMs }));
    this.track(gpu);
    if (this.fixture.onOpen !== undefined) await this.attempt(`the fixture's onOpen(${device.bdf})`, () => this.fixture.onOpen!(gpu));
    return gpu;
  }

  /** Remember a GPU someone opened (the kit closes it after the check unless the check released it). */
  track(gpu: PhysicalGpu): void {
    // A HAL may hand the same object back when it re-attaches a detached GPU: it is ours to close again.
    const t = this.tracked.find((x) => x.gpu === gpu);
    if (t === undefined) this.tracked.push({ gpu, released: false });
    else t.released = false;
  }

  image(gpu: PhysicalGpu): FirmwareImage {
    return this.fixture.firmwareImage ?? { version: gpu.config.firmwareFloor, source: 'conformance kit' };
  }

  async boot(gpu: PhysicalGpu): Promise<FirmwareInfo> {
    const image = this.image(gpu);
    return this.attempt(`firmware.boot(${image.version}) of ${gpu.bdf}`, () => gpu.firmware.boot(image, { timeoutMs: this.settings.bootTimeoutMs }),
      this.settings.bootTimeoutMs + 5000);
  }

  async openBooted(device?: PciDeviceInfo): Promise<PhysicalGpu> {
    const gpu = await this.open(device);
    await this.boot(gpu);
    return gpu;
  }

  async close(gpu: PhysicalGpu): Promise<void> {
    this.released(gpu);
    await this.attempt(`close() of ${gpu.bdf}`, () => gpu.close());
  }

  async detach(gpu: PhysicalGpu): Promise<void> {
    this.released(gpu);
    await this.attempt(`detach() of ${gpu.bdf}`, () => gpu.detach());
  }

  private released(gpu: PhysicalGpu): void {
    const t = this.tracked.find((x) => x.gpu === gpu);
    if (t !== undefined) t.released = true;
  }

  /** Run `fn` after the check (before the GPUs are closed), newest first. */
  defer(what: string, fn: () => unknown): void {
    this.deferred.push({ what, run: fn });
  }

  /**
   * Undo what the check left: deferred steps, GPUs it opened and did not release, then the settle (open + close)
   * that leaves the device's firmware off for the next check. Returns what failed, as sentences.
   */
  async cleanup(): Promise<string[]> {
    const errors: string[] = [];
    const run = async (what: string, fn: () => unknown): Promise<void> => {
      try {
        await this.within(what, Promise.resolve().then(fn), this.settings.callMs);
      } catch (e) {
        errors.push(e instanceof ConformanceFailure ? e.message : `${what} failed: ${describeError(e)}`);
      }
    };
    for (const d of this.deferred.splice(0).reverse()) await run(d.what, d.run);
    for (const t of this.tracked.splice(0).reverse()) {
      if (!t.released) await run(`close() of ${t.gpu.bdf}`, () => t.gpu.close());
    }
    for (const device of this.fixture.devices.slice(0, 1)) {
      await run(`re-opening ${device.bdf} to power it down`, async () => {
        const gpu = await this.hal.open(device, { logger: this.logger, rpcTimeoutMs: this.settings.rpcTimeoutMs });
        await gpu.close();
      });
    }
    return errors;
  }
}

function expected(codes: readonly ErrorCode[]): string {
  return codes.length === 0 ? 'fail with a VgpuError' : `throw ${codes.join(' or ')}`;
}
