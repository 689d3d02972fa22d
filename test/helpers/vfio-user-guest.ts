// What a guest driver does with a served vGPU, packed by hand on a RawPeer (the server's own tests; the independent
// guest model is written apart): guest RAM shared with DMA_MAP, MSI-X vector 0 on an eventfd, bus mastering and
// the interrupt enables on, the RPC control/response/message pages set up through MAILBOX_SCRATCH(2/3) and the
// DOORBELL, ECHO calls answered with an interrupt; BAR1 mapped through the region's descriptor. Layouts are the
// ones docs/vfio-user.md documents.
import type { FdMap } from '../../native/fd-ops.js';
import { loadFdOps, WATCH_READABLE } from '../../native/fd-ops.js';
import { ERROR, RawPeer, regionAccess, u32s, u64 } from './raw-vfio-user.js';

export const IOVA = 0x40000000n;
const RAM = 1 << 20;
const CONTROL = 0;
const RESPONSE = 0x1000;
const MESSAGE = 0x2000;

/** Resolve when `fd` becomes readable (an eventfd signalled). */
export function readable(fd: number): Promise<void> {
  const ops = loadFdOps();
  return new Promise((resolve) => {
    const w = ops.watch(fd, (f) => {
      if ((f & WATCH_READABLE) === 0) return;
      w.close();
      resolve();
    });
    w.start(true, false);
  });
}

export class VfioUserGuest {
  private ram: FdMap | null = null;
  private ramFd = -1;
  readonly efd: number;
  private requestId = 0;
  private fb: FdMap | null = null;

  private constructor(readonly peer: RawPeer, ramFile: string) {
    const ops = peer.ops;
    this.ramFd = ops.openFile(ramFile, true);
    this.efd = ops.eventfd();
  }

  /** Connect, negotiate, share guest RAM (a 1 MiB file, zero-filled by the caller) and arm MSI-X vector 0. */
  static async attach(socket: string, ramFile: string): Promise<VfioUserGuest> {
    const g = new VfioUserGuest(RawPeer.connect(socket), ramFile);
    const c = g.peer;
    const ok = (m: { flags: number; errorNo: number }, what: string): void => {
      if ((m.flags & ERROR) !== 0) throw new Error(`${what} failed: errno ${m.errorNo}`);
    };
    ok(await c.version(), 'VERSION');
    ok(await c.call(2, Buffer.concat([u32s(32, 3), u64(0), u64(IOVA), u64(RAM)]), [g.ramFd]), 'DMA_MAP');
    g.ram = c.ops.mapFd(g.ramFd, 0, RAM, true);
    ok(await c.call(8, u32s(20, 0x24, 2, 0, 1), [g.efd]), 'SET_IRQS');
    await c.call(10, regionAccess(4, 7, 2, Buffer.from([0x06, 0x00]))); // memory space + bus master
    await c.call(10, regionAccess(0x1200, 0, 4, u32s(1))); // leaf 0 bit 0
    await c.call(10, regionAccess(0x1608, 0, 4, u32s(1))); // top subtree 0
    return g;
  }

  private get mem(): Buffer {
    return this.ram!.window(0, RAM);
  }

  /** Ring the doorbell with `token` and wait for the answer's interrupt; the response page's result. */
  private async ring(token: number): Promise<number> {
    const w = this.mem;
    w.writeUInt32LE(++this.requestId, CONTROL + 4);
    const irq = readable(this.efd);
    await this.peer.call(10, regionAccess(0x2200, 0, 4, u32s(token)));
    await irq;
    this.peer.ops.eventfdRead(this.efd);
    await this.peer.call(10, regionAccess(0x1000, 0, 4, u32s(1))); // W1C the leaf bit
    if (w.readUInt32LE(RESPONSE) !== this.requestId) throw new Error(`response ${w.readUInt32LE(RESPONSE)} to request ${this.requestId}`);
    return w.readUInt32LE(RESPONSE + 4);
  }

  async rpcSetup(): Promise<number> {
    const w = this.mem;
    w.writeUInt32LE(1, CONTROL);
    w.writeBigUInt64LE(IOVA + BigInt(RESPONSE), CONTROL + 8);
    w.writeBigUInt64LE(IOVA + BigInt(MESSAGE), CONTROL + 16);
    w.writeUInt32LE(0x4000, CONTROL + 24);
    await this.peer.call(10, regionAccess(0x210c, 0, 4, u32s(Number(IOVA >> 32n))));
    await this.peer.call(10, regionAccess(0x2108, 0, 4, u32s(Number(IOVA & 0xffffffffn))));
    return this.ring(0);
  }

  /** RPC function 1: the device's answer (the same bytes). */
  async echo(text: string): Promise<string> {
    const w = this.mem;
    const b = Buffer.from(text);
    w.writeUInt32LE(1, MESSAGE);
    w.writeUInt32LE(b.length, MESSAGE + 4);
    b.copy(w, MESSAGE + 8);
    w.fill(0, MESSAGE + 8 + b.length, MESSAGE + 8 + b.length + 16);
    const result = await this.ring(1);
    if (result !== 0) throw new Error(`ECHO result 0x${result.toString(16)}`);
    return w.subarray(MESSAGE + 8, MESSAGE + 8 + w.readUInt32LE(MESSAGE + 4)).toString();
  }

  /** NV_PMC_BOOT_0 through a trapped REGION_READ. */
  async boot0(): Promise<number> {
    return (await this.peer.call(9, regionAccess(0, 0, 4))).payload.readUInt32LE(16);
  }

  /** BAR1 mapped through the descriptor of GET_REGION_INFO (the sparse area: the FB slice, at most 1 GiB). */
  async mapBar1(): Promise<Buffer> {
    if (this.fb === null) {
      const ri = await this.peer.call(5, Buffer.concat([u32s(128, 0, 1, 0), u64(0), u64(0)]));
      const fd = ri.fds[0];
      if (fd === undefined) throw new Error('BAR1 came with no descriptor');
      const offset = ri.payload.readBigUInt64LE(24);
      const size = ri.payload.readBigUInt64LE(56);
      this.fb = this.peer.ops.mapFd(fd, Number(offset), Number(size), true);
      this.peer.ops.closeFd(fd);
    }
    return this.fb.window(0, Math.min(this.fb.size, 1 << 20));
  }

  close(): void {
    this.fb?.close();
    this.ram?.close();
    this.fb = null;
    this.ram = null;
    const ops = this.peer.ops;
    this.peer.close();
    for (const fd of [this.ramFd, this.efd]) {
      try { ops.closeFd(fd); } catch { /* closed */ }
    }
  }
}
