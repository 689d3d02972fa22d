/**
 * Descriptor passing for protocols Node's `net` cannot speak (vfio-user): Unix stream sockets with SCM_RIGHTS,
 * eventfds, mappings of received descriptors and readiness watchers on the event loop. Native only — there is no
 * pure-TypeScript stand-in for sendmsg/recvmsg — so `loadFdOps()` throws a VgpuError that says how to get the
 * addon when it is missing (or when VGPUD_NO_NATIVE=1 forces the fallback for everything else).
 *
 * Every descriptor these functions create is close-on-exec and non-blocking; descriptors received on a socket are
 * close-on-exec too. Errors carry the errno name (`code` of the cause, e.g. EPIPE) so protocol code can map them.
 */
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import { loadAddon, toVgpuError } from './index.js';

export interface RecvResult {
  /** Bytes read; 0 = the peer closed the connection. */
  bytes: number;
  /** Descriptors that came with these bytes (close them when done). */
  fds: number[];
  /** More descriptors arrived than asked for: the extra ones were closed here. */
  fdsTruncated: boolean;
}

export interface PeerCred {
  pid: number;
  uid: number;
  gid: number;
}

export type FdType = 'file' | 'socket' | 'fifo' | 'dir' | 'char' | 'block' | 'link' | 'anon';

/** Readiness flags an FdWatcher callback gets: 1 readable, 2 writable, 4 error. */
export const WATCH_READABLE = 1;
export const WATCH_WRITABLE = 2;
export const WATCH_ERROR = 4;

/** A libuv poll handle on one descriptor. close() before closing the descriptor. */
export interface FdWatcher {
  start(readable: boolean, writable: boolean): void;
  stop(): void;
  ref(): void;
  unref(): void;
  close(): void;
}

/** A shared mapping of part of a received descriptor, read and written through bounded Buffer windows. */
export interface FdMap {
  readonly size: number;
  /** A Buffer over [offset, offset+length) of the mapping (≤ 1 GiB). */
  window(offset: number, length: number): Buffer;
  close(): void;
}

export interface FdOps {
  unixListen(path: string, backlog?: number): number;
  unixConnect(path: string): number;
  /** One pending connection, or null when none waits. */
  accept(listenFd: number): number | null;
  socketPair(): [number, number];
  /** Bytes written, or -1 when the socket buffer is full. Descriptors go with the first byte. */
  sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number;
  /** null when nothing is there yet. */
  recvMsg(fd: number, buf: Uint8Array, maxFds: number): RecvResult | null;
  peerCred(fd: number): PeerCred;
  shutdown(fd: number): void;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  eventfd(initial?: number): number;
  /** false when the counter is saturated (the reader already has events pending). */
  eventfdWrite(fd: number, value?: number): boolean;
  /** The counter (reset to 0), or null when it was 0. */
  eventfdRead(fd: number): bigint | null;
  openFile(path: string, writable: boolean): number;
  fdStat(fd: number): { type: FdType; size: number; mode: number };
  /** /proc/self/fd/N target: "anon_inode:[eventfd]" for an eventfd. */
  fdTarget(fd: number): string;
  pidfdOpen(pid: number): number;
  mapFd(fd: number, offset: number, size: number, writable: boolean): FdMap;
  watch(fd: number, onReady: (flags: number) => void): FdWatcher;
}

interface RawFdAddon {
  unixListen(path: string, backlog?: number): number;
  unixConnect(path: string): number;
  accept(fd: number): number | null;
  socketPair(): [number, number];
  sendMsg(fd: number, data: Uint8Array, fds?: readonly number[]): number;
  recvMsg(fd: number, buf: Uint8Array, maxFds: number): RecvResult | null;
  peerCred(fd: number): PeerCred;
  shutdown(fd: number): void;
  closeFd(fd: number): void;
  dupFd(fd: number): number;
  eventfd(initial?: number): number;
  eventfdWrite(fd: number, value?: number): boolean;
  eventfdRead(fd: number): bigint | null;
  openFile(path: string, writable: boolean): number;
  fdStat(fd: number): { type: FdType; size: number; mode: number };
  fdTarget(fd: number): string;
  pidfdOpen(pid: number): number;
  FdMap: new (fd: number, offset: number, size: number, writable: boolean) => FdMap;
  FdWatcher: new (fd: number, cb: (flags: number) => void) => FdWatcher;
}

/** errno names the addon's messages end with ("sendMsg: Broken pipe" carries errno 32 in `.errno`). */
function wrap<A extends unknown[], R>(fn: (...a: A) => R): (...a: A) => R {
  return (...a: A): R => {
    try {
      return fn(...a);
    } catch (e) {
      throw toVgpuError(e);
    }
  };
}

let cached: FdOps | undefined;

/** The addon's descriptor operations; throws VGPU_ENODEV (with the fix in the hint) when they are unavailable. */
export function loadFdOps(): FdOps {
  if (cached !== undefined) return cached;
  if (process.env.VGPUD_NO_NATIVE === '1') {
    throw new VgpuError(ErrorCode.UnsupportedDevice, 'descriptor passing (vfio-user) needs the native addon, and VGPUD_NO_NATIVE=1 disables it', {
      hint: 'unset VGPUD_NO_NATIVE: sendmsg/recvmsg with SCM_RIGHTS has no pure-TypeScript stand-in',
    });
  }
  const addon = loadAddon();
  if (addon instanceof Error || typeof (addon as unknown as Partial<RawFdAddon>).sendMsg !== 'function') {
    throw new VgpuError(ErrorCode.UnsupportedDevice, 'descriptor passing (vfio-user) needs the native addon, which is missing or too old', {
      hint: 'run `npm run build:native` (needs a C++ compiler and the Node headers)',
      ...(addon instanceof Error ? { cause: addon } : {}),
    });
  }
  const raw = addon as unknown as RawFdAddon;
  cached = {
    unixListen: wrap(raw.unixListen),
    unixConnect: wrap(raw.unixConnect),
    accept: wrap(raw.accept),
    socketPair: wrap(raw.socketPair),
    sendMsg: wrap(raw.sendMsg),
    recvMsg: wrap(raw.recvMsg),
    peerCred: wrap(raw.peerCred),
    shutdown: wrap(raw.shutdown),
    closeFd: wrap(raw.closeFd),
    dupFd: wrap(raw.dupFd),
    eventfd: wrap(raw.eventfd),
    eventfdWrite: wrap(raw.eventfdWrite),
    eventfdRead: wrap(raw.eventfdRead),
    openFile: wrap(raw.openFile),
    fdStat: wrap(raw.fdStat),
    fdTarget: wrap(raw.fdTarget),
    pidfdOpen: wrap(raw.pidfdOpen),
    mapFd: wrap((fd: number, offset: number, size: number, writable: boolean) => new raw.FdMap(fd, offset, size, writable)),
    watch: wrap((fd: number, onReady: (flags: number) => void) => new raw.FdWatcher(fd, onReady)),
  };
  return cached;
}

/** True when the addon can pass descriptors (tests skip themselves otherwise). */
export function fdOpsAvailable(): boolean {
  try {
    loadFdOps();
    return true;
  } catch {
    return false;
  }
}

/** The errno name of an addon error (ENOENT, EPIPE, …), or undefined. */
export function errnoOf(e: unknown): number | undefined {
  const cause = (e as { cause?: { errno?: unknown } } | undefined)?.cause ?? e;
  const n = (cause as { errno?: unknown } | undefined)?.errno;
  return typeof n === 'number' ? n : undefined;
}
