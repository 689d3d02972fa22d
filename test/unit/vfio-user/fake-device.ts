// A device for the protocol tests: a trapped register region, a mmap-able region backed by a temp file, config
// space, and MSI-X with 4 vectors. It records what the server hands it and lets a test make it do DMA.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadFdOps } from '../../../native/fd-ops.js';
import { Errno, IrqInfoFlags, IrqSetFlags } from '../../../plugins/vfio-user/protocol/constants.js';
import { refuse } from '../../../plugins/vfio-user/protocol/protocol-error.js';
import type { ClientInfo, DmaPort, IrqInfo, IrqSetRequest, RegionInfo, VfioUserDevice } from '../../../plugins/vfio-user/server/vfio-user-device.js';

export class FakeDevice implements VfioUserDevice {
  readonly deviceFlags = 3;
  readonly numRegions = 9;
  readonly numIrqs = 5;
  readonly regs = Buffer.alloc(64 << 10);
  readonly config = Buffer.alloc(4096);
  readonly dir = mkdtempSync(join(tmpdir(), 'vgpud-fake-dev-'));
  readonly file = join(this.dir, 'bar1');
  readonly fileFd: number;
  readonly msix: Array<number | null> = [null, null, null, null];
  dma: DmaPort | null = null;
  client: ClientInfo | null = null;
  resets = 0;
  detached = 0;
  migrated: Buffer[] = [];

  constructor() {
    writeFileSync(this.file, Buffer.alloc(1 << 20));
    this.fileFd = loadFdOps().openFile(this.file, true);
  }

  regionInfo(index: number, opts: { canSendFd: boolean }): RegionInfo {
    switch (index) {
      case 0: return { readable: true, writable: true, size: BigInt(this.regs.length) };
      case 1: return {
        readable: true, writable: true, size: 1n << 20n,
        ...(opts.canSendFd ? { mmap: { fd: this.fileFd, offset: 0n, areas: [{ offset: 0n, size: 1n << 20n }] } } : {}),
      };
      case 7: return { readable: true, writable: true, size: 4096n };
      case 8: throw refuse(Errno.EINVAL, 'no VGA region');
      default: return { readable: false, writable: false, size: 0n };
    }
  }

  regionRead(index: number, offset: bigint, count: number): Uint8Array {
    const src = index === 0 ? this.regs : this.config;
    return src.subarray(Number(offset), Number(offset) + count);
  }

  regionWrite(index: number, offset: bigint, data: Uint8Array): void {
    const dst = index === 0 ? this.regs : this.config;
    dst.set(data, Number(offset));
  }

  irqInfo(index: number): IrqInfo {
    if (index === 2) return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.NORESIZE, count: 4 };
    if (index === 0) return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.MASKABLE | IrqInfoFlags.AUTOMASKED, count: 0 };
    return { flags: IrqInfoFlags.EVENTFD, count: index === 1 ? 0 : 1 };
  }

  setIrqs(req: IrqSetRequest): void {
    if ((req.flags & (IrqSetFlags.ACTION_MASK | IrqSetFlags.ACTION_UNMASK)) !== 0) throw refuse(Errno.ENOTTY, 'no masking');
    const ops = loadFdOps();
    if (req.fds !== undefined) {
      for (const fd of req.fds) if (!ops.fdTarget(fd).includes('eventfd')) throw refuse(Errno.EINVAL, 'not an eventfd');
      for (let i = 0; i < req.count; i++) {
        const old = this.msix[req.start + i];
        if (old !== null && old !== undefined) ops.closeFd(old);
        this.msix[req.start + i] = req.fds.length > 0 ? req.fds[i]! : null;
      }
    }
  }

  async reset(): Promise<void> {
    this.resets++;
  }

  async feature(feature: number): Promise<Buffer | null> {
    throw refuse(Errno.ENOTTY, `no feature ${feature}`);
  }

  async migrationRead(): Promise<Buffer> {
    return Buffer.alloc(0);
  }

  async migrationWrite(data: Buffer): Promise<void> {
    this.migrated.push(data);
  }

  attach(client: ClientInfo, dma: DmaPort): void {
    this.client = client;
    this.dma = dma;
  }

  detach(): void {
    this.detached++;
    this.dma = null;
    const ops = loadFdOps();
    for (let i = 0; i < this.msix.length; i++) {
      if (this.msix[i] !== null) ops.closeFd(this.msix[i]!);
      this.msix[i] = null;
    }
  }

  dispose(): void {
    loadFdOps().closeFd(this.fileFd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
