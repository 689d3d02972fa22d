// The vfio-user protocol server over a real socket pair, against a fake device: VERSION negotiation, every command's
// malformed-input answers (with the errno VFIO uses), descriptors taken or closed, and a connection that stays
// usable after each refusal. Messages are packed by hand in the test (no client library).
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { fdOpsAvailable, loadFdOps } from '../../../native/fd-ops.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { Errno } from '../../../plugins/vfio-user/protocol/constants.js';
import { VfioUserSession } from '../../../plugins/vfio-user/server/vfio-user-session.js';
import { ERROR, RawPeer, packHeader, regionAccess, u32s, u64 } from '../../helpers/raw-vfio-user.js';
import { FakeDevice } from './fake-device.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

interface Rig {
  device: FakeDevice;
  session: VfioUserSession;
  peer: RawPeer;
  closed: Promise<string>;
}

function rig(caps: Record<string, number> = {}): Rig {
  const ops = loadFdOps();
  const [a, b] = ops.socketPair();
  const device = new FakeDevice();
  let onClose!: (r: string) => void;
  const closed = new Promise<string>((r) => { onClose = r; });
  const session = new VfioUserSession({ ops, fd: a, device, logger: new MemoryLogger(), caps, onClose });
  return { device, session, peer: new RawPeer(b), closed };
}

async function negotiated(caps: Record<string, number> = {}): Promise<Rig> {
  const r = rig(caps);
  const v = await r.peer.version();
  assert.equal(v.flags & ERROR, 0);
  return r;
}

function errnoOf(m: { flags: number; errorNo: number }): number {
  assert.equal(m.flags & ERROR, ERROR, 'expected an error reply');
  return m.errorNo;
}

function irqSet(flags: number, index: number, start: number, count: number, argsz = 20): Buffer {
  return u32s(argsz, flags, index, start, count);
}

describe('vfio-user session: VERSION', { skip }, () => {
  let r: Rig | undefined;
  afterEach(() => { r?.peer.close(); r?.device.dispose(); r = undefined; });

  it('answers with the lower minor and only the capabilities the client named, all within QEMU\'s limits', async () => {
    r = rig();
    const caps = { max_msg_fds: 16, max_data_xfer_size: 1048576, pgsizes: 4096, max_dma_maps: 65535, migration: { pgsize: 4096, max_bitmap_size: 268435456 }, write_multiple: true };
    const v = await r.peer.version(caps, 0);
    assert.equal(v.flags & ERROR, 0);
    assert.equal(v.payload.readUInt16LE(0), 0);
    assert.equal(v.payload.readUInt16LE(2), 0, 'a 0.0 client gets 0.0 back');
    assert.equal(v.payload[v.payload.length - 1], 0, 'JSON is NUL-terminated');
    const json = JSON.parse(v.payload.subarray(4, v.payload.length - 1).toString()) as { capabilities: Record<string, unknown> };
    assert.deepEqual(Object.keys(json.capabilities).sort(), Object.keys(caps).sort());
    assert.ok((json.capabilities.max_msg_fds as number) <= 16);
    assert.ok((json.capabilities.max_data_xfer_size as number) <= 64 << 20);
    assert.equal(json.capabilities.pgsizes, 4096);
    assert.ok(((json.capabilities.migration as { max_bitmap_size: number }).max_bitmap_size) <= 256 << 20);
  });

  it('answers a capability-less client with an empty capabilities object (QEMU needs JSON) and minor 1', async () => {
    r = rig();
    const v = await r.peer.call(1, u32s(0x00010000));
    assert.equal(v.payload.readUInt16LE(2), 1);
    assert.deepEqual(JSON.parse(v.payload.subarray(4, v.payload.length - 1).toString()), { capabilities: {} });
  });

  it('refuses any command before VERSION, and a second VERSION', async () => {
    r = rig();
    assert.equal(errnoOf(await r.peer.call(4, u32s(16, 0, 0, 0))), Errno.EINVAL);
    await r.peer.version();
    assert.equal(errnoOf(await r.peer.version()), Errno.EINVAL);
    const info = await r.peer.call(4, u32s(16, 0, 0, 0));
    assert.equal(info.flags & ERROR, 0, 'still usable');
  });

  for (const [what, payload] of [
    ['an unsupported major', Buffer.concat([u32s(0x00000001), Buffer.from('{}\0')])],
    ['JSON without its NUL', Buffer.concat([u32s(0x00010000), Buffer.from('{}')])],
    ['broken JSON', Buffer.concat([u32s(0x00010000), Buffer.from('{"capabilities":\0')])],
    ['a max_msg_fds that is not a number', Buffer.concat([u32s(0x00010000), Buffer.from('{"capabilities":{"max_msg_fds":"x"}}\0')])],
    ['page sizes without 4 KiB', Buffer.concat([u32s(0x00010000), Buffer.from('{"capabilities":{"pgsizes":8192}}\0')])],
  ] as const) {
    it(`answers ${what} with EINVAL and ends the connection`, async () => {
      r = rig();
      const rep = await r.peer.call(1, payload);
      assert.equal(errnoOf(rep), Errno.EINVAL);
      assert.match(await r.closed, /VERSION/);
    });
  }
});

describe('vfio-user session: framing', { skip }, () => {
  let r: Rig | undefined;
  afterEach(() => { r?.peer.close(); r?.device.dispose(); r = undefined; });

  it('ends only this connection on a size smaller than the header', async () => {
    r = await negotiated();
    r.peer.sendRaw(packHeader(9, 4, 8));
    await r.peer.closedByServer();
    assert.match(await r.closed, /framing/);
    assert.equal(r.device.detached, 1, 'the device let go of the client');
  });

  it('answers an oversize message with E2BIG, skips it, and keeps serving', async () => {
    r = await negotiated();
    const big = Buffer.alloc((1 << 20) + 64);
    const p = r.peer.call(10, big);
    assert.equal(errnoOf(await p), Errno.E2BIG);
    const info = await r.peer.call(4, u32s(16, 0, 0, 0));
    assert.equal(info.payload.readUInt32LE(8), 9);
  });

  it('serves a message that arrives one byte at a time', async () => {
    r = await negotiated();
    const msg = Buffer.concat([packHeader(77, 4, 32), u32s(16, 0, 0, 0)]);
    const reply = r.peer.expect(77);
    for (const b of msg) r.peer.sendRaw(Buffer.from([b]));
    assert.equal((await reply).payload.readUInt32LE(8), 9);
  });

  it('refuses unknown commands and the removed DIRTY_PAGES with ENOTSUP, and DMA_READ from a client with EINVAL', async () => {
    r = await negotiated();
    assert.equal(errnoOf(await r.peer.call(99)), Errno.ENOTSUP);
    assert.equal(errnoOf(await r.peer.call(14, u32s(8, 1))), Errno.ENOTSUP);
    assert.equal(errnoOf(await r.peer.call(11, Buffer.concat([u64(0), u64(4)]))), Errno.EINVAL);
  });

  it('refuses and closes descriptors sent on a command that takes none; the process keeps no extra descriptor', async () => {
    r = await negotiated();
    const ops = loadFdOps();
    const before = openFds();
    const efd = ops.eventfd();
    const rep = await r.peer.call(4, u32s(16, 0, 0, 0), [efd]);
    ops.closeFd(efd);
    assert.equal(errnoOf(rep), Errno.EINVAL);
    assert.equal(openFds(), before);
  });

  it('refuses more descriptors than max_msg_fds and closes them', async () => {
    r = rig();
    await r.peer.version({ max_msg_fds: 16 });
    const ops = loadFdOps();
    const before = openFds();
    const fds = Array.from({ length: 17 }, () => ops.eventfd());
    const rep = await r.peer.call(8, irqSet(0x24, 2, 0, 4), fds);
    for (const fd of fds) ops.closeFd(fd);
    assert.equal(errnoOf(rep), Errno.EINVAL);
    assert.equal(openFds(), before);
  });
});

describe('vfio-user session: device info, regions', { skip }, () => {
  let r: Rig;
  beforeEach(async () => { r = await negotiated(); });
  afterEach(() => { r.peer.close(); r.device.dispose(); });

  it('GET_INFO: flags, regions, irqs; a short argsz is EINVAL', async () => {
    const info = await r.peer.call(4, u32s(16, 0, 0, 0));
    assert.deepEqual([info.payload.readUInt32LE(0), info.payload.readUInt32LE(4), info.payload.readUInt32LE(8), info.payload.readUInt32LE(12)], [16, 3, 9, 5]);
    assert.equal(errnoOf(await r.peer.call(4, u32s(8, 0, 0, 0))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(4, u32s(16))), Errno.EINVAL);
  });

  it('GET_REGION_INFO: a short argsz gets the needed size and no descriptor; a full one gets the sparse-mmap cap and the fd', async () => {
    const req = (argsz: number, index: number): Buffer => Buffer.concat([u32s(argsz, 0, index, 0), u64(0), u64(0)]);
    const short = await r.peer.call(5, req(32, 1));
    assert.equal(short.payload.length, 32);
    assert.equal(short.payload.readUInt32LE(0), 32 + 32, 'argsz says what the full answer needs');
    assert.equal(short.payload.readUInt32LE(4) & 0xc, 0xc, 'MMAP and CAPS');
    assert.equal(short.payload.readUInt32LE(12), 0, 'no cap_offset without caps');
    assert.equal(short.fds.length, 0);
    const full = await r.peer.call(5, req(64, 1));
    assert.equal(full.payload.readUInt32LE(12), 32, 'caps right after the struct');
    assert.equal(full.payload.readUInt16LE(32), 1, 'SPARSE_MMAP');
    assert.equal(full.payload.readUInt32LE(40), 1, 'one area');
    assert.equal(full.payload.readBigUInt64LE(56), 1n << 20n);
    assert.equal(full.fds.length, 1);
    // The descriptor maps the device's memory: write through it, read it back through the region.
    const ops = loadFdOps();
    const map = ops.mapFd(full.fds[0]!, 0, 4096, true);
    map.window(0, 4).writeUInt32LE(0xcafef00d, 0);
    map.close();
    ops.closeFd(full.fds[0]!);
    assert.equal(readFileSync(r.device.file).readUInt32LE(0), 0xcafef00d);
    assert.equal(errnoOf(await r.peer.call(5, req(32, 9))), Errno.EINVAL, 'index out of range');
    assert.equal(errnoOf(await r.peer.call(5, req(32, 8))), Errno.EINVAL, 'no VGA region');
    assert.equal(errnoOf(await r.peer.call(5, req(16, 0))), Errno.EINVAL, 'argsz below the struct');
  });

  it('REGION_READ/WRITE: the bytes land; past the end, over max_data_xfer_size or a count/data mismatch is EINVAL', async () => {
    const w = await r.peer.call(10, regionAccess(0x100, 0, 4, u32s(0x12345678)));
    assert.equal(w.flags & ERROR, 0);
    assert.equal(w.payload.length, 16, 'the write reply repeats offset, region, count');
    const rd = await r.peer.call(9, regionAccess(0x100, 0, 4));
    assert.equal(rd.payload.readUInt32LE(16), 0x12345678);
    assert.equal(rd.payload.readUInt32LE(12), 4);
    assert.equal(errnoOf(await r.peer.call(9, regionAccess((64 << 10) - 2, 0, 4))), Errno.EINVAL, 'past the end');
    assert.equal(errnoOf(await r.peer.call(9, regionAccess(0, 0, (1 << 20) + 1))), Errno.EINVAL, 'over max_data_xfer_size');
    assert.equal(errnoOf(await r.peer.call(10, regionAccess(0, 0, 8, u32s(1)))), Errno.EINVAL, 'count says 8, 4 bytes came');
    assert.equal(errnoOf(await r.peer.call(9, regionAccess(0, 11, 4))), Errno.EINVAL, 'region index out of range');
    assert.equal(errnoOf(await r.peer.call(9, regionAccess(0, 3, 4))), Errno.EINVAL, 'an empty region');
    assert.equal(errnoOf(await r.peer.call(9, Buffer.alloc(8))), Errno.EINVAL, 'truncated payload');
  });

  it('a posted write (No_reply) gets no reply, even a refused one, and a later read sees it', async () => {
    r.peer.post(10, regionAccess(0x40, 0, 4, u32s(7)));
    r.peer.post(10, regionAccess(1 << 30, 0, 4, u32s(7)));
    const rd = await r.peer.call(9, regionAccess(0x40, 0, 4));
    assert.equal(rd.payload.readUInt32LE(16), 7);
    assert.equal(r.peer.allReplies.length, 2, 'only VERSION and the read were answered');
  });

  it('REGION_WRITE_MULTI applies each write when negotiated, and is refused when not', async () => {
    const one = (off: number, v: number): Buffer => Buffer.concat([u64(off), u32s(0, 4, v, 0)]);
    const rep = await r.peer.call(15, Buffer.concat([u64(2), one(0x200, 5), one(0x204, 6)]));
    assert.equal(rep.payload.readBigUInt64LE(0), 2n);
    assert.equal(r.device.regs.readUInt32LE(0x200), 5);
    assert.equal(r.device.regs.readUInt32LE(0x204), 6);
    assert.equal(errnoOf(await r.peer.call(15, Buffer.concat([u64(3), one(0, 1)]))), Errno.EINVAL, 'wr_cnt does not match');
    const plain = rig();
    await plain.peer.version({ max_msg_fds: 1 });
    assert.equal(errnoOf(await plain.peer.call(15, Buffer.concat([u64(1), one(0, 1)]))), Errno.ENOTSUP);
    plain.peer.close();
    plain.device.dispose();
  });

  it('GET_REGION_IO_FDS answers with no sub-regions; non-zero flags or count is EINVAL', async () => {
    const rep = await r.peer.call(6, u32s(4096, 0, 0, 0));
    assert.deepEqual([rep.payload.readUInt32LE(0), rep.payload.readUInt32LE(12)], [16, 0]);
    assert.equal(rep.fds.length, 0);
    assert.equal(errnoOf(await r.peer.call(6, u32s(4096, 1, 0, 0))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(6, u32s(4096, 0, 12, 0))), Errno.EINVAL);
  });

  it('DEVICE_RESET with a payload is EINVAL; without one it resets', async () => {
    assert.equal(errnoOf(await r.peer.call(13, u32s(1))), Errno.EINVAL);
    assert.equal((await r.peer.call(13)).flags & ERROR, 0);
    assert.equal(r.device.resets, 1);
  });
});

describe('vfio-user session: irqs', { skip }, () => {
  let r: Rig;
  beforeEach(async () => { r = await negotiated(); });
  afterEach(() => { r.peer.close(); r.device.dispose(); });

  it('GET_IRQ_INFO per index; index out of range is EINVAL', async () => {
    const rep = await r.peer.call(7, u32s(16, 0, 2, 0));
    assert.equal(rep.payload.readUInt32LE(12), 4);
    assert.equal(errnoOf(await r.peer.call(7, u32s(16, 0, 5, 0))), Errno.EINVAL);
  });

  it('SET_IRQS assigns eventfds, and refuses malformed requests without leaking a descriptor', async () => {
    const ops = loadFdOps();
    const before = openFds();
    const fds = [ops.eventfd(), ops.eventfd()];
    const ok = await r.peer.call(8, irqSet(0x24, 2, 1, 2), fds);
    assert.equal(ok.flags & ERROR, 0);
    assert.notEqual(r.device.msix[1], null);
    const cases: Array<[string, Buffer, number[], number]> = [
      ['two DATA bits', irqSet(0x23, 2, 0, 1), [], Errno.EINVAL],
      ['no ACTION bit', irqSet(0x01, 2, 0, 1), [], Errno.EINVAL],
      ['unknown flag bit', irqSet(0x121, 2, 0, 1), [], Errno.EINVAL],
      ['start past the vectors', irqSet(0x21, 2, 4, 1), [], Errno.EINVAL],
      ['range past the vectors', irqSet(0x21, 2, 3, 2), [], Errno.EINVAL],
      ['index with no vectors (a VF has no INTx)', irqSet(0x21, 0, 0, 1), [], Errno.EINVAL],
      ['index out of range', irqSet(0x21, 7, 0, 1), [], Errno.EINVAL],
      ['short argsz', irqSet(0x21, 2, 0, 1, 12), [], Errno.EINVAL],
      ['BOOL without its bytes', irqSet(0x22, 2, 0, 2, 20), [], Errno.EINVAL],
      ['fd count != count', irqSet(0x24, 2, 0, 2), [ops.eventfd()], Errno.EINVAL],
      ['fds without DATA_EVENTFD', irqSet(0x21, 2, 0, 1), [ops.eventfd()], Errno.EINVAL],
      ['a descriptor that is not an eventfd', irqSet(0x24, 2, 0, 1), [ops.openFile('/dev/null', false)], Errno.EINVAL],
      ['MASK on MSI-X', irqSet(0x09, 2, 0, 1), [], Errno.ENOTTY],
    ];
    for (const [what, payload, extra, errno] of cases) {
      const rep = await r.peer.call(8, payload, extra);
      for (const fd of extra) ops.closeFd(fd);
      assert.equal(errnoOf(rep), errno, what);
    }
    // De-assign (no descriptors) gives the device's copies back.
    assert.equal((await r.peer.call(8, irqSet(0x24, 2, 1, 2))).flags & ERROR, 0);
    for (const fd of fds) ops.closeFd(fd);
    assert.equal(openFds(), before);
  });
});

describe('vfio-user session: DMA', { skip }, () => {
  let r: Rig;
  const ops = () => loadFdOps();
  const map = (iova: bigint, size: bigint, flags = 3, offset = 0n, argsz = 32): Buffer =>
    Buffer.concat([u32s(argsz, flags), u64(offset), u64(iova), u64(size)]);
  const unmap = (iova: bigint, size: bigint, flags = 0): Buffer => Buffer.concat([u32s(24, flags), u64(iova), u64(size)]);
  beforeEach(async () => { r = await negotiated({ maxDmaMaps: 3 }); });
  afterEach(() => { r.peer.close(); r.device.dispose(); });

  it('maps client memory with a descriptor: device writes land in it, are logged dirty, and reads come back', async () => {
    const fd = ops().openFile(r.device.file, true); // any mappable file stands in for guest RAM
    assert.equal((await r.peer.call(2, map(0x100000n, 0x10000n, 3, 0x2000n), [fd])).flags & ERROR, 0);
    ops().closeFd(fd);
    const feature = (flags: number, data: Buffer): Buffer => Buffer.concat([u32s(8 + data.length + 4096, flags), data]);
    const start = await r.peer.call(16, feature((1 << 17) | 6, Buffer.concat([u64(4096), u32s(0, 0)])));
    assert.equal(start.flags & ERROR, 0);
    await r.device.dma!.write(0x100000n + 0x3000n, Buffer.from('dirty!'));
    assert.equal(readFileSync(r.device.file).subarray(0x5000, 0x5006).toString(), 'dirty!', 'IOVA 0x103000 = file offset 0x2000 + 0x3000');
    assert.equal((await r.device.dma!.read(0x103000n, 6)).toString(), 'dirty!');
    const rep = await r.peer.call(16, feature((1 << 16) | 8, Buffer.concat([u64(0x100000), u64(0x10000), u64(4096)])));
    assert.equal(rep.flags & ERROR, 0);
    assert.equal(rep.payload.readBigUInt64LE(8 + 24), 1n << 3n, 'page 3 of the range is dirty');
    const again = await r.peer.call(16, feature((1 << 16) | 8, Buffer.concat([u64(0x100000), u64(0x10000), u64(4096)])));
    assert.equal(again.payload.readBigUInt64LE(8 + 24), 0n, 'read-and-clear');
    await assert.rejects(r.device.dma!.write(0x200000n, Buffer.from('x')), /EFAULT/);
  });

  it('reaches memory mapped without a descriptor through DMA_READ/DMA_WRITE to the client', async () => {
    assert.equal((await r.peer.call(2, map(0x4000n, 0x1000n))).flags & ERROR, 0);
    const write = r.device.dma!.write(0x4010n, Buffer.from('hi'));
    const cmd = await r.peer.nextCommand();
    assert.equal(cmd.command, 12);
    assert.equal(cmd.payload.readBigUInt64LE(0), 0x4010n);
    assert.equal(cmd.payload.readBigUInt64LE(8), 2n);
    assert.equal(cmd.payload.subarray(16).toString(), 'hi');
    r.peer.reply(cmd);
    await write;
    const read = r.device.dma!.read(0x4000n, 3);
    const rc = await r.peer.nextCommand();
    assert.equal(rc.command, 11);
    r.peer.reply(rc, Buffer.concat([u64(0x4000), u64(3), Buffer.from('abc')]));
    assert.equal((await read).toString(), 'abc');
    const failing = r.device.dma!.read(0x4000n, 1);
    r.peer.reply(await r.peer.nextCommand(), Buffer.alloc(0), Errno.EFAULT);
    await assert.rejects(failing, /EFAULT/);
  });

  it('refuses overlap (EEXIST), too many maps (ENOSPC), bad flags and alignment (EINVAL), unknown unmaps (ENOENT)', async () => {
    assert.equal((await r.peer.call(2, map(0x10000n, 0x10000n))).flags & ERROR, 0);
    assert.equal(errnoOf(await r.peer.call(2, map(0x18000n, 0x1000n))), Errno.EEXIST);
    assert.equal(errnoOf(await r.peer.call(2, map(0x1000000n, 0x1000n, 8))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(2, map(0x1000001n, 0x1000n))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(2, map(0x1000000n, 0n))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(2, map(0x1000000n, 0x1000n, 3, 0n, 16))), Errno.EINVAL, 'argsz');
    assert.equal((await r.peer.call(2, map(0x30000n, 0x1000n))).flags & ERROR, 0);
    assert.equal((await r.peer.call(2, map(0x40000n, 0x1000n))).flags & ERROR, 0);
    assert.equal(errnoOf(await r.peer.call(2, map(0x50000n, 0x1000n))), Errno.ENOSPC, 'max_dma_maps 3');
    assert.equal(errnoOf(await r.peer.call(3, unmap(0x10000n, 0x1000n))), Errno.ENOENT, 'not an exact range');
    assert.equal(errnoOf(await r.peer.call(3, unmap(0x10000n, 0x10000n, 1))), Errno.ENOTSUP, 'GET_DIRTY_BITMAP');
    assert.equal(errnoOf(await r.peer.call(3, unmap(0x10000n, 0x10000n, 2))), Errno.EINVAL, 'ALL with an address');
    const u = await r.peer.call(3, unmap(0x10000n, 0x10000n));
    assert.equal(u.payload.readBigUInt64LE(8), 0x10000n, 'the reply repeats the entry');
    assert.equal((await r.peer.call(3, unmap(0n, 0n, 2))).flags & ERROR, 0);
    assert.equal(r.session.dmaMaps, 0);
  });

  it('DMA logging: report before start is EINVAL, a bad page size is EINVAL, probing works, unknown features are ENOTTY', async () => {
    const f = (flags: number, data: Buffer, argsz = 8 + data.length + 64): Buffer => Buffer.concat([u32s(argsz, flags), data]);
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 16) | 8, Buffer.concat([u64(0), u64(4096), u64(4096)])))), Errno.EINVAL);
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 17) | 6, Buffer.concat([u64(1000), u32s(0, 0)])))), Errno.EINVAL);
    assert.equal((await r.peer.call(16, f((1 << 18) | (1 << 17) | 6, Buffer.alloc(0)))).flags & ERROR, 0, 'PROBE of SET');
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 18) | (1 << 16) | 6, Buffer.alloc(0)))), Errno.EINVAL, 'PROBE of GET on a SET-only feature');
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 16) | (1 << 17) | 1, Buffer.alloc(8)))), Errno.EINVAL, 'GET and SET');
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 19) | 1, Buffer.alloc(8)))), Errno.EINVAL, 'unknown flag bit');
    assert.equal(errnoOf(await r.peer.call(16, f((1 << 16) | 99, Buffer.alloc(8)))), Errno.ENOTTY);
  });

  it('drops the client\'s maps when it goes, and the device is detached', async () => {
    const fd = ops().openFile(r.device.file, true);
    await r.peer.call(2, map(0x100000n, 0x10000n), [fd]);
    ops().closeFd(fd);
    r.peer.close();
    await r.closed;
    assert.equal(r.session.dmaMaps, 0);
    assert.equal(r.device.detached, 1);
  });
});
