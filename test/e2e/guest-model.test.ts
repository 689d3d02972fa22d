/**
 * The guest model against the real thing: vgpud and vgpu-sim started as the README starts them (private paths),
 * two 1Q vGPUs made with vgpuctl, and an independent vfio-user client (test/guest-model/, written from QEMU's
 * docs/interop/vfio-user.rst and Linux vfio.h, sharing no code with the server) playing VMM and guest driver over
 * the vGPU's socket — issue 11 point 6, one step per test. What the guest did is checked through the simulated
 * device's own view (its region file), never through the server.
 *
 * 1Q is chosen on purpose: its guest FB (992 MiB) is smaller than BAR1 (1 GiB), so BAR1's last byte lies past the
 * slice, and the next vGPU's FB follows it in the device — the place a stray write would land.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GPU, type Harness } from './helpers/daemon-harness.js';
import {
  createVgpus, deviceBoot0, deviceFb, deviceFbIsZero, fdCount, peerPid, show, showUntil, socketOf, startRig, pattern, type VgpuJson,
} from './helpers/guest-model-rig.js';
import { fdOpsAvailable, loadFdOps } from '../../native/fd-ops.js';
import { boardByKey, boot0For, decodeBoot0, ADA_ARCHITECTURE, ADA_IMPLEMENTATION } from '../../hal/ada-lovelace/chips.js';
import { vfConfigOffset } from '../../hal/ada-lovelace/sim/device-layout.js';
import { VfioUserClient } from '../guest-model/vfio-user-client.js';
import { VfioUserConnection } from '../guest-model/wire/vfio-user-connection.js';
import { VfioUserClosedError, VfioUserErrnoError, isErrno } from '../guest-model/wire/errors.js';
import { negotiate } from '../guest-model/protocol/version.js';
import { encodeIrqSet } from '../guest-model/protocol/irqs.js';
import { RegionAccess, RegionInfo } from '../guest-model/wire/spec-structs.js';
import { requestRegionInfo } from '../guest-model/protocol/device-info.js';
import { Cmd, Errno, HDR_ERROR, Irq, MigState, Region, REGION_FLAG_MMAP } from '../guest-model/wire/spec-constants.js';
import { VmmDevice } from '../guest-model/guest/vmm-device.js';
import { GuestLayout, VgpuGuest } from '../guest-model/guest/vgpu-guest.js';
import { Pci, sizeBars, sizeRom, walkConfig } from '../guest-model/guest/pci-config-walk.js';
import { Bar0, LEAF0_RPC_ANSWERED, SCRATCH_GUEST_RPC_LO } from '../guest-model/guest/vgpu-registers.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const board = boardByKey('rtx6000-ada')!;
const PAGE = 4096;
const MAX_DMA_MAPS = 8;

describe('guest model: a VMM and guest driver on a vGPU over vfio-user (issue 11 point 6)', { skip, timeout: 600_000 }, () => {
  let h: Harness;
  let mine: VgpuJson;
  let neighbour: VgpuJson;
  let socket: string;
  let dev: VmmDevice | undefined;
  let guest: VgpuGuest | undefined;

  /** The one client of the device (attached once, shared by the steps that need an ordinary VMM). */
  const vmm = async (): Promise<VmmDevice> => (dev ??= await VmmDevice.attach(socket, { dir: h.dir }));
  const driver = async (): Promise<VgpuGuest> => (guest ??= await VgpuGuest.start(await vmm()));
  /** Close a connection and wait until the daemon reports the device free again (one client per device). */
  const released = async (close: () => void): Promise<void> => {
    close();
    await showUntil(h, mine.id, 'no VMM attached', (v) => v.vfioUser?.attached === false);
  };

  before(async () => {
    h = await startRig('vgpud-e2e-guest-', [`maxDmaMaps: ${MAX_DMA_MAPS}`]);
    [mine, neighbour] = await createVgpus(h, 'RTX6000-Ada-1Q', 2) as [VgpuJson, VgpuJson];
    mine = await show(h, mine.id);
    neighbour = await show(h, neighbour.id);
    socket = await socketOf(h, mine.id);
  });
  after(async () => {
    guest?.close();
    dev?.close();
    await h?.close();
  });

  it('negotiates: the reply keeps the major, never raises the minor, carries only proposed capabilities, and states the configured limits', async () => {
    const c = await VfioUserClient.connect(socket);
    assert.equal(c.negotiated.major, 0);
    assert.ok(c.negotiated.minor <= 1);
    assert.equal(c.negotiated.toServer.maxDmaMaps, MAX_DMA_MAPS, 'the operator\'s plugins.vfio-user.maxDmaMaps is what a VMM is told');
    // One client per device: a second VMM is turned away while this one is attached.
    const second = VfioUserConnection.connect(socket);
    await assert.rejects(negotiate(second), (e: unknown) => e instanceof VfioUserClosedError || isErrno(e));
    second.close();
    assert.deepEqual(c.violations, []);
    await released(() => c.close());

    // A 0.0 client gets 0.0; a client with no JSON at all gets no capabilities it did not propose (so it keeps to
    // the spec's defaults, max_msg_fds 1).
    const old = await VfioUserClient.connect(socket, { proposal: { major: 0, minor: 0, capabilities: { max_msg_fds: 4 } } });
    assert.equal(old.negotiated.minor, 0);
    await released(() => old.close());
    const bare = await VfioUserClient.connect(socket, { proposal: { major: 0, minor: 1 } });
    assert.deepEqual(Object.keys(bare.negotiated.serverCapabilities ?? {}), []);
    assert.equal(bare.negotiated.toServer.maxMsgFds, 1);
    await released(() => bare.close());

    // A major version the server does not speak: refused or closed, never accepted.
    const future = VfioUserConnection.connect(socket);
    await assert.rejects(negotiate(future, { major: 1, minor: 0, capabilities: {} }), (e: unknown) => e instanceof VfioUserClosedError || isErrno(e));
    await released(() => future.close());
  });

  it('negotiates: the server enforces its own limits (transfer size, descriptors per message, DMA windows, page size) and stays usable', async () => {
    const c = await VfioUserClient.connect(socket);
    const front = peerPid(c.conn.fd);
    const lim = c.negotiated.toServer;
    const fdsBefore = fdCount(front);

    // count above the server's max_data_xfer_size: refused, and the next access is answered.
    const big = await c.conn.request(Cmd.REGION_READ, RegionAccess.pack({ offset: 0n, region: Region.BAR1, count: lim.maxDataXferSize + 4 }));
    assert.notEqual(big.flags & HDR_ERROR, 0, `a ${lim.maxDataXferSize + 4}-byte REGION_READ must be refused`);
    assert.equal((await c.read(Region.BAR0, 0, 4)).length, 4);

    // More descriptors on one message than the server's max_msg_fds: refused, and none of them kept.
    const ops = loadFdOps();
    const efds = Array.from({ length: lim.maxMsgFds + 1 }, () => ops.eventfd(0));
    const many = await c.conn.request(Cmd.DEVICE_SET_IRQS, encodeIrqSet(Irq.MSIX, 0, efds.length, 'trigger', { kind: 'eventfd', fds: efds }), efds);
    assert.notEqual(many.flags & HDR_ERROR, 0, `${efds.length} eventfds on one message must be refused (max_msg_fds ${lim.maxMsgFds})`);
    for (const fd of efds) ops.closeFd(fd);

    // DMA windows: as many as announced, then ENOSPC-like refusal; a freed window can be used again.
    // Overlap is EEXIST and a page-unaligned window is refused (QEMU spec "VFIO_USER_DMA_MAP"; pgsizes).
    const base = 0x4000_0000n;
    for (let i = 0; i < MAX_DMA_MAPS; i++) await c.dmaMapSocket(base + BigInt(i) * 0x10000n, Buffer.alloc(PAGE));
    await assert.rejects(c.dmaMapSocket(base + 0x100_0000n, Buffer.alloc(PAGE)), (e: unknown) => isErrno(e), `map ${MAX_DMA_MAPS + 1} must be refused`);
    await c.dmaUnmap(base, BigInt(PAGE));
    await assert.rejects(c.dmaMapSocket(base + 0x10000n, Buffer.alloc(PAGE)), (e: unknown) => isErrno(e, Errno.EEXIST), 'mapping over an existing window is EEXIST');
    await assert.rejects(c.dmaMapSocket(base + 0x100n, Buffer.alloc(PAGE)), (e: unknown) => isErrno(e), 'an IOVA off the 4 KiB page size is refused');
    await c.dmaMapSocket(base, Buffer.alloc(PAGE));
    await assert.rejects(c.dmaUnmap(base + 0x200_0000n, BigInt(PAGE)), (e: unknown) => isErrno(e), 'unmapping what is not mapped is refused');
    for (let i = 0; i < MAX_DMA_MAPS; i++) await c.dmaUnmap(base + BigInt(i) * 0x10000n, BigInt(PAGE));

    assert.equal(await c.read32(Region.BAR0, Bar0.PMC_BOOT_0), deviceBoot0(h), 'the connection is healthy after every refusal');
    assert.equal(fdCount(front), fdsBefore, 'the server holds no descriptor more than before');
    assert.deepEqual(c.violations, []);
    await released(() => c.close());
  });

  it('negotiates: the server keeps to the client\'s limits (its max_data_xfer_size on DMA_WRITE, its max_msg_fds on replies)', async () => {
    // A client that takes at most 4 KiB per message and maps guest RAM without a descriptor: the copy engine's
    // 16 KiB write into guest memory must come as DMA_WRITEs of at most 4 KiB each.
    const small = await VmmDevice.attach(socket, {
      dir: h.dir, ramWithFd: false,
      proposal: { major: 0, minor: 1, capabilities: { max_msg_fds: 16, max_data_xfer_size: PAGE } },
    });
    const g = await VgpuGuest.start(small);
    try {
      assert.equal((await g.rpcSetup()).result, 0);
      const data = pattern(7, 4 * PAGE);
      await small.bar1.write(0x40000n, data);
      const a = await g.ceCopy(0x40000n, GuestLayout.DATA, data.length, 0);
      assert.equal(a.result, 0);
      assert.ok(g.ramView(GuestLayout.DATA, data.length).equals(data), 'the copy-engine bytes reached guest memory through DMA_WRITE');
      assert.ok(small.client.socketDma.bytesWritten >= data.length);
      assert.ok(small.client.socketDma.maxCountSeen > 0 && small.client.socketDma.maxCountSeen <= PAGE, `largest DMA transfer ${small.client.socketDma.maxCountSeen} B`);
      assert.deepEqual(small.client.violations, []);
    } finally {
      g.close();
      await released(() => small.close());
    }
    // A client that takes no descriptors at all: region info must come without one (BAR1 then stays reachable
    // through REGION_READ/WRITE).
    const nofd = await VfioUserClient.connect(socket, { proposal: { major: 0, minor: 1, capabilities: { max_msg_fds: 0 } } });
    try {
      const r1 = await nofd.regionInfo(Region.BAR1);
      assert.equal(r1.fd, undefined);
      await nofd.write(Region.BAR1, 0x1000n, Buffer.from('trapped'));
      assert.equal((await nofd.read(Region.BAR1, 0x1000n, 7)).toString(), 'trapped');
      assert.deepEqual(nofd.violations, [], 'no descriptor beyond the client\'s max_msg_fds');
    } finally {
      await released(() => nofd.close());
    }
  });

  it('reads config space and sizes the BARs, with sizing writes answered as hardware answers them', async () => {
    const d = await vmm();
    const c = d.client;
    const cfg = await walkConfig(c);
    assert.equal(cfg.vendor, 0x10de);
    assert.equal(cfg.device, board.vfDeviceId);
    assert.equal(cfg.classCode, 0x030200, '3D controller');
    assert.equal(cfg.revision, board.revision);
    assert.equal(cfg.subsystemVendor, board.subsystemVendorId);
    assert.equal(cfg.subsystem, board.subsystemId);
    assert.equal(cfg.headerType & 0x7f, 0, 'type 0 header');
    assert.equal(cfg.interruptPin, 0, 'a VF has no INTx pin');
    assert.equal(d.irqs[Irq.INTX]!.count, 0);
    // The identity the guest sees is the VF's, as the simulated device holds its config space.
    const devCfg = h.sim.arena.window(BigInt(vfConfigOffset(mine.vf)), 0x40);
    assert.equal(devCfg.readUInt16LE(Pci.VENDOR_ID), cfg.vendor);
    assert.equal(devCfg.readUInt16LE(Pci.DEVICE_ID), cfg.device);

    assert.ok(cfg.pcie !== undefined, 'a PCI Express capability');
    assert.equal(cfg.pcie.type, 0, 'PCIe endpoint');
    assert.ok(cfg.pcie.flr, 'FLR capable');
    assert.ok(cfg.msix !== undefined, 'an MSI-X capability');
    assert.equal(cfg.msix.tableSize, d.irqs[Irq.MSIX]!.count, 'MSI-X table size = the MSI-X IRQ count');
    const tableBar = d.regions[cfg.msix.tableBar]!;
    assert.ok(BigInt(cfg.msix.tableOffset + 16 * cfg.msix.tableSize) <= tableBar.size, 'the MSI-X table fits its BAR');

    const bars = await sizeBars(c);
    const bar = (i: number) => bars.find((b) => b.index === i)!;
    assert.deepEqual([bar(0).size, bar(0).is64, bar(0).prefetchable, bar(0).io], [board.vfBars.bar0, false, false, false], 'BAR0: 32-bit registers');
    assert.deepEqual([bar(1).size, bar(1).is64, bar(1).prefetchable], [board.vfBars.bar1, true, true], 'BAR1: 64-bit prefetchable FB aperture');
    assert.deepEqual([bar(3).size, bar(3).is64], [board.vfBars.bar3, true], 'BAR3: 64-bit');
    assert.equal(bar(5).size, 0n, 'BAR5 absent');
    for (const i of [0, 1, 3]) assert.equal(bar(i).size, d.regions[i]!.size, `BAR${i}: config space and region info agree`);
    for (const b of bars) assert.equal(b.after, b.before, `BAR${b.index} holds its value again after sizing`);
    assert.equal(await sizeRom(c), 0n, 'no expansion ROM');

    // Read-only fields ignore writes.
    await c.setConfig(Pci.VENDOR_ID, 4, 0x12345678);
    assert.equal(await c.config(Pci.VENDOR_ID, 2), 0x10de);
    assert.equal(await c.config(Pci.DEVICE_ID, 2), board.vfDeviceId);
    await c.setConfig(Pci.REVISION_ID, 4, 0);
    assert.equal(await c.config(Pci.REVISION_ID, 4), (0x030200 << 8) | board.revision);
    assert.deepEqual(c.violations, []);
  });

  it('maps BAR1 and writes/reads FB: the bytes land in the vGPU\'s slice; BAR1\'s last byte reaches nothing beyond it', async () => {
    const d = await vmm();
    const fbOff = BigInt(mine.fb.offset);
    const fbSize = BigInt(mine.fb.size);
    assert.ok((d.bar1.info.flags & REGION_FLAG_MMAP) !== 0, 'BAR1 is mmap-able');
    assert.equal(d.bar1.mappedBytes, fbSize < d.bar1.size ? fbSize : d.bar1.size, 'the mappable span is exactly the slice (or the aperture)');
    assert.ok(fbSize < d.bar1.size, '1Q: the slice is smaller than BAR1');

    // What lies after the slice, in the device: the gap and the neighbour's first 64 KiB.
    const nOff = BigInt(neighbour.fb.offset);
    assert.ok(nOff >= fbOff + fbSize, 'the neighbour follows');
    const afterLen = Number(nOff - (fbOff + fbSize)) + 0x10000;
    const afterBefore = deviceFb(h, fbOff + fbSize, afterLen);

    const a = pattern(1, 3 * PAGE + 17);
    d.bar1.writeMapped(0x123n, a);
    assert.ok(deviceFb(h, fbOff + 0x123n, a.length).equals(a), 'a store through the mapping is in the device\'s FB at the slice offset');
    assert.ok(d.bar1.readMapped(0x123n, a.length).equals(a));
    const b = pattern(2, 64);
    await d.client.write(Region.BAR1, 0x800000n, b);
    assert.ok(deviceFb(h, fbOff + 0x800000n, 64).equals(b), 'a trapped REGION_WRITE to BAR1 lands in the slice too');
    assert.ok(d.bar1.readMapped(0x800000n, 64).equals(b), 'and the mapping sees it');

    // The slice's last byte, then BAR1's last byte (past the slice: trapped, and dropped).
    d.bar1.writeMapped(fbSize - 1n, Buffer.from([0xa5]));
    assert.equal(deviceFb(h, fbOff + fbSize - 1n, 1)[0], 0xa5);
    assert.ok(!d.bar1.isMapped(d.bar1.size - 1n, 1), 'BAR1 beyond the slice is not mappable');
    await d.bar1.write(d.bar1.size - 1n, Buffer.from([0x5a]));
    assert.equal((await d.bar1.read(d.bar1.size - 1n, 1))[0], 0, 'BAR1 past the slice reads 0');
    await d.bar1.write(fbSize, Buffer.alloc(PAGE, 0x77));
    assert.ok(deviceFb(h, fbOff + fbSize, afterLen).equals(afterBefore), 'nothing after the slice changed: not the gap, not the neighbour\'s FB');
    assert.equal(deviceFb(h, fbOff + fbSize - 1n, 1)[0], 0xa5, 'the slice\'s last byte kept its value');
    assert.deepEqual(d.client.violations, []);
  });

  it('reads PMC_BOOT_0 through BAR0: the chip\'s identification', async () => {
    const d = await vmm();
    const boot0 = await d.client.read32(Region.BAR0, Bar0.PMC_BOOT_0);
    assert.equal(boot0, deviceBoot0(h), 'the VF reports the GPU\'s NV_PMC_BOOT_0');
    assert.equal(boot0, boot0For(board));
    const f = decodeBoot0(boot0);
    assert.equal(f.architecture, ADA_ARCHITECTURE);
    assert.equal(f.implementation, ADA_IMPLEMENTATION[board.chip]);
  });

  it('rings the guest doorbell and gets the answer plus an MSI-X interrupt on its eventfd', async () => {
    const g = await driver();
    const setup = await g.rpcSetup();
    assert.equal(setup.result, 0, 'RPC setup accepted');
    assert.ok(setup.interrupts >= 1 && (setup.leaf0 & LEAF0_RPC_ANSWERED) !== 0, 'the setup answer came with MSI-X vector 0 and leaf 0 bit 0');
    const echo = await g.rpc(1, Buffer.from('hello from the guest'));
    assert.equal(echo.result, 0);
    assert.equal(echo.payload.toString(), 'hello from the guest');
    assert.ok(echo.interrupts >= 1, 'the answer was signalled on the vector\'s eventfd');
    assert.equal(await g.readReg(Bar0.cpuIntrLeaf(0)) & LEAF0_RPC_ANSWERED, 0, 'the guest acknowledged the leaf bit (write 1 to clear)');
    const info = await g.getInfo();
    assert.equal(info.typeId, mine.typeId);
    assert.equal(info.gfid, mine.gfid);
    assert.equal(info.fbBytes, BigInt(mine.fb.size));
    assert.equal(info.boot0, deviceBoot0(h));
    assert.deepEqual(g.client.violations, []);
  });

  it('interrupts and trapped accesses behave as the spec says: client-triggered vectors, posted and coalesced writes, pipelined reads', async () => {
    const g = await driver();
    const c = g.client;
    // SET_IRQS without data fires a vector; with DATA_BOOL only the vectors marked true (QEMU spec SET_IRQS item 5).
    await c.setIrqs(Irq.MSIX, 5, 1, 'trigger', { kind: 'none' });
    assert.ok(await g.msix.wait(5) >= 1, 'vector 5 fired');
    await c.setIrqs(Irq.MSIX, 6, 2, 'trigger', { kind: 'bool', values: [true, false] });
    assert.ok(await g.msix.wait(6) >= 1, 'vector 6 (true) fired');
    assert.equal(g.msix.take(7), 0, 'vector 7 (false) did not');

    // A No_reply write is done before the reply to the next command (QEMU spec "Command Concurrency").
    const v = Buffer.alloc(4);
    v.writeUInt32LE(0x0badcafe);
    c.conn.post(Cmd.REGION_WRITE, Buffer.concat([RegionAccess.pack({ offset: BigInt(Bar0.mailboxScratch(7)), region: Region.BAR0, count: 4 }), v]));
    assert.equal(await g.readReg(Bar0.mailboxScratch(7)), 0x0badcafe);
    // REGION_WRITE_MULTI, as QEMU coalesces small writes when write_multiple was agreed.
    assert.ok(c.negotiated.writeMultiple, 'write_multiple agreed');
    const w = (i: number, x: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(x);
      return { region: Region.BAR0, offset: BigInt(Bar0.mailboxScratch(i)), data: b };
    };
    assert.equal(await c.writeMulti([w(8, 0x11111111), w(9, 0x22222222)]), 2n);
    assert.deepEqual([await g.readReg(Bar0.mailboxScratch(8)), await g.readReg(Bar0.mailboxScratch(9))], [0x11111111, 0x22222222]);
    // Pipelined reads: many commands in flight, each reply matched to its command.
    const reads = await Promise.all(Array.from({ length: 64 }, (_, i) => c.read32(Region.BAR0, i % 2 === 0 ? Bar0.PMC_BOOT_0 : Bar0.mailboxScratch(8))));
    reads.forEach((x, i) => assert.equal(x, i % 2 === 0 ? deviceBoot0(h) : 0x11111111));
    for (const i of [7, 8, 9]) await g.writeReg(Bar0.mailboxScratch(i), 0);
    // A region whose capabilities do not fit the request's argsz: the reply names the size and carries no more.
    const short = await requestRegionInfo(c.conn, Region.BAR1, 32);
    assert.equal(short.payload.length, 32);
    assert.ok(RegionInfo.unpack(short.payload).argsz > 32, 'BAR1 info with its sparse-mmap capability needs more than 32 bytes');
    for (const fd of short.fds) loadFdOps().closeFd(fd);
    assert.deepEqual(c.violations, []);
  });

  it('maps guest memory: a copy-engine write lands there and its pages are reported dirty (DMA_LOGGING_START/REPORT)', async () => {
    const g = await driver();
    const d = g.dev;
    const ram = d.ram;
    assert.ok(await d.client.probeFeature(6 /* DMA_LOGGING_START */), 'DMA logging is offered');
    const pageSize = await d.client.dmaLoggingStart(BigInt(PAGE), [{ iova: ram.iova, length: BigInt(ram.size) }]);
    assert.equal(pageSize, BigInt(PAGE));
    assert.deepEqual(await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE)), [], 'nothing written since logging started');

    const data = pattern(3, 3 * PAGE);
    await d.bar1.write(0x200000n, data);
    const at = GuestLayout.DATA + 0x800; // unaligned: the copy touches four pages
    const a = await g.ceCopy(0x200000n, at, data.length, 0);
    assert.equal(a.result, 0);
    assert.ok(g.ramView(at, data.length).equals(data), 'the copy engine wrote guest memory through the DMA map');
    const cePages = [at / PAGE, at / PAGE + 1, at / PAGE + 2, at / PAGE + 3].map(Math.floor);
    const dirty = await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE));
    for (const p of cePages) assert.ok(dirty.includes(p), `page ${p} written by the copy engine is reported dirty (got ${dirty})`);
    assert.ok(dirty.includes(GuestLayout.RESPONSE / PAGE), 'the response page the device wrote is reported dirty too');
    const mayBeDirty = new Set([...cePages, GuestLayout.RESPONSE / PAGE, ...[0, 1, 2, 3].map((i) => GuestLayout.MESSAGE / PAGE + i)]);
    for (const p of dirty) assert.ok(mayBeDirty.has(p), `page ${p} is reported dirty but the device never wrote it`);
    assert.deepEqual(await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE)), [], 'a report clears what it reported');
    await assert.rejects(d.client.dmaLoggingStart(BigInt(PAGE), [{ iova: ram.iova, length: BigInt(ram.size) }]), (e: unknown) => isErrno(e), 'a second START while logging is refused (vfio.h)');
    // A report at another page size: bit n covers [iova + n·8 KiB, +8 KiB) (vfio.h: the driver formats its log to
    // the reporting page size).
    assert.equal((await g.ceCopy(0x200000n, GuestLayout.DATA + 3 * PAGE, PAGE, 0)).result, 0);
    const coarse = await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(2 * PAGE));
    assert.ok(coarse.includes(Math.floor((GuestLayout.DATA + 3 * PAGE) / (2 * PAGE))), `the 8 KiB unit holding the written page is dirty (got ${coarse})`);

    // The other way: guest memory → FB. The device only reads the source page, so it is not dirty.
    const back = pattern(4, PAGE);
    back.copy(g.ramView(GuestLayout.DATA + 0x8000, PAGE));
    assert.equal((await g.ceCopy(0x300000n, GuestLayout.DATA + 0x8000, PAGE, 1)).result, 0);
    assert.ok(deviceFb(h, BigInt(mine.fb.offset) + 0x300000n, PAGE).equals(back), 'guest memory copied into the slice');
    const dirty2 = await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE));
    assert.ok(!dirty2.includes((GuestLayout.DATA + 0x8000) / PAGE), 'a page the device only read is not dirty');
    // Outside the slice the copy engine refuses and touches nothing.
    assert.notEqual((await g.ceCopy(BigInt(mine.fb.size) - 16n, GuestLayout.DATA, PAGE, 0)).result, 0);

    await d.client.dmaLoggingStop();
    await assert.rejects(d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE)), (e: unknown) => e instanceof VfioUserErrnoError, 'no report once logging stopped');
    // vfio-user's "num_ranges 0: log every write" (QEMU spec DMA_LOGGING_START).
    await d.client.dmaLoggingStart(BigInt(PAGE), []);
    assert.equal((await g.ceCopy(0x200000n, GuestLayout.DATA + 5 * PAGE, 16, 0)).result, 0);
    assert.ok((await d.client.dmaLoggingReport(ram.iova, BigInt(ram.size), BigInt(PAGE))).includes(GuestLayout.DATA / PAGE + 5), 'logged without ranges');
    await d.client.dmaLoggingStop();
    assert.deepEqual(d.client.violations, []);
  });

  it('resets the device: FB scrubbed, registers back to power-on, the guest driver starts over', async () => {
    const g = await driver();
    const d = g.dev;
    const fbOff = BigInt(mine.fb.offset);
    d.bar1.writeMapped(0x5000n, pattern(5, PAGE));
    await g.writeReg(Bar0.mailboxScratch(5), 0xfeedf00d);
    assert.equal(await g.readReg(Bar0.mailboxScratch(5)), 0xfeedf00d);
    assert.notEqual(await g.readReg(Bar0.cpuIntrLeafEnSet(0)), 0);

    await g.reset();
    assert.ok(deviceFbIsZero(h, fbOff, BigInt(mine.fb.size)), 'the whole slice is zero in the device');
    assert.ok(d.bar1.readMapped(0x5000n, PAGE).equals(Buffer.alloc(PAGE)), 'and through the guest\'s mapping');
    assert.equal(await g.readReg(Bar0.mailboxScratch(5)), 0);
    assert.equal(await g.readReg(Bar0.mailboxScratch(SCRATCH_GUEST_RPC_LO)), 0, 'the RPC setup is forgotten');
    assert.equal(await g.readReg(Bar0.cpuIntrLeafEnSet(0)), 0, 'interrupt enables back to 0');
    assert.equal(await g.readReg(Bar0.CPU_INTR_TOP_EN_SET), 0);
    assert.equal(await d.client.migState(), MigState.RUNNING, 'a reset leaves the device RUNNING');

    await g.enableDevice();
    assert.equal((await g.rpcSetup()).result, 0);
    assert.equal(await g.echo('after the reset'), 'after the reset');
    d.bar1.writeMapped(0x6000n, Buffer.from('mapping still live'));
    assert.equal(deviceFb(h, fbOff + 0x6000n, 18).toString(), 'mapping still live', 'the BAR1 mapping reaches the FB after the reset');
    assert.deepEqual(d.client.violations, []);
  });

  it('a Function Level Reset through config space is complete when the config write is answered', async () => {
    // Linux's vfio-pci performs the FLR inside the config write (drivers/vfio/pci/vfio_pci_config.c
    // vfio_exp_config_write → pci_try_reset_function, which also waits out the PCIe 100 ms): when the VMM's write
    // returns, the function is reset. The next access must see the reset device.
    const g = await driver();
    const d = g.dev;
    const walk = await walkConfig(d.client);
    assert.ok(walk.pcie?.flr, 'FLR capable');
    await g.writeReg(Bar0.mailboxScratch(6), 0x600d);
    d.bar1.writeMapped(0x7000n, Buffer.from('before FLR'));
    const at = walk.pcie!.at + Pci.EXP_DEVCTL;
    await d.client.setConfig(at, 2, (await d.client.config(at, 2)) | Pci.EXP_DEVCTL_BCR_FLR);
    assert.equal((await d.client.config(at, 2)) & Pci.EXP_DEVCTL_BCR_FLR, 0, 'Initiate FLR reads 0');
    assert.equal(await g.readReg(Bar0.mailboxScratch(6)), 0, 'the registers are reset');
    assert.ok(deviceFb(h, BigInt(mine.fb.offset) + 0x7000n, 10).equals(Buffer.alloc(10)), 'the FB is scrubbed');
  });
});
