/**
 * The device's DMA into guest memory, as the simulated GPU's bus master: it cannot reach the VMM's memory itself,
 * so it posts each transfer into the VF's DMA mailbox (vf-layout.ts) and the front — which holds the VMM's DMA map,
 * the IOMMU of this system — carries it out and answers. One transfer in flight per VF.
 *
 * A transfer fails (EIO) at once when no VMM is attached or bus mastering is off, and after DMA_WAIT_MS when the
 * front never answers (it died); EFAULT when the IOVA is not mapped. The caller treats a failure as a bus error.
 */
import type { SharedArena } from '../../../../native/native-ops.js';
import { DmaOp, VF_STAGING_SIZE, VfPage, vfPage, vfStaging } from './vf-layout.js';
import { kickFront } from './vf-registers.js';

const DMA_WAIT_MS = 5000;
export const EIO = 5;
export const EFAULT = 14;

export class VfDmaClient {
  private readonly page: bigint;
  private readonly staging: bigint;

  constructor(private readonly arena: SharedArena, readonly vf: number) {
    this.page = BigInt(vfPage(vf));
    this.staging = BigInt(vfStaging(vf));
  }

  private load(off: number): number {
    return this.arena.load32(this.page + BigInt(off));
  }

  private store(off: number, v: number): void {
    this.arena.store32(this.page + BigInt(off), v >>> 0);
  }

  /** A VMM is attached and lets the VF master the bus. */
  get usable(): boolean {
    return this.load(VfPage.ATTACHED) === 1 && this.load(VfPage.BUS_MASTER) === 1;
  }

  /** Read guest memory. Returns the bytes, or an errno. */
  async read(iova: bigint, length: number): Promise<Buffer | number> {
    const out = Buffer.alloc(length);
    for (let off = 0; off < length; off += VF_STAGING_SIZE) {
      const n = Math.min(VF_STAGING_SIZE, length - off);
      const st = await this.transfer(DmaOp.READ_TO_STAGING, iova + BigInt(off), n, 0n);
      if (st !== 0) return st;
      this.arena.window(this.staging, n).copy(out, off);
    }
    return out;
  }

  /** Write guest memory. Returns 0 or an errno. */
  async write(iova: bigint, data: Uint8Array): Promise<number> {
    for (let off = 0; off < data.length; off += VF_STAGING_SIZE) {
      const n = Math.min(VF_STAGING_SIZE, data.length - off);
      this.arena.window(this.staging, n).set(data.subarray(off, off + n));
      const st = await this.transfer(DmaOp.WRITE_FROM_STAGING, iova + BigInt(off), n, 0n);
      if (st !== 0) return st;
    }
    return 0;
  }

  /** The copy engine: FB bytes [fbOffset, +length) to guest memory (toGuest) or back. Returns 0 or an errno. */
  async copyFb(toGuest: boolean, fbOffset: bigint, iova: bigint, length: number): Promise<number> {
    return this.transfer(toGuest ? DmaOp.WRITE_FROM_FB : DmaOp.READ_TO_FB, iova, length, fbOffset);
  }

  private async transfer(op: number, iova: bigint, length: number, fbOffset: bigint): Promise<number> {
    if (!this.usable) return EIO;
    const a = this.arena;
    a.store32(this.page + BigInt(VfPage.DMA_OP), op);
    a.window(this.page + BigInt(VfPage.DMA_IOVA), 8).writeBigUInt64LE(iova);
    this.store(VfPage.DMA_LENGTH, length);
    a.window(this.page + BigInt(VfPage.DMA_FB_OFFSET), 8).writeBigUInt64LE(fbOffset);
    const req = (this.load(VfPage.DMA_REQ) + 1) >>> 0;
    this.store(VfPage.DMA_REQ, req); // published last: the fields above are in place when the front sees it
    kickFront(a);
    const deadline = performance.now() + DMA_WAIT_MS;
    for (;;) {
      const done = this.load(VfPage.DMA_DONE);
      if (done === req) return this.load(VfPage.DMA_STATUS);
      const left = deadline - performance.now();
      if (left <= 0) return EIO;
      await a.wait32(this.page + BigInt(VfPage.DMA_DONE), done, left);
    }
  }
}
