// Descriptor passing (native/fd-ops.ts): a Unix socket carries bytes and SCM_RIGHTS descriptors both ways, the
// event loop learns readiness from a libuv poll handle (no timers), eventfds count, a received file can be mapped,
// and nothing leaks: the process's descriptor count is the same before and after every case — including the
// case where a peer sends more descriptors than the receiver asked for.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fdOpsAvailable, loadFdOps, WATCH_READABLE, type FdOps } from '../../native/fd-ops.js';
import { isVgpuError } from '../../core/contracts/exceptions.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';

/** The process's open descriptors, each as `fd -> what it refers to` (socket:[…], anon_inode:[eventfd], a path). */
function openFds(): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out.add(`${fd} -> ${readlinkSync(`/proc/self/fd/${fd}`)}`);
    } catch {
      // closed between the listing and the readlink (the directory's own descriptor, among others)
    }
  }
  return out;
}

/**
 * Nothing the case opened is still open: every descriptor open now was open before, to the same object. A plain
 * count is not enough and not robust: the runtime may close one of its own descriptors meanwhile (a CI run saw the
 * count drop by one under load), which a count would call a mismatch and which could also hide a leak of ours.
 */
function assertNoLeak(before: Set<string>, message?: string): void {
  const leaked = [...openFds()].filter((d) => !before.has(d) && !d.includes('/proc/'));
  assert.deepEqual(leaked, [], message);
}

/** Resolve once `fd` is readable, through an FdWatcher (the event loop's own poll). */
function readable(ops: FdOps, fd: number): Promise<void> {
  return new Promise((resolve) => {
    const w = ops.watch(fd, (flags) => {
      if ((flags & WATCH_READABLE) === 0) return;
      w.close();
      resolve();
    });
    w.start(true, false);
  });
}

describe('fd passing over a Unix socket', { skip }, () => {
  it('carries bytes and descriptors, and the received eventfd is the same kernel object', async () => {
    const ops = loadFdOps();
    const before = openFds();
    const [a, b] = ops.socketPair();
    const efd = ops.eventfd();
    assert.equal(ops.sendMsg(a, Buffer.from('hello'), [efd]), 5);
    await readable(ops, b);
    const buf = Buffer.alloc(64);
    const r = ops.recvMsg(b, buf, 4)!;
    assert.equal(r.bytes, 5);
    assert.equal(buf.subarray(0, 5).toString(), 'hello');
    assert.equal(r.fds.length, 1);
    assert.equal(r.fdsTruncated, false);
    assert.match(ops.fdTarget(r.fds[0]!), /eventfd/);
    // Writing the received copy signals the original.
    assert.equal(ops.eventfdWrite(r.fds[0]!, 3), true);
    assert.equal(ops.eventfdRead(efd), 3n);
    assert.equal(ops.eventfdRead(efd), null, 'a read resets the counter');
    for (const fd of [a, b, efd, ...r.fds]) ops.closeFd(fd);
    assertNoLeak(before);
  });

  it('closes descriptors beyond what the receiver asked for, and says so', async () => {
    const ops = loadFdOps();
    const before = openFds();
    const [a, b] = ops.socketPair();
    const sent = [ops.eventfd(), ops.eventfd(), ops.eventfd()];
    ops.sendMsg(a, Buffer.from([1]), sent);
    await readable(ops, b);
    const r = ops.recvMsg(b, Buffer.alloc(8), 1)!;
    assert.equal(r.fds.length, 1);
    assert.equal(r.fdsTruncated, true);
    for (const fd of [a, b, ...sent, ...r.fds]) ops.closeFd(fd);
    assertNoLeak(before, 'the two extra descriptors were closed by recvMsg');
  });

  it('reports an empty socket as null and a closed peer as 0 bytes', async () => {
    const ops = loadFdOps();
    const [a, b] = ops.socketPair();
    assert.equal(ops.recvMsg(b, Buffer.alloc(8), 0), null);
    ops.closeFd(a);
    await readable(ops, b);
    assert.equal(ops.recvMsg(b, Buffer.alloc(8), 0)!.bytes, 0);
    ops.closeFd(b);
  });

  it('listens and accepts on a path; the peer credentials name the connecting process', async () => {
    const ops = loadFdOps();
    const dir = mkdtempSync(join(tmpdir(), 'vgpud-fd-'));
    const path = join(dir, 's.sock');
    const before = openFds();
    const l = ops.unixListen(path);
    assert.equal(ops.accept(l), null, 'nothing pending yet');
    const c = ops.unixConnect(path);
    await readable(ops, l);
    const s = ops.accept(l)!;
    assert.equal(ops.peerCred(s).pid, process.pid);
    assert.equal(ops.peerCred(c).pid, process.pid);
    for (const fd of [c, s, l]) ops.closeFd(fd);
    assertNoLeak(before);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a connect to a path nobody listens on with a typed error', () => {
    const ops = loadFdOps();
    assert.throws(() => ops.unixConnect('/nonexistent/vgpud-test.sock'), (e: unknown) => isVgpuError(e));
  });

  it('maps a received file and writes through the mapping', async () => {
    const ops = loadFdOps();
    const dir = mkdtempSync(join(tmpdir(), 'vgpud-fd-'));
    const file = join(dir, 'mem');
    writeFileSync(file, Buffer.alloc(3 * 4096));
    const before = openFds();
    const fd = ops.openFile(file, true);
    assert.deepEqual(ops.fdStat(fd).type, 'file');
    const m = ops.mapFd(fd, 4096 + 16, 100, true);
    ops.closeFd(fd); // mmap keeps its own reference to the file
    m.window(0, 4).writeUInt32LE(0xdeadbeef, 0);
    m.close();
    assertNoLeak(before, 'closing the map released its descriptor');
    const check = ops.openFile(file, false);
    const r = ops.mapFd(check, 4096, 32, false);
    assert.equal(r.window(16, 4).readUInt32LE(0), 0xdeadbeef, 'an unaligned offset maps to the right bytes');
    r.close();
    ops.closeFd(check);
    rmSync(dir, { recursive: true, force: true });
  });

  it('notices a process exit through a pidfd', async () => {
    const ops = loadFdOps();
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 1e6)'], { stdio: 'ignore' });
    const pfd = ops.pidfdOpen(child.pid!);
    const exited = readable(ops, pfd);
    child.kill('SIGKILL');
    await exited;
    ops.closeFd(pfd);
  });
});
