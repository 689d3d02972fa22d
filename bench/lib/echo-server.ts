// The floor of bench:vfio-user's MMIO figure: a bare Unix-socket ping-pong server in its own process, built on the
// same descriptor primitives as the device front (non-blocking socket, recvmsg/sendmsg, one poll watcher) but with
// no protocol: every 32-byte request (a REGION_READ's size) is answered with 36 bytes (the reply's size) carrying
// the request's msg_id and command. Prints "ready" once it listens at argv[2]; exits when its stdin closes.
import { loadFdOps, WATCH_READABLE } from '../../native/fd-ops.js';

const ops = loadFdOps();
const listenFd = ops.unixListen(process.argv[2]!, 4);
const rbuf = Buffer.alloc(64 << 10);
const reply = Buffer.alloc(36);
const NO_FDS: number[] = [];
const EMPTY = Buffer.alloc(0);
reply.writeUInt32LE(36, 4);
reply.writeUInt32LE(1, 8); // REPLY

const lw = ops.watch(listenFd, () => {
  const fd = ops.accept(listenFd);
  if (fd === null) return;
  let pending = EMPTY;
  const w = ops.watch(fd, (flags) => {
    if ((flags & WATCH_READABLE) === 0) return;
    for (;;) {
      const r = ops.recvMsg(fd, rbuf, 1);
      if (r === null) return;
      if (r.bytes === 0) {
        w.close();
        ops.closeFd(fd);
        return;
      }
      // Whole requests are answered from the receive buffer itself (no copy, nothing allocated); only a partial
      // one is kept for the next read.
      const data = pending.length === 0 ? rbuf : Buffer.concat([pending, rbuf.subarray(0, r.bytes)]);
      const end = pending.length === 0 ? r.bytes : data.length;
      let at = 0;
      for (; end - at >= 32; at += 32) {
        reply.writeUInt16LE(data.readUInt16LE(at), 0);
        reply.writeUInt16LE(data.readUInt16LE(at + 2), 2);
        ops.sendMsg(fd, reply, NO_FDS);
      }
      pending = at === end ? EMPTY : Buffer.from(data.subarray(at, end));
    }
  });
  w.start(true, false);
});
lw.start(true, false);
// Started detached (a session of its own, as the device front): it goes when the benchmark does.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
process.stdout.write('ready\n');
