/**
 * A FUSE server session over a FuseTree: requests come from the reader thread (fuse-read-worker.ts), are decoded
 * (fuse-abi.ts), answered by the tree and replied on /dev/fuse. The protocol subset is what a sysfs-like tree needs
 * (docs/reference/fuse-protocol.md), with sysfs's answers where the kernel's sysfs has one:
 *
 * - inodes are stable per path for the session (the tree is small; FORGET needs no bookkeeping then);
 * - entry and attribute timeouts are 0: VFs come and go with sriov_numvfs, so every lookup asks again;
 * - files are opened with FOPEN_DIRECT_IO: every read(2) reaches the tree, nothing is cached by the kernel;
 * - a read at offset 0 generates the content anew and keeps it with the open file; a read further on is served from
 *   what that open file generated, as seq_file does for a sequential reader (`cat` reads twice: the text, then EOF);
 * - opening a read-only attribute for writing is EACCES (kernfs refuses root too); writes are stores: the tree gets
 *   each write(2)'s bytes (max_write 4096, sysfs's PAGE_SIZE), and its errno is what the writer's write(2) returns;
 * - O_TRUNC is accepted and ignored (FUSE_ATOMIC_O_TRUNC), as kernfs ignores truncation;
 * - creating, removing and renaming are refused with the errnos sysfs gives (EACCES, EPERM).
 */
import { writeSync } from 'node:fs';
import type { Worker } from 'node:worker_threads';
import type { Logger } from '../../core/contracts/logger.js';
import { ERRNO_NUMBER } from '../../core/manager/vf-abi-error.js';
import { spawnTsWorker } from '../../hal/sim/gsp/spawn-ts-worker.js';
import {
  AttrOut, DT_DIR, DT_LNK, DT_REG, EntryOut, FOPEN_DIRECT_IO, FUSE_KERNEL_VERSION, FUSE_OUR_MINOR, InHeader, InitFlag, InitIn,
  InitOut, Kstatfs, Op, OpenIn, OpenOut, OutHeader, ReadIn, ReleaseIn, S_IFDIR, S_IFLNK, S_IFREG, WriteIn, WriteOut, direntSize, writeDirent,
} from './fuse-abi.js';
import { FuseError, type FuseTree, type NodeStat } from './fuse-tree.js';

/** Largest write the kernel sends in one request: sysfs's PAGE_SIZE, so a longer write(2) arrives in such pieces. */
export const MAX_WRITE = 4096;
const READ_BUFFER = 64 * 1024 + 4096;
const E = { ...ERRNO_NUMBER, EISDIR: 21, ENOTDIR: 20, ENOSYS: 38 };
const O_ACCMODE = 3;

const WORKER = new URL(`./fuse-read-worker${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url);

export interface FuseSessionOptions {
  fd: number;
  tree: FuseTree;
  logger: Logger;
  /** Called once the reader ended (unmounted, aborted) or failed. */
  onClosed?: (why: string) => void;
}

interface OpenFile {
  path: string;
  content?: Buffer;
}

export class FuseSession {
  private worker: Worker | undefined;
  private readonly ids = new Map<string, bigint>([['', 1n]]);
  private readonly paths = new Map<bigint, string>([[1n, '']]);
  private nextNode = 2n;
  private readonly files = new Map<bigint, OpenFile>();
  private nextFh = 1n;
  private readonly started = Math.floor(Date.now() / 1000);
  private closed = false;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;
  /** Requests answered (tests, logs). */
  served = 0;

  constructor(private readonly o: FuseSessionOptions) {
    this.done = new Promise((r) => { this.resolveDone = r; });
  }

  start(): void {
    const w = spawnTsWorker(WORKER, { workerData: { fd: this.o.fd, bufferSize: READ_BUFFER } });
    // A reader blocked in read(2) never keeps the process alive (a lazily unmounted, unabortable mount).
    w.unref();
    this.worker = w;
    w.on('message', (m: { op: string; data?: Uint8Array; message?: string }) => {
      if (m.op === 'request') void this.handle(Buffer.from(m.data!.buffer, m.data!.byteOffset, m.data!.byteLength));
      else this.finish(m.op === 'closed' ? 'unmounted' : `reader failed: ${m.message ?? m.op}`);
    });
    w.on('error', (e) => this.finish(`reader failed: ${e.message}`));
    w.on('exit', () => this.finish('reader ended'));
  }

  /** Resolves once the reader thread ended. */
  closedPromise(): Promise<void> {
    return this.done;
  }

  private finish(why: string): void {
    if (this.closed) return;
    this.closed = true;
    this.o.logger.info('FUSE session ended', { why, served: this.served });
    this.o.onClosed?.(why);
    this.resolveDone();
  }

  // ---- dispatch ----

  private async handle(msg: Buffer): Promise<void> {
    const h = InHeader.decode(msg);
    const unique = h.unique as bigint;
    const body = msg.subarray(InHeader.size, h.len as number);
    const nodeid = h.nodeid as bigint;
    try {
      const reply = await this.dispatch(h.opcode as number, nodeid, body);
      if (reply !== null) this.reply(unique, 0, reply);
    } catch (e) {
      const errno = e instanceof FuseError ? e.errno : E.EIO;
      if (!(e instanceof FuseError)) this.o.logger.warn('FUSE request failed', { opcode: h.opcode, path: this.paths.get(nodeid), error: e });
      this.reply(unique, errno);
    }
    this.served++;
  }

  /** The reply payload, or null for requests that get none (FORGET, INTERRUPT). */
  private async dispatch(op: number, nodeid: bigint, body: Buffer): Promise<Buffer | null> {
    switch (op) {
      case Op.INIT: return this.init(body);
      case Op.LOOKUP: return this.lookup(nodeid, cString(body));
      case Op.FORGET: case Op.BATCH_FORGET: case Op.INTERRUPT: return null;
      case Op.GETATTR: case Op.SETATTR: return this.attrOut(this.pathOf(nodeid));
      case Op.READLINK: {
        const t = this.o.tree.readlink(this.pathOf(nodeid));
        if (t === undefined) throw new FuseError(E.EINVAL, 'not a link');
        return Buffer.from(t);
      }
      case Op.OPEN: return this.open(nodeid, body);
      case Op.OPENDIR: {
        if (this.stat(this.pathOf(nodeid)).kind !== 'dir') throw new FuseError(E.ENOTDIR, 'not a directory');
        return Buffer.from(OpenOut.encode({ fh: 0n, openFlags: 0 }));
      }
      case Op.READ: return this.read(body);
      case Op.WRITE: return this.write(body);
      case Op.READDIR: return this.readdir(nodeid, body);
      case Op.RELEASE: {
        this.files.delete(ReleaseIn.decode(body).fh as bigint);
        return Buffer.alloc(0);
      }
      case Op.RELEASEDIR: case Op.FLUSH: case Op.ACCESS: case Op.DESTROY: return Buffer.alloc(0);
      case Op.STATFS: return Buffer.from(Kstatfs.encode({ bsize: 4096, frsize: 4096, namelen: 255 }));
      // sysfs directories have no create/mknod (the VFS answers EACCES) and refuse mkdir, unlink, rename… (EPERM).
      case Op.CREATE: case Op.MKNOD: case Op.TMPFILE: throw new FuseError(E.EACCES, 'sysfs files cannot be created');
      case Op.MKDIR: case Op.UNLINK: case Op.RMDIR: case Op.RENAME: case Op.RENAME2: case Op.LINK: case Op.SYMLINK:
        throw new FuseError(E.EPERM, 'the sysfs tree cannot be changed');
      default: throw new FuseError(E.ENOSYS, `opcode ${op} is not implemented`);
    }
  }

  private init(body: Buffer): Buffer {
    const i = InitIn.decode(body);
    const minor = Math.min(i.minor as number, FUSE_OUR_MINOR);
    this.o.logger.info('FUSE session up', { kernel: `${i.major as number}.${i.minor as number}`, spoken: `${FUSE_KERNEL_VERSION}.${minor}` });
    return Buffer.from(InitOut.encode({
      major: FUSE_KERNEL_VERSION, minor, maxReadahead: i.maxReadahead as number,
      flags: (i.flags as number) & InitFlag.ATOMIC_O_TRUNC, maxBackground: 16, congestionThreshold: 12, maxWrite: MAX_WRITE, timeGran: 1,
    }));
  }

  private lookup(parent: bigint, name: string): Buffer {
    const dir = this.pathOf(parent);
    const path = dir === '' ? name : `${dir}/${name}`;
    const st = this.o.tree.stat(path);
    if (st === undefined) throw new FuseError(E.ENOENT, `${path} does not exist`);
    const nodeid = this.nodeOf(path);
    return Buffer.from(EntryOut.encode({ nodeid, generation: 0n, entryValid: 0n, attrValid: 0n, attr: this.attr(nodeid, st) }));
  }

  private attrOut(path: string): Buffer {
    return Buffer.from(AttrOut.encode({ attrValid: 0n, attr: this.attr(this.nodeOf(path), this.stat(path)) }));
  }

  private open(nodeid: bigint, body: Buffer): Buffer {
    const path = this.pathOf(nodeid);
    const st = this.stat(path);
    if (st.kind === 'dir') throw new FuseError(E.EISDIR, 'a directory');
    const flags = OpenIn.decode(body).flags as number;
    // kernfs refuses a write open of an attribute without a store, also to root (it checks the mode's write bits).
    if ((flags & O_ACCMODE) !== 0 && (st.perm & 0o222) === 0) throw new FuseError(E.EACCES, `${path} is read-only`);
    const fh = this.nextFh++;
    this.files.set(fh, { path });
    return Buffer.from(OpenOut.encode({ fh, openFlags: FOPEN_DIRECT_IO }));
  }

  private async read(body: Buffer): Promise<Buffer> {
    const r = ReadIn.decode(body);
    const f = this.files.get(r.fh as bigint);
    if (f === undefined) throw new FuseError(E.EIO, 'unknown file handle');
    const offset = Number(r.offset as bigint);
    if (offset === 0 || f.content === undefined) f.content = Buffer.from(await this.o.tree.read(f.path));
    return f.content.subarray(Math.min(offset, f.content.length), Math.min(offset + (r.size as number), f.content.length));
  }

  private async write(body: Buffer): Promise<Buffer> {
    const w = WriteIn.decode(body);
    const f = this.files.get(w.fh as bigint);
    if (f === undefined) throw new FuseError(E.EIO, 'unknown file handle');
    const data = body.subarray(WriteIn.size, WriteIn.size + (w.size as number));
    // sysfs calls no store for an empty write (kernfs_fop_write_iter returns 0).
    const n = data.length === 0 ? 0 : await this.o.tree.write(f.path, Buffer.from(data));
    // The content a later read of this open file shows is generated again.
    f.content = undefined;
    return Buffer.from(WriteOut.encode({ size: n }));
  }

  private readdir(nodeid: bigint, body: Buffer): Buffer {
    const r = ReadIn.decode(body);
    const path = this.pathOf(nodeid);
    const names = this.o.tree.list(path);
    if (names === undefined) throw new FuseError(E.ENOTDIR, 'not a directory');
    const parent = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
    const entries = [
      { name: '.', ino: nodeid, type: DT_DIR },
      { name: '..', ino: this.nodeOf(parent), type: DT_DIR },
      ...names.map((n) => {
        const child = path === '' ? n : `${path}/${n}`;
        const st = this.o.tree.stat(child);
        return { name: n, ino: this.nodeOf(child), type: st?.kind === 'dir' ? DT_DIR : st?.kind === 'link' ? DT_LNK : DT_REG };
      }),
    ];
    const out = Buffer.alloc(r.size as number);
    let pos = 0;
    for (let i = Number(r.offset as bigint); i < entries.length; i++) {
      const e = entries[i]!;
      const name = Buffer.from(e.name);
      if (pos + direntSize(name.length) > out.length) break;
      pos = writeDirent(out, pos, { ino: e.ino, off: BigInt(i + 1), type: e.type, name });
    }
    return out.subarray(0, pos);
  }

  // ---- helpers ----

  private stat(path: string): NodeStat {
    const st = this.o.tree.stat(path);
    if (st === undefined) throw new FuseError(E.ENOENT, `${path} does not exist`);
    return st;
  }

  private attr(nodeid: bigint, st: NodeStat): Record<string, unknown> {
    const type = st.kind === 'dir' ? S_IFDIR : st.kind === 'link' ? S_IFLNK : S_IFREG;
    const t = BigInt(this.started);
    return {
      ino: nodeid, size: BigInt(st.size), blocks: 0n, atime: t, mtime: t, ctime: t, mode: type | st.perm,
      nlink: st.kind === 'dir' ? 2 : 1, uid: 0, gid: 0, blksize: 4096,
    };
  }

  private nodeOf(path: string): bigint {
    let id = this.ids.get(path);
    if (id === undefined) {
      id = this.nextNode++;
      this.ids.set(path, id);
      this.paths.set(id, path);
    }
    return id;
  }

  private pathOf(nodeid: bigint): string {
    const p = this.paths.get(nodeid);
    if (p === undefined) throw new FuseError(E.ENOENT, `unknown node ${nodeid}`);
    return p;
  }

  private reply(unique: bigint, errno: number, payload: Buffer = Buffer.alloc(0)): void {
    const len = OutHeader.size + (errno === 0 ? payload.length : 0);
    const out = Buffer.alloc(len);
    out.set(OutHeader.encode({ len, error: errno === 0 ? 0 : (-errno) >>> 0, unique }), 0);
    if (errno === 0) payload.copy(out, OutHeader.size);
    try {
      writeSync(this.o.fd, out);
    } catch (e) {
      // ENOENT: the request was interrupted and the kernel no longer waits for it; ENODEV: unmounted meanwhile.
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENODEV') this.o.logger.warn('FUSE reply failed', { error: e });
    }
  }

  /**
   * Stop the reader. Once the connection ended (`ended`), its read returns ENODEV and it exits by itself; otherwise
   * it may stay blocked in the kernel, where no terminate reaches it, so it is let go (unref'd) instead of awaited.
   */
  async stop(ended: boolean): Promise<void> {
    if (ended) await this.done;
    else void this.worker?.terminate();
  }
}

function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return b.subarray(0, nul < 0 ? b.length : nul).toString('utf8');
}

