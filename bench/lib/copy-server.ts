// The floor of bench:vfio-user's migration figure: a bare copier in its own process, built on the same descriptor
// primitives as the device front (non-blocking Unix socket, recvmsg/sendmsg in 64 KiB reads, one poll watcher) and
// answering the same messages the VMM stand-in sends for a migration — MIG_DATA_READ (17) and MIG_DATA_WRITE (18),
// vfio-user's 16-byte header, the same sizes — with no protocol, no stream format, no dirty tracking: a read returns
// the next `size` bytes of the source FB slice (its own mapping of the device's FB file), a write puts its bytes at
// the next offset of the destination slice. So the floor moves the same bytes between the same memory through the
// same kind of socket, two hops per chunk, as the subject does.
// argv: <socket> <FB file> <source slice offset> <destination slice offset> <slice size>. Prints "ready".
import { loadFdOps, WATCH_READABLE, WATCH_WRITABLE } from '../../native/fd-ops.js';

const [sock, file, srcOff, dstOff, size] = process.argv.slice(2) as [string, string, string, string, string];
const ops = loadFdOps();
const fbFd = ops.openFile(file, true);
const src = ops.mapFd(fbFd, Number(srcOff), Number(size), false);
const dst = ops.mapFd(fbFd, Number(dstOff), Number(size), true);
ops.closeFd(fbFd);
const listenFd = ops.unixListen(sock, 4);
const rbuf = Buffer.allocUnsafe(64 << 10);

/** `m`'s [at, at+n), cut at its end (a chunk is ≤ max_data_xfer_size, far below a window's 1 GiB). */
function window(m: typeof src, at: number, n: number): Buffer {
  return m.window(at, Math.max(0, Math.min(n, m.size - at)));
}

const lw = ops.watch(listenFd, () => {
  const fd = ops.accept(listenFd);
  if (fd === null) return;
  const head = Buffer.alloc(16);
  let headFill = 0;
  let body: Buffer | null = null;
  let bodyFill = 0;
  let readAt = 0;
  let writeAt = 0;
  const out: Buffer[] = [];
  const send = (b: Buffer): void => {
    out.push(b);
    flush();
  };
  const flush = (): void => {
    while (out.length > 0) {
      const n = ops.sendMsg(fd, out[0]!, []);
      if (n < 0) { w.start(true, true); return; }
      if (n < out[0]!.length) out[0] = out[0]!.subarray(n);
      else out.shift();
    }
    w.start(true, false);
  };
  const handle = (h: Buffer, p: Buffer): void => {
    const reply = Buffer.alloc(16);
    reply.writeUInt16LE(h.readUInt16LE(0), 0);
    reply.writeUInt16LE(h.readUInt16LE(2), 2);
    reply.writeUInt32LE(1, 8); // REPLY
    if (h.readUInt16LE(2) === 17) {
      const data = window(src, readAt, p.readUInt32LE(4));
      readAt += data.length;
      const r = Buffer.allocUnsafe(24 + data.length);
      reply.copy(r, 0);
      r.writeUInt32LE(24 + data.length, 4);
      r.writeUInt32LE(8 + data.length, 16);
      r.writeUInt32LE(data.length, 20);
      data.copy(r, 24);
      send(r);
    } else {
      const n = p.readUInt32LE(4);
      p.copy(window(dst, writeAt, n), 0, 8, 8 + n);
      writeAt += n;
      reply.writeUInt32LE(16, 4);
      send(reply);
    }
  };
  const w = ops.watch(fd, (flags) => {
    if ((flags & WATCH_WRITABLE) !== 0) flush();
    if ((flags & WATCH_READABLE) === 0) return;
    for (;;) {
      const r = ops.recvMsg(fd, rbuf, 1);
      if (r === null) return;
      if (r.bytes === 0) { w.close(); ops.closeFd(fd); return; }
      let pos = 0;
      while (pos < r.bytes) {
        if (body === null) {
          const n = Math.min(16 - headFill, r.bytes - pos);
          rbuf.copy(head, headFill, pos, pos + n);
          headFill += n;
          pos += n;
          if (headFill < 16) continue;
          headFill = 0;
          body = Buffer.allocUnsafe(head.readUInt32LE(4) - 16);
          bodyFill = 0;
        }
        const n = Math.min(body.length - bodyFill, r.bytes - pos);
        rbuf.copy(body, bodyFill, pos, pos + n);
        bodyFill += n;
        pos += n;
        if (bodyFill === body.length) {
          const p = body;
          body = null;
          handle(head, p);
        }
      }
    }
  });
  w.start(true, false);
});
lw.start(true, false);
process.stdout.write('ready\n');
