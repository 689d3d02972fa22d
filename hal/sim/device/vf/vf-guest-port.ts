/**
 * The guest-visible side of a simulated Ada GPU's VFs, for the process that serves them to VMMs (the vfio-user
 * device front). The front imports this module by the path the HAL publishes (`PhysicalGpu.guestPort`) and opens
 * the device region itself — it outlives the daemon, so it cannot borrow the daemon's mapping.
 *
 * Registers are served by the device model (vf-registers.ts); a guest doorbell rings the GPU's doorbell unit, where
 * the GSP thread's plugin task picks it up; the device's interrupts and DMA requests reach the front through ONE
 * wait per GPU on the bus block's FRONT_KICK word (woken by the device, across processes: a futex on the file).
 */
import type { GuestBarSizes, GuestDmaHandler, GuestPort, GuestVf } from '../../../../core/contracts/guest-port.js';
import type { SharedArena } from '../../../../native/native-ops.js';
import { loadNativeOps } from '../../../../native/index.js';
import { Bar0, Region, vfConfigOffset } from '../device-layout.js';
import { readHeader } from '../device-region.js';
import { DmaOp, TaskState, VF_BUS, VfBus, VfPage, vfPage, vfStaging, VF_STAGING_SIZE } from './vf-layout.js';
import { VfRegisterFile, ringFirmware } from './vf-registers.js';
import { adoptRestoredRegisters, restorePending } from './vf-guest-state.js';

const EIO = 5;
const EFAULT = 14;

/** The token the front rings after a reset (not a guest token): the firmware just looks at every task. */
const RESET_TOKEN = 31;

export interface AdaGuestPortOptions {
  gpu: string;
  /** Process mode: the device region file. */
  path?: string;
  /** Worker mode: the region's SharedArrayBuffer (the front runs in the same process). */
  sab?: SharedArrayBuffer;
}

function errnoOf(e: unknown): number {
  const n = (e as { details?: { errno?: unknown } } | undefined)?.details?.errno;
  return typeof n === 'number' && n > 0 ? n : EIO;
}

class AdaGuestVf implements GuestVf {
  readonly gfid: number;
  private readonly regs: VfRegisterFile;
  private readonly page: bigint;
  private readonly lastTotal = new Array<number>(32).fill(0);
  dma: GuestDmaHandler | null = null;

  constructor(private readonly port: AdaGuestPort, readonly index: number) {
    this.gfid = index + 1;
    const a = port.arena;
    this.regs = new VfRegisterFile(a, index, a.load32(BigInt(Region.BAR0 + Bar0.PMC_BOOT_0)));
    this.page = BigInt(vfPage(index));
    for (let b = 0; b < 32; b++) this.lastTotal[b] = this.regs.total(b);
  }

  private load(off: number): number {
    return this.port.arena.load32(this.page + BigInt(off));
  }

  private store(off: number, v: number): void {
    this.port.arena.store32(this.page + BigInt(off), v >>> 0);
  }

  configSpace(): Uint8Array {
    return Uint8Array.from(this.port.arena.window(BigInt(vfConfigOffset(this.index)), 0x1000));
  }

  bars(): GuestBarSizes {
    return this.port.vfBars;
  }

  /** Registers a migration restored (staged by the device) become live before the guest's next access to them. */
  private adoptRestored(): void {
    if (restorePending(this.port.arena, this.index)) adoptRestoredRegisters(this.port.arena, this.index, (b) => this.regs.total(b));
  }

  read32(bar: number, offset: number): number {
    if (bar !== 0) return 0;
    this.adoptRestored();
    return this.regs.guestRead32(offset);
  }

  write32(bar: number, offset: number, value: number, byteMask = 0xffffffff): void {
    if (bar !== 0) return;
    this.adoptRestored();
    const effect = this.regs.guestWrite32(offset, value, byteMask);
    if (effect.doorbell !== undefined) ringFirmware(this.port.arena, this.index, effect.doorbell);
  }

  fbSlice(): { offset: bigint; size: bigint } | null {
    const st = this.load(VfPage.TASK_STATE);
    if (st === TaskState.NONE || st === TaskState.SHUTDOWN) return null;
    const w = this.port.arena.window(this.page + BigInt(VfPage.FB_OFFSET), 16);
    return { offset: w.readBigUInt64LE(0), size: w.readBigUInt64LE(8) };
  }

  fbFile(): { path: string; offset: bigint } | null {
    return this.port.path === null ? null : { path: this.port.path, offset: BigInt(Region.FB) };
  }

  private fbAt(offset: bigint, length: number): bigint {
    const s = this.fbSlice();
    if (s === null || offset > s.size || BigInt(length) > s.size - offset) {
      throw new RangeError(`FB access [0x${offset.toString(16)}, +${length}) outside the vGPU's slice`);
    }
    return BigInt(Region.FB) + s.offset + offset;
  }

  fbRead(offset: bigint, length: number): Uint8Array {
    return Uint8Array.from(this.port.arena.window(this.fbAt(offset, length), length));
  }

  fbWrite(offset: bigint, data: Uint8Array): void {
    this.port.arena.window(this.fbAt(offset, data.length), data.length).set(data);
  }

  takeInterrupts(): number[] {
    this.adoptRestored();
    let fire = false;
    for (let b = 0; b < 32; b++) {
      const t = this.regs.total(b);
      if (t === this.lastTotal[b]) continue;
      this.lastTotal[b] = t;
      if (this.regs.delivers(b)) fire = true;
    }
    // Every interrupt of this VF goes through MSI-X vector 0 (the top-level tree has one subtree in use).
    return fire ? [0] : [];
  }

  setBusMaster(on: boolean): void {
    this.store(VfPage.BUS_MASTER, on ? 1 : 0);
  }

  serveDma(handler: GuestDmaHandler | null): void {
    this.dma = handler;
    this.store(VfPage.ATTACHED, handler === null ? 0 : 1);
  }

  reset(): void {
    // A reset wins over registers a migration staged and the guest never saw.
    adoptRestoredRegisters(this.port.arena, this.index, (b) => this.regs.total(b), true);
    this.regs.resetGuestSide();
    for (let b = 0; b < 32; b++) this.lastTotal[b] = this.regs.total(b);
    // Rings made before this reset die with it; the ones after it (the guest's new setup) must not.
    this.store(VfPage.RESET_RINGS, this.load(VfPage.RINGS));
    this.store(VfPage.RESET_RINGS + 4, this.load(VfPage.RINGS + 4));
    this.store(VfPage.RESETS, this.load(VfPage.RESETS) + 1);
    ringFirmware(this.port.arena, this.index, RESET_TOKEN);
  }

  /** Carry out the device's pending DMA request, if any, and answer it. */
  async pump(): Promise<void> {
    const req = this.load(VfPage.DMA_REQ);
    if (req === this.load(VfPage.DMA_DONE)) return;
    const a = this.port.arena;
    const op = this.load(VfPage.DMA_OP);
    const iova = a.window(this.page + BigInt(VfPage.DMA_IOVA), 8).readBigUInt64LE(0);
    const length = this.load(VfPage.DMA_LENGTH);
    const fbOffset = a.window(this.page + BigInt(VfPage.DMA_FB_OFFSET), 8).readBigUInt64LE(0);
    let status = 0;
    const h = this.dma;
    try {
      if (h === null || this.load(VfPage.BUS_MASTER) !== 1) {
        status = EIO;
      } else if (op === DmaOp.READ_TO_STAGING || op === DmaOp.WRITE_FROM_STAGING) {
        if (length > VF_STAGING_SIZE) status = EFAULT;
        else if (op === DmaOp.READ_TO_STAGING) a.window(BigInt(vfStaging(this.index)), length).set(await h.read(iova, length));
        else await h.write(iova, Uint8Array.from(a.window(BigInt(vfStaging(this.index)), length)));
      } else if (op === DmaOp.WRITE_FROM_FB || op === DmaOp.READ_TO_FB) {
        if (fbOffset > this.port.fbBytes || BigInt(length) > this.port.fbBytes - fbOffset) {
          status = EFAULT;
        } else {
          const fb = a.window(BigInt(Region.FB) + fbOffset, length);
          if (op === DmaOp.WRITE_FROM_FB) await h.write(iova, fb);
          else fb.set(await h.read(iova, length));
        }
      } else {
        status = EFAULT;
      }
    } catch (e) {
      status = errnoOf(e);
    }
    this.store(VfPage.DMA_STATUS, status);
    this.store(VfPage.DMA_DONE, req);
    a.wake32(this.page + BigInt(VfPage.DMA_DONE));
  }

  irqSeq(): number {
    return this.load(VfPage.IRQ_SEQ);
  }

  dmaPending(): boolean {
    return this.load(VfPage.DMA_REQ) !== this.load(VfPage.DMA_DONE);
  }
}

export class AdaGuestPort implements GuestPort {
  readonly gpu: string;
  readonly numVfs: number;
  readonly arena: SharedArena;
  readonly path: string | null;
  readonly vfBars: GuestBarSizes;
  readonly fbBytes: bigint;
  private readonly vfs = new Map<number, AdaGuestVf>();
  private stopWatch: (() => void) | null = null;

  constructor(o: AdaGuestPortOptions) {
    this.gpu = o.gpu;
    const ops = loadNativeOps();
    if (o.path !== undefined) {
      this.arena = ops.openArena(o.path);
      this.path = o.path;
    } else if (o.sab !== undefined) {
      this.arena = ops.attachSab(o.sab);
      this.path = null;
    } else {
      throw new TypeError('openGuestPort needs the device region: { path } or { sab }');
    }
    const h = readHeader(this.arena);
    this.numVfs = h.numVfs;
    this.vfBars = h.vfBars;
    this.fbBytes = h.fbBytes;
  }

  vf(index: number): AdaGuestVf {
    if (!Number.isInteger(index) || index < 0 || index >= this.numVfs) {
      throw new RangeError(`${this.gpu} has no VF ${index} (${this.numVfs} enabled)`);
    }
    let v = this.vfs.get(index);
    if (v === undefined) {
      v = new AdaGuestVf(this, index);
      this.vfs.set(index, v);
    }
    return v;
  }

  watch(cb: (vfIndex: number) => void): () => void {
    this.stopWatch?.();
    let stopped = false;
    const kick = BigInt(VF_BUS + VfBus.FRONT_KICK);
    const lastSeq = new Map<number, number>();
    const loop = async (): Promise<void> => {
      while (!stopped) {
        const seen = this.arena.load32(kick);
        for (const [i, v] of this.vfs) {
          const seq = v.irqSeq();
          if (seq !== lastSeq.get(i) || v.dmaPending()) {
            lastSeq.set(i, seq);
            cb(i);
          }
        }
        // Sleep until the device bumps the word. Every writer of it wakes it (kickFront, stop() below), so the
        // waiter does not look on its own either: an idle front wakes for nothing.
        await this.arena.wait32(kick, seen, Number.POSITIVE_INFINITY, { wokenOnly: true });
      }
    };
    void loop();
    const stop = (): void => {
      if (stopped) return;
      stopped = true;
      // Move the word (it is the device's, but any change only means "look", and a device increment racing this
      // store changes it too) so a waiter that had not yet gone to sleep does not sleep through the wake-up.
      this.arena.store32(kick, (this.arena.load32(kick) + 0x8000_0000) >>> 0);
      this.arena.wake32(kick);
    };
    this.stopWatch = stop;
    return stop;
  }

  pumpDma(vfIndex: number): Promise<void> {
    return this.vf(vfIndex).pump();
  }

  close(): void {
    this.stopWatch?.();
    for (const v of this.vfs.values()) v.serveDma(null);
    this.vfs.clear();
    this.arena.close();
  }
}

export function openGuestPort(options: Record<string, unknown>): GuestPort {
  return new AdaGuestPort(options as unknown as AdaGuestPortOptions);
}
