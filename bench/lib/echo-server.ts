// The floor of bench:vfio-user's MMIO figure: a bare Unix-socket ping-pong server in its own process, built on the
// same descriptor primitives as the device front (non-blocking socket, recvmsg/sendmsg, one poll watcher) but with
// no protocol: every 32-byte request (a REGION_READ's size) is answered with 36 bytes (the reply's size) carrying
// the request's msg_id and command. Prints "ready" once it listens at argv[2].
import { loadFdOps, WATCH_READABLE } from '../../native/fd-ops.js';

const ops = loadFdOps();
const listenFd = ops.unixListen(process.argv[2]!, 4);
const rbuf = Buffer.alloc(64 << 10);
const reply = Buffer.alloc(36);
reply.writeUInt32LE(36, 4);
reply.writeUInt32LE(1, 8); // REPLY

const lw = ops.watch(listenFd, () => {
  const fd = ops.accept(listenFd);
  if (fd === null) return;
  let pending = Buffer.alloc(0);
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
      pending = pending.length === 0 ? Buffer.from(rbuf.subarray(0, r.bytes)) : Buffer.concat([pending, rbuf.subarray(0, r.bytes)]);
      while (pending.length >= 32) {
        reply.writeUInt16LE(pending.readUInt16LE(0), 0);
        reply.writeUInt16LE(pending.readUInt16LE(2), 2);
        ops.sendMsg(fd, reply, []);
        pending = pending.subarray(32);
      }
    }
  });
  w.start(true, false);
});
lw.start(true, false);
process.stdout.write('ready\n');
