/**
 * The reader thread of a FUSE session: blocking read(2)s on /dev/fuse, each request handed to the main thread as
 * its own buffer. A thread of its own because a read blocks until the kernel has a request (idle costs nothing: the
 * thread sleeps in the kernel), and the event loop must never block. Replies are written by the main thread (a
 * /dev/fuse write completes at once). It ends when the read answers ENODEV (the filesystem was unmounted or its
 * connection aborted).
 */
import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { fd, bufferSize } = workerData as { fd: number; bufferSize: number };
const port = parentPort!;

for (;;) {
  // Its own ArrayBuffer (never the shared pool), so it can be transferred rather than copied.
  const buf = Buffer.from(new ArrayBuffer(bufferSize));
  let n: number;
  try {
    n = readSync(fd, buf, 0, buf.length, null);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // EINTR: a signal; ENOENT: the request was interrupted before we read it; EAGAIN: nothing yet.
    if (code === 'EINTR' || code === 'ENOENT' || code === 'EAGAIN') continue;
    port.postMessage({ op: code === 'ENODEV' ? 'closed' : 'error', message: String((e as Error).message), code });
    break;
  }
  if (n === 0) {
    port.postMessage({ op: 'closed' });
    break;
  }
  const data = new Uint8Array(buf.buffer, buf.byteOffset, n);
  port.postMessage({ op: 'request', data }, [buf.buffer]);
}
