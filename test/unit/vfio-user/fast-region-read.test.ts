// The trapped-register fast path of the vfio-user server (server/fast-region-read.ts) against the general path, over
// a real socket pair: every REGION_READ — good, malformed, refused — gets the answer the general path gives (same
// bytes, same errno, same counters); a read that arrives while an earlier command is still running waits its turn;
// replies the socket cannot take at once are kept intact even though the fast path reuses its reply buffer.
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { fdOpsAvailable, loadFdOps, type FdOps } from '../../../native/fd-ops.js';
import { VfioUserSession } from '../../../plugins/vfio-user/server/vfio-user-session.js';
import { ERROR, NO_REPLY, RawPeer, packHeader, regionAccess, type RawMessage } from '../../helpers/raw-vfio-user.js';
import { FakeDevice } from './fake-device.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';

/** The fake device with the fast read (register region 0 only, as the vGPU serves BAR0), counting its uses. */
class FastDevice extends FakeDevice {
  fastReads = 0;
  /** Set while a write the test holds is in progress. */
  held: { release: () => void; started: Promise<void> } | null = null;
  fastDuringHeldWrite = 0;

  readRegisterInto(index: number, offset: number, count: number, out: Buffer, at: number): boolean {
    if (index !== 0 || offset + count > this.regs.length) return false;
    if (this.held !== null) this.fastDuringHeldWrite++;
    this.fastReads++;
    this.regs.copy(out, at, offset, offset + count);
    return true;
  }

  /** The next write to region 0 does not finish until the test releases it. */
  holdNextWrite(): { release: () => void; started: Promise<void> } {
    let release!: () => void;
    let started!: () => void;
    const done = new Promise<void>((r) => { release = r; });
    this.held = { release, started: new Promise<void>((r) => { started = r; }) };
    const h = this.held;
    const write = this.regionWrite.bind(this);
    this.regionWrite = (index: number, offset: bigint, data: Uint8Array): Promise<void> => {
      this.regionWrite = write;
      started();
      return done.then(() => {
        write(index, offset, data);
        this.held = null;
      });
    };
    return h;
  }
}

interface Rig {
  device: FakeDevice;
  session: VfioUserSession;
  peer: RawPeer;
  /** Bytes the server has received so far (its recvmsg calls, seen through the descriptor operations). */
  received: () => number;
  /** Resolves once the server has received at least `n` bytes. */
  receivedAtLeast: (n: number) => Promise<void>;
}

async function rig(device: FakeDevice): Promise<Rig> {
  const real = loadFdOps();
  let received = 0;
  let waiters: Array<{ n: number; r: () => void }> = [];
  const ops: FdOps = {
    ...real,
    recvMsg: (fd, buf, maxFds) => {
      const r = real.recvMsg(fd, buf, maxFds);
      if (r !== null) {
        received += r.bytes;
        waiters = waiters.filter((w) => (received >= w.n ? (w.r(), false) : true));
      }
      return r;
    },
  };
  const [a, b] = real.socketPair();
  const session = new VfioUserSession({ ops, fd: a, device, logger: new MemoryLogger() });
  const peer = new RawPeer(b);
  const v = await peer.version();
  assert.equal(v.flags & ERROR, 0);
  return {
    device, session, peer, received: () => received,
    receivedAtLeast: (n) => (received >= n ? Promise.resolve() : new Promise((r) => waiters.push({ n, r }))),
  };
}

/** What a client can see of a reply. */
function seen(m: RawMessage): unknown {
  return { msgId: m.msgId, command: m.command, size: m.size, flags: m.flags, errorNo: m.errorNo, payload: m.payload.toString('hex') };
}

describe('vfio-user server: trapped register reads on the fast path', { skip }, () => {
  const rigs: Rig[] = [];
  afterEach(() => {
    for (const r of rigs.splice(0)) {
      r.peer.close();
      r.device.dispose();
    }
  });

  it('answers every REGION_READ exactly as the general path does: data, errors, counters', async () => {
    const fast = await rig(new FastDevice());
    const general = await rig(new FakeDevice());
    rigs.push(fast, general);
    for (const r of [fast, general]) r.device.regs.forEach((_, i, b) => { b[i] = (i * 7 + 3) & 0xff; });
    const size = 64 << 10;
    // [offset, region, count, flags]
    const cases: Array<[bigint, number, number, number]> = [
      [0n, 0, 4, 0], [0x10n, 0, 1, 0], [0x11n, 0, 2, 0], [0x13n, 0, 4, 0], [0x20n, 0, 8, 0], [BigInt(size - 4), 0, 4, 0],
      [BigInt(size - 2), 0, 4, 0], // past the end: EINVAL
      [BigInt(size), 0, 1, 0], // at the end: EINVAL
      [0n, 0, 0, 0], // count 0: the header back, no data
      [0n, 0, 9, 0], [0n, 0, 64, 0], // wider than a register: general path, same answer
      [1n << 32n, 0, 4, 0], // offset above 4 GiB: EINVAL
      [0n, 7, 4, 0], // config space: general path
      [0n, 3, 4, 0], // a region that cannot be read: EINVAL
      [0n, 8, 4, 0], [0n, 42, 4, 0], // no VGA region, index out of range: EINVAL
      [0n, 0, 4, 0x40], // unknown flag bits: whatever the general path does with them
    ];
    for (const [offset, region, count, flags] of cases) {
      const answers = await Promise.all([fast, general].map((r) => r.peer.call(9, regionAccess(offset, region, count), [], flags)));
      assert.deepEqual(seen(answers[0]!), seen(answers[1]!), `REGION_READ offset 0x${offset.toString(16)} region ${region} count ${count} flags 0x${flags.toString(16)}`);
    }
    // A posted read (No_reply) gets no answer on either path; the next command's answer comes next.
    for (const r of [fast, general]) {
      const id = r.peer.post(9, regionAccess(0n, 0, 4));
      const next = await r.peer.call(9, regionAccess(4n, 0, 4));
      assert.ok(!r.peer.allReplies.some((m) => m.msgId === id), 'nothing answers a No_reply read');
      assert.equal(next.payload.readUInt32LE(16), fast.device.regs.readUInt32LE(4));
    }
    assert.deepEqual(fast.session.counters, general.session.counters, 'messages, errors and per-region reads count alike');
    assert.ok((fast.device as FastDevice).fastReads >= 6, 'the register reads took the fast path');
  });

  it('a read that arrives while an earlier command still runs waits for it, and sees its effect', async () => {
    const r = await rig(new FastDevice());
    rigs.push(r);
    const dev = r.device as FastDevice;
    const hold = dev.holdNextWrite();
    const before = r.received();
    const write = r.peer.call(10, regionAccess(0x100n, 0, 4, Buffer.from([1, 2, 3, 4])));
    await hold.started;
    const read = r.peer.call(9, regionAccess(0x100n, 0, 4));
    await r.receivedAtLeast(before + 36 + 32); // the server has the read in hand while the write is held
    hold.release();
    const [w, rd] = await Promise.all([write, read]);
    assert.equal(w.flags & ERROR, 0);
    assert.ok(r.peer.allReplies.indexOf(w) < r.peer.allReplies.indexOf(rd), 'the write is answered first');
    assert.deepEqual([...rd.payload.subarray(16)], [1, 2, 3, 4], 'the read sees the write');
    assert.equal(dev.fastDuringHeldWrite, 0, 'no read was answered past the running write');
  });

  it('replies the socket cannot take at once stay intact (the reused reply buffer is copied when queued)', async () => {
    const r = await rig(new FastDevice());
    rigs.push(r);
    r.device.regs.forEach((_, i, b) => { b[i] = i & 0xff; });
    // 20000 reads in one burst, never read back until all are sent: far more replies than a socket buffer holds.
    const n = 20_000;
    const burst = Buffer.alloc(32 * n);
    for (let i = 0; i < n; i++) {
      packHeader(i + 100, 9, 32).copy(burst, 32 * i);
      regionAccess(BigInt(8 * (i % 4096)), 0, 8).copy(burst, 32 * i + 16);
    }
    r.peer.sendRaw(burst);
    await r.peer.expect(n - 1 + 100);
    const replies = r.peer.allReplies.filter((m) => m.msgId >= 100);
    assert.equal(replies.length, n);
    for (let i = 0; i < n; i++) {
      const m = replies[i]!;
      assert.equal(m.msgId, i + 100, 'in order');
      assert.equal(m.flags & (ERROR | NO_REPLY), 0);
      const off = 8 * (i % 4096);
      assert.equal(m.payload.readBigUInt64LE(0), BigInt(off), `reply ${i} carries its own access header`);
      assert.ok(m.payload.subarray(16).equals(r.device.regs.subarray(off, off + 8)), `reply ${i} carries its own data`);
    }
    assert.equal(r.session.counters.regionReads[0], n);
  });
});
