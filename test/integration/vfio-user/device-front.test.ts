// A device front serving a real simulated GPU (process mode: the FB is a file, so BAR1 can be mmap-ed), spoken to
// over its real socket with hand-packed vfio-user messages: what the VMM sees in config space, BAR sizing, NV_PMC_BOOT_0
// through a trapped REGION_READ, BAR1 mapped with no copy (bytes land in the vGPU's FB slice, the neighbour's stays
// untouched), the guest RPC answered with an MSI-X interrupt on the VMM's eventfd, DMA into the VMM's memory through
// a descriptor it mapped, one client at a time, and a clean detach.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fdOpsAvailable, loadFdOps, WATCH_READABLE } from '../../../native/fd-ops.js';
import { DeviceFront } from '../../../plugins/vfio-user/front/device-front.js';
import type { FrontManager } from '../../../plugins/vfio-user/front/front-manager.js';
import { ERROR, RawPeer, regionAccess, u32s, u64 } from '../../helpers/raw-vfio-user.js';
import { GiB, simRig, type SimRig } from '../lifecycle/sim-rig.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const SHM = `/dev/shm/t6-vfio-user-front-${process.pid}`;

function readable(fd: number): Promise<void> {
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

describe('device front over a real socket (process-mode simulated GPU)', { skip }, () => {
  let rig: SimRig;
  let front: DeviceFront;
  let socket: string;
  const calls: string[] = [];
  const manager: FrontManager = {
    reset: async (id) => { calls.push(`reset ${id}`); await rig.lc.reset(id); },
    migrationState: async () => 2,
    setMigrationState: async () => undefined,
    migrationRead: async () => Buffer.alloc(0),
    migrationWrite: async () => undefined,
    migrationCompat: async () => { throw new Error('not used'); },
    busMaster: (id, on) => { calls.push(`bme ${id} ${on}`); },
    client: (id, pid) => { calls.push(`client ${id} ${pid}`); },
    open: async () => { throw new Error('not used'); },
    close: () => undefined,
  };

  before(async () => {
    mkdirSync(SHM, { recursive: true });
    rig = await simRig({ bdf: '0000:62:00.0', mode: 'process', dir: join(SHM, 'sim'), fbBytes: 8n * GiB });
    await rig.lc.create(0, rig.type('1Q'));
    await rig.lc.create(1, rig.type('1Q'));
    front = new DeviceFront({
      gpu: rig.gpu.bdf, locator: rig.gpu.guestPort!, dir: join(SHM, 'sockets'), ops: loadFdOps(), manager,
      logger: rig.logger, access: { mode: 0o660 },
    });
    await front.open();
    const vf = rig.gpu.vfs()[0]!;
    socket = front.attach({ vgpuId: rig.lc.records()[0]!.id, vf: 0, vfBdf: vf.bdf, migrationFlags: 0 }).socket;
  });

  after(async () => {
    await front?.close();
    await rig?.stop();
    rmSync(SHM, { recursive: true, force: true });
  });

  it('presents the VF: identity, class, subsystem, capabilities, BAR sizes on sizing writes, INTx pin 0', async () => {
    const c = RawPeer.connect(socket);
    try {
      await c.version();
      const cfg = (await c.call(9, regionAccess(0, 7, 256))).payload.subarray(16);
      assert.equal(cfg.readUInt16LE(0), 0x10de);
      assert.equal(cfg.readUInt16LE(2), 0x26b1);
      assert.equal(cfg.readUIntLE(9, 3), 0x030200);
      assert.equal(cfg.readUInt16LE(0x2c), 0x10de);
      assert.equal(cfg.readUInt16LE(0x2e), 0x16a1);
      assert.equal(cfg[0x3d], 0, 'no INTx pin');
      assert.equal(cfg[0x34], 0x40);
      assert.equal(cfg[0x40], 0x10, 'PCI Express capability');
      assert.equal(cfg[0x41], 0x7c);
      assert.equal(cfg[0x7c], 0x11, 'MSI-X capability');
      const size = async (bar: number): Promise<number> => {
        await c.call(10, regionAccess(0x10 + 4 * bar, 7, 4, u32s(0xffffffff)));
        return (await c.call(9, regionAccess(0x10 + 4 * bar, 7, 4))).payload.readUInt32LE(16);
      };
      assert.equal(await size(0), 0xff000000, 'BAR0: 16 MiB, 32-bit');
      assert.equal(await size(1), 0xc000000c, 'BAR1: 1 GiB, 64-bit prefetchable');
      assert.equal(await size(2), 0xffffffff, 'BAR1 upper half');
      assert.equal(await size(5), 0, 'no BAR5');
      // Read-only fields ignore writes; status error bits are write-1-to-clear.
      await c.call(10, regionAccess(0, 7, 4, u32s(0x12345678)));
      assert.equal((await c.call(9, regionAccess(0, 7, 4))).payload.readUInt32LE(16), 0x26b110de);
      // GET_INFO and the regions table.
      const info = await c.call(4, u32s(16, 0, 0, 0));
      assert.deepEqual([info.payload.readUInt32LE(4), info.payload.readUInt32LE(8), info.payload.readUInt32LE(12)], [3, 9, 5]);
      const irq = async (i: number): Promise<number> => (await c.call(7, u32s(16, 0, i, 0))).payload.readUInt32LE(12);
      assert.deepEqual([await irq(0), await irq(1), await irq(2), await irq(3), await irq(4)], [0, 0, 32, 1, 1]);
    } finally {
      c.close();
    }
  });

  it('NV_PMC_BOOT_0 through a trapped BAR0 read; BAR1 mapped through the region fd reaches the FB slice and only it', async () => {
    const ops = loadFdOps();
    const c = RawPeer.connect(socket);
    try {
      await c.version();
      assert.equal((await c.call(9, regionAccess(0, 0, 4))).payload.readUInt32LE(16), 0x192000a1);
      const ri = await c.call(5, Buffer.concat([u32s(128, 0, 1, 0), u64(0), u64(0)]));
      assert.equal(ri.fds.length, 1);
      const flags = ri.payload.readUInt32LE(4);
      assert.equal(flags & 0xf, 0xf, 'READ WRITE MMAP CAPS');
      const fileOffset = ri.payload.readBigUInt64LE(24);
      const areaSize = ri.payload.readBigUInt64LE(56);
      const rec = rig.lc.records()[0]!;
      const slice = rec.res.guestFb!;
      assert.equal(areaSize, slice.size < GiB ? slice.size : GiB);
      const map = ops.mapFd(ri.fds[0]!, Number(fileOffset), Number(areaSize), true);
      ops.closeFd(ri.fds[0]!);
      const neighbour = rig.lc.records()[1]!.res.guestFb!;
      const before = Buffer.from(rig.dev.fbWindow(neighbour.offset, 16));
      map.window(0, 12).write('hello guest!');
      map.window(Number(areaSize) - 1, 1)[0] = 0x5a;
      map.close();
      assert.equal(rig.dev.fbWindow(slice.offset, 12).toString(), 'hello guest!', 'the bytes are in the vGPU\'s FB');
      assert.equal(rig.dev.fbWindow(slice.offset + areaSize - 1n, 1)[0], 0x5a, 'the last byte of BAR1');
      assert.deepEqual(Buffer.from(rig.dev.fbWindow(neighbour.offset, 16)), before, 'the neighbour is untouched');
      // The same bytes through a trapped BAR1 read.
      assert.equal((await c.call(9, regionAccess(0, 1, 12))).payload.subarray(16).toString(), 'hello guest!');
    } finally {
      c.close();
    }
  });

  it('one client at a time: a second connection is closed at once, the first keeps working', async () => {
    const a = RawPeer.connect(socket);
    await a.version();
    const b = RawPeer.connect(socket);
    await b.closedByServer();
    assert.equal((await a.call(9, regionAccess(0, 0, 4))).payload.readUInt32LE(16), 0x192000a1);
    a.close();
  });

  it('guest RPC: doorbell through BAR0, pages DMA-read from the VMM\'s memory, answer and an MSI-X eventfd signal', async () => {
    const ops = loadFdOps();
    const ramFile = join(SHM, 'guest-ram');
    writeFileSync(ramFile, Buffer.alloc(1 << 20));
    const c = RawPeer.connect(socket);
    try {
      await c.version();
      const ramFd = ops.openFile(ramFile, true);
      const IOVA = 0x40000000n;
      assert.equal((await c.call(2, Buffer.concat([u32s(32, 3), u64(0), u64(IOVA), u64(1 << 20)]), [ramFd])).flags & ERROR, 0);
      const ram = ops.mapFd(ramFd, 0, 1 << 20, true);
      ops.closeFd(ramFd);
      const efd = ops.eventfd();
      assert.equal((await c.call(8, u32s(20, 0x24, 2, 0, 1), [efd])).flags & ERROR, 0);
      // Bus master on, interrupt enables on.
      await c.call(10, regionAccess(4, 7, 2, Buffer.from([0x06, 0x00])));
      await c.call(10, regionAccess(0x1200, 0, 4, u32s(1)));
      await c.call(10, regionAccess(0x1608, 0, 4, u32s(1)));
      const w = ram.window(0, 0x10000);
      w.writeUInt32LE(1, 0);
      w.writeBigUInt64LE(IOVA + 0x1000n, 8);
      w.writeBigUInt64LE(IOVA + 0x2000n, 16);
      w.writeUInt32LE(0x4000, 24);
      w.writeUInt32LE(1, 4);
      await c.call(10, regionAccess(0x210c, 0, 4, u32s(Number(IOVA >> 32n))));
      await c.call(10, regionAccess(0x2108, 0, 4, u32s(Number(IOVA & 0xffffffffn))));
      let irq = readable(efd);
      await c.call(10, regionAccess(0x2200, 0, 4, u32s(0)));
      await irq;
      assert.ok(ops.eventfdRead(efd)! >= 1n);
      assert.equal(w.readUInt32LE(0x1000), 1, 'setup answered');
      w.writeUInt32LE(1, 0x2000);
      w.writeUInt32LE(5, 0x2004);
      w.write('hello', 0x2008);
      w.writeUInt32LE(2, 4);
      irq = readable(efd);
      await c.call(10, regionAccess(0x2200, 0, 4, u32s(1)));
      await irq;
      assert.equal(w.readUInt32LE(0x1000), 2);
      assert.equal(w.subarray(0x2008, 0x200d).toString(), 'hello');
      ram.close();
      ops.closeFd(efd);
    } finally {
      c.close();
    }
  });

  it('DEVICE_RESET goes through the manager (the vGPU\'s reset) and clears the guest registers', async () => {
    const c = RawPeer.connect(socket);
    try {
      await c.version();
      await c.call(10, regionAccess(0x2100, 0, 4, u32s(77)));
      assert.equal((await c.call(13)).flags & ERROR, 0);
      assert.ok(calls.some((x) => x.startsWith('reset ')));
      assert.equal((await c.call(9, regionAccess(0x2100, 0, 4))).payload.readUInt32LE(16), 0);
    } finally {
      c.close();
    }
  });

  it('detach disconnects the client and removes the socket', async () => {
    const c = RawPeer.connect(socket);
    await c.version();
    await front.detach(0, 'test detach');
    await c.closedByServer();
    assert.throws(() => RawPeer.connect(socket));
  });
});
