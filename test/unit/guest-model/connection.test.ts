// The guest model's framing against a hand-driven peer on a socketpair (no server): replies matched by id across
// pipelined commands, descriptors taken with the message they came on, and every breach of the protocol by the
// peer recorded — an unknown reply id, an error reply with a payload, descriptors beyond max_msg_fds — while the
// connection keeps working. Also the DMA_WRITE the "server" sends is answered from client memory and held to the
// client's max_data_xfer_size. The dirty-bitmap decoding of DMA_LOGGING_REPORT is checked on a crafted reply.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { fdOpsAvailable, loadFdOps, WATCH_READABLE, type FdOps } from '../../../native/fd-ops.js';
import { VfioUserConnection, frame } from '../../guest-model/wire/vfio-user-connection.js';
import { Header, DmaAccess, DmaLoggingReport, FeatureHead } from '../../guest-model/wire/spec-structs.js';
import { Cmd, HDR_ERROR, HDR_TYPE_COMMAND, HDR_TYPE_REPLY } from '../../guest-model/wire/spec-constants.js';
import { SocketDmaSpace } from '../../guest-model/protocol/dma.js';
import { dmaLoggingReport } from '../../guest-model/protocol/device-feature.js';
import { VfioUserProtocolError } from '../../guest-model/wire/errors.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';

/** The far end: read whole messages (header, then body) from `fd`. */
class Peer {
  private buf = Buffer.alloc(0);
  constructor(private readonly ops: FdOps, readonly fd: number) {}
  async next(): Promise<{ msgId: number; command: number; flags: number; payload: Buffer; fds: number[] }> {
    const fds: number[] = [];
    for (;;) {
      if (this.buf.length >= 16) {
        const h = Header.unpack(this.buf);
        if (this.buf.length >= h.size) {
          const payload = Buffer.from(this.buf.subarray(16, h.size));
          this.buf = this.buf.subarray(h.size);
          return { msgId: h.msgId, command: h.command, flags: h.flags, payload, fds };
        }
      }
      const chunk = Buffer.alloc(65536);
      const r = this.ops.recvMsg(this.fd, chunk, 8);
      if (r === null) {
        await new Promise<void>((res) => {
          const w = this.ops.watch(this.fd, (f) => {
            if ((f & WATCH_READABLE) === 0) return;
            w.close();
            res();
          });
          w.start(true, false);
        });
        continue;
      }
      fds.push(...r.fds);
      this.buf = Buffer.concat([this.buf, chunk.subarray(0, r.bytes)]);
    }
  }
  send(b: Buffer, fds: number[] = []): void {
    assert.equal(this.ops.sendMsg(this.fd, b, fds), b.length);
  }
}

/**
 * The process's open descriptors by number. Compared as sets, not counts: a descriptor something else in the process
 * (the module loader) had open at the start may close during the test, and a count would then hide a leak or
 * report one that is not there; a number open now that was not open before is one the test left behind.
 */
const openFds = (): Set<string> => new Set(readdirSync('/proc/self/fd'));

describe('guest model: framing and descriptors on the client side', { skip }, () => {
  it('matches pipelined replies by id, takes descriptors with their message, records the peer\'s breaches', async () => {
    const ops = loadFdOps();
    const before = openFds();
    const [a, b] = ops.socketPair();
    const conn = VfioUserConnection.fromFd(a, { maxRecvFds: 1 });
    const peer = new Peer(ops, b);
    const r1 = conn.request(Cmd.REGION_READ, Buffer.alloc(16));
    const r2 = conn.request(Cmd.DEVICE_GET_REGION_INFO, Buffer.alloc(32));
    const m1 = await peer.next();
    const m2 = await peer.next();
    // Answer out of order; the second reply carries a descriptor; then a reply nobody asked for.
    const efd = ops.eventfd(0);
    peer.send(frame(m2.msgId, m2.command, HDR_TYPE_REPLY, Buffer.alloc(32)), [efd]);
    peer.send(frame(m1.msgId, m1.command, HDR_TYPE_REPLY, Buffer.alloc(20, 7)));
    peer.send(frame(999, Cmd.REGION_READ, HDR_TYPE_REPLY, Buffer.alloc(0)));
    const [x1, x2] = await Promise.all([r1, r2]);
    assert.equal(x1.payload.length, 20);
    assert.equal(x2.fds.length, 1, 'the descriptor came with its reply');
    assert.match(ops.fdTarget(x2.fds[0]!), /eventfd/);
    ops.closeFd(x2.fds[0]!);
    // An error reply with a payload, and two descriptors where one was allowed: both recorded, connection fine.
    const r3 = conn.request(Cmd.DMA_MAP, Buffer.alloc(32));
    const m3 = await peer.next();
    const e2 = [ops.eventfd(0), ops.eventfd(0)];
    peer.send(frame(m3.msgId, m3.command, HDR_TYPE_REPLY | HDR_ERROR, Buffer.alloc(4), 22), e2);
    const x3 = await r3;
    assert.equal(x3.error, 22);
    for (const fd of [...x3.fds, ...e2, efd]) ops.closeFd(fd);
    assert.equal(conn.violations.length, 3, conn.violations.join('\n'));
    assert.match(conn.violations[0]!, /matches no outstanding command/);
    assert.match(conn.violations.join('\n'), /header only/);
    assert.match(conn.violations.join('\n'), /max_msg_fds=1/);
    conn.close();
    await conn.closed;
    ops.closeFd(b);
    assert.deepEqual([...openFds()].filter((fd) => !before.has(fd)), [], 'no descriptor left behind');
  });

  it('rejects what is pending when the peer hangs up', async () => {
    const ops = loadFdOps();
    const [a, b] = ops.socketPair();
    const conn = VfioUserConnection.fromFd(a);
    const r = conn.request(Cmd.DEVICE_RESET);
    await new Peer(ops, b).next();
    ops.closeFd(b);
    await assert.rejects(r, /connection closed \(peer\)/);
    await conn.closed;
  });

  it('answers the peer\'s DMA_WRITE and DMA_READ from client memory, within the client\'s max_data_xfer_size', async () => {
    const ops = loadFdOps();
    const [a, b] = ops.socketPair();
    const conn = VfioUserConnection.fromFd(a);
    const mem = Buffer.alloc(8192);
    const space = new SocketDmaSpace(4096);
    space.add(0x10000n, mem);
    space.attach(conn);
    const peer = new Peer(ops, b);
    const data = Buffer.from('written by the device');
    peer.send(frame(5, Cmd.DMA_WRITE, HDR_TYPE_COMMAND, Buffer.concat([DmaAccess.pack({ addr: 0x10010n, count: BigInt(data.length) }), data])));
    const w = await peer.next();
    assert.equal(w.msgId, 5);
    assert.equal(w.flags & HDR_ERROR, 0);
    assert.deepEqual(DmaAccess.unpack(w.payload), { addr: 0x10010n, count: BigInt(data.length) });
    assert.equal(mem.subarray(16, 16 + data.length).toString(), data.toString());
    peer.send(frame(6, Cmd.DMA_READ, HDR_TYPE_COMMAND, DmaAccess.pack({ addr: 0x10010n, count: BigInt(data.length) })));
    const rd = await peer.next();
    assert.equal(rd.payload.subarray(16).toString(), data.toString());
    peer.send(frame(7, Cmd.DMA_READ, HDR_TYPE_COMMAND, DmaAccess.pack({ addr: 0x10000n, count: 8192n })));
    const big = await peer.next();
    assert.notEqual(big.flags & HDR_ERROR, 0, 'above the client\'s max_data_xfer_size');
    peer.send(frame(8, Cmd.DMA_READ, HDR_TYPE_COMMAND, DmaAccess.pack({ addr: 0x90000n, count: 4n })));
    assert.notEqual((await peer.next()).flags & HDR_ERROR, 0, 'outside every map');
    assert.equal(space.violations.length, 2);
    conn.close();
    ops.closeFd(b);
  });

  it('reads the DMA_LOGGING_REPORT bitmap as bit n = page iova + n·page_size, and refuses bits past the range', async () => {
    const ops = loadFdOps();
    const [a, b] = ops.socketPair();
    const conn = VfioUserConnection.fromFd(a);
    const peer = new Peer(ops, b);
    const answer = async (bits: bigint): Promise<void> => {
      const m = await peer.next();
      const req = DmaLoggingReport.unpack(m.payload, FeatureHead.size);
      const bitmap = Buffer.alloc(16);
      bitmap.writeBigUInt64LE(bits & 0xffffffffffffffffn, 0);
      bitmap.writeBigUInt64LE(bits >> 64n, 8);
      const head = FeatureHead.unpack(m.payload);
      peer.send(frame(m.msgId, m.command, HDR_TYPE_REPLY, Buffer.concat([FeatureHead.pack(head), DmaLoggingReport.pack(req), bitmap])));
    };
    // 100 pages → two u64 words; pages 0, 63, 64 and 99 dirty.
    const p = dmaLoggingReport(conn, 0x100000n, 100n * 4096n, 4096n);
    await answer((1n << 0n) | (1n << 63n) | (1n << 64n) | (1n << 99n));
    assert.deepEqual(await p, [0, 63, 64, 99]);
    const q = dmaLoggingReport(conn, 0x100000n, 100n * 4096n, 4096n);
    await answer(1n << 100n);
    await assert.rejects(q, (e: unknown) => e instanceof VfioUserProtocolError && /outside the 100 pages/.test(e.message));
    conn.close();
    ops.closeFd(b);
  });
});
