/**
 * The Linux FUSE kernel protocol, as far as a read-mostly, sysfs-like tree needs it: opcodes, the fixed structs
 * (laid out by core/firmware-abi/struct-layout.ts with the C alignment the header relies on), flags and the
 * directory entry record. Facts from torvalds/linux include/uapi/linux/fuse.h (docs/reference/fuse-protocol.md);
 * vgpud answers with protocol 7.31, whose structs are the ones below, whatever newer minor the kernel offers.
 */
import { StructLayout } from '../../core/firmware-abi/struct-layout.js';

export const FUSE_KERNEL_VERSION = 7;
/** The minor vgpud speaks (the kernel adapts to the lower of its own and ours). */
export const FUSE_OUR_MINOR = 31;
export const FUSE_ROOT_ID = 1n;
/** The kernel refuses a read buffer below this (FUSE_MIN_READ_BUFFER). */
export const FUSE_MIN_READ_BUFFER = 8192;

export const Op = {
  LOOKUP: 1, FORGET: 2, GETATTR: 3, SETATTR: 4, READLINK: 5, SYMLINK: 6, MKNOD: 8, MKDIR: 9, UNLINK: 10, RMDIR: 11,
  RENAME: 12, LINK: 13, OPEN: 14, READ: 15, WRITE: 16, STATFS: 17, RELEASE: 18, FSYNC: 20, SETXATTR: 21, GETXATTR: 22,
  LISTXATTR: 23, REMOVEXATTR: 24, FLUSH: 25, INIT: 26, OPENDIR: 27, READDIR: 28, RELEASEDIR: 29, FSYNCDIR: 30,
  ACCESS: 34, CREATE: 35, INTERRUPT: 36, DESTROY: 38, BATCH_FORGET: 42, READDIRPLUS: 44, RENAME2: 45, LSEEK: 46,
  TMPFILE: 51,
} as const;

/** INIT flags (fuse_init_in/out.flags). */
export const InitFlag = {
  ASYNC_READ: 1 << 0,
  /** The filesystem handles O_TRUNC in OPEN: no separate SETATTR(size 0) for `echo > file`. */
  ATOMIC_O_TRUNC: 1 << 3,
  BIG_WRITES: 1 << 5,
} as const;

/** fuse_open_out.open_flags: every read and write goes to the server (sysfs content is generated per read). */
export const FOPEN_DIRECT_IO = 1 << 0;

/** File types in st_mode and dirent types. */
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const DT_DIR = 4;
export const DT_REG = 8;
export const DT_LNK = 10;

export const InHeader = new StructLayout('fuse_in_header', [
  { name: 'len', type: 'u32' }, { name: 'opcode', type: 'u32' }, { name: 'unique', type: 'u64' }, { name: 'nodeid', type: 'u64' },
  { name: 'uid', type: 'u32' }, { name: 'gid', type: 'u32' }, { name: 'pid', type: 'u32' }, { name: 'totalExtlen', type: 'u16' },
  { name: 'padding', type: 'u16' },
]);
/** fuse_out_header: `error` is an int32 (0 or −errno); written here as its u32 two's complement. */
export const OutHeader = new StructLayout('fuse_out_header', [
  { name: 'len', type: 'u32' }, { name: 'error', type: 'u32' }, { name: 'unique', type: 'u64' },
]);
export const InitIn = new StructLayout('fuse_init_in', [
  { name: 'major', type: 'u32' }, { name: 'minor', type: 'u32' }, { name: 'maxReadahead', type: 'u32' }, { name: 'flags', type: 'u32' },
]);
export const InitOut = new StructLayout('fuse_init_out', [
  { name: 'major', type: 'u32' }, { name: 'minor', type: 'u32' }, { name: 'maxReadahead', type: 'u32' }, { name: 'flags', type: 'u32' },
  { name: 'maxBackground', type: 'u16' }, { name: 'congestionThreshold', type: 'u16' }, { name: 'maxWrite', type: 'u32' },
  { name: 'timeGran', type: 'u32' }, { name: 'maxPages', type: 'u16' }, { name: 'mapAlignment', type: 'u16' }, { name: 'flags2', type: 'u32' },
  { name: 'unused', type: 'u32', count: 7 },
]);
export const Attr = new StructLayout('fuse_attr', [
  { name: 'ino', type: 'u64' }, { name: 'size', type: 'u64' }, { name: 'blocks', type: 'u64' }, { name: 'atime', type: 'u64' },
  { name: 'mtime', type: 'u64' }, { name: 'ctime', type: 'u64' }, { name: 'atimensec', type: 'u32' }, { name: 'mtimensec', type: 'u32' },
  { name: 'ctimensec', type: 'u32' }, { name: 'mode', type: 'u32' }, { name: 'nlink', type: 'u32' }, { name: 'uid', type: 'u32' },
  { name: 'gid', type: 'u32' }, { name: 'rdev', type: 'u32' }, { name: 'blksize', type: 'u32' }, { name: 'flags', type: 'u32' },
]);
export const EntryOut = new StructLayout('fuse_entry_out', [
  { name: 'nodeid', type: 'u64' }, { name: 'generation', type: 'u64' }, { name: 'entryValid', type: 'u64' }, { name: 'attrValid', type: 'u64' },
  { name: 'entryValidNsec', type: 'u32' }, { name: 'attrValidNsec', type: 'u32' }, { name: 'attr', type: Attr },
]);
export const AttrOut = new StructLayout('fuse_attr_out', [
  { name: 'attrValid', type: 'u64' }, { name: 'attrValidNsec', type: 'u32' }, { name: 'dummy', type: 'u32' }, { name: 'attr', type: Attr },
]);
export const OpenIn = new StructLayout('fuse_open_in', [{ name: 'flags', type: 'u32' }, { name: 'openFlags', type: 'u32' }]);
export const OpenOut = new StructLayout('fuse_open_out', [{ name: 'fh', type: 'u64' }, { name: 'openFlags', type: 'u32' }, { name: 'padding', type: 'u32' }]);
export const ReadIn = new StructLayout('fuse_read_in', [
  { name: 'fh', type: 'u64' }, { name: 'offset', type: 'u64' }, { name: 'size', type: 'u32' }, { name: 'readFlags', type: 'u32' },
  { name: 'lockOwner', type: 'u64' }, { name: 'flags', type: 'u32' }, { name: 'padding', type: 'u32' },
]);
export const WriteIn = new StructLayout('fuse_write_in', [
  { name: 'fh', type: 'u64' }, { name: 'offset', type: 'u64' }, { name: 'size', type: 'u32' }, { name: 'writeFlags', type: 'u32' },
  { name: 'lockOwner', type: 'u64' }, { name: 'flags', type: 'u32' }, { name: 'padding', type: 'u32' },
]);
export const WriteOut = new StructLayout('fuse_write_out', [{ name: 'size', type: 'u32' }, { name: 'padding', type: 'u32' }]);
export const ReleaseIn = new StructLayout('fuse_release_in', [
  { name: 'fh', type: 'u64' }, { name: 'flags', type: 'u32' }, { name: 'releaseFlags', type: 'u32' }, { name: 'lockOwner', type: 'u64' },
]);
export const Kstatfs = new StructLayout('fuse_kstatfs', [
  { name: 'blocks', type: 'u64' }, { name: 'bfree', type: 'u64' }, { name: 'bavail', type: 'u64' }, { name: 'files', type: 'u64' },
  { name: 'ffree', type: 'u64' }, { name: 'bsize', type: 'u32' }, { name: 'namelen', type: 'u32' }, { name: 'frsize', type: 'u32' },
  { name: 'padding', type: 'u32' }, { name: 'spare', type: 'u32', count: 6 },
]);

/** Bytes of a fuse_dirent with a name of `nameLen` bytes: 24-byte head, the name, padded to 8 (FUSE_DIRENT_SIZE). */
export function direntSize(nameLen: number): number {
  return (24 + nameLen + 7) & ~7;
}

/** Append one fuse_dirent to `out` at `pos`; returns the new position. `off` is the cookie of the NEXT entry. */
export function writeDirent(out: Buffer, pos: number, e: { ino: bigint; off: bigint; type: number; name: Buffer }): number {
  out.writeBigUInt64LE(e.ino, pos);
  out.writeBigUInt64LE(e.off, pos + 8);
  out.writeUInt32LE(e.name.length, pos + 16);
  out.writeUInt32LE(e.type, pos + 20);
  e.name.copy(out, pos + 24);
  const end = pos + direntSize(e.name.length);
  out.fill(0, pos + 24 + e.name.length, end);
  return end;
}
