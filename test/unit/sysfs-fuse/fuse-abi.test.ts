// The FUSE structs as laid out here must have the sizes and offsets of include/uapi/linux/fuse.h (the kernel rejects
// a reply of the wrong size, or reads garbage): checked against the numbers the header implies.
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { Attr, AttrOut, EntryOut, InHeader, InitOut, Kstatfs, OpenOut, OutHeader, ReadIn, ReleaseIn, WriteIn, WriteOut, direntSize, writeDirent } from '../../../plugins/sysfs-fuse/fuse-abi.js';

it('struct sizes and key offsets match the kernel header', () => {
  assert.deepEqual([InHeader.size, OutHeader.size, Attr.size, EntryOut.size, AttrOut.size, InitOut.size, OpenOut.size, ReadIn.size, WriteIn.size, WriteOut.size, ReleaseIn.size, Kstatfs.size],
    [40, 16, 88, 128, 104, 64, 16, 40, 40, 8, 24, 80]);
  assert.deepEqual([Attr.offsetOf('mode'), EntryOut.offsetOf('attr'), AttrOut.offsetOf('attr'), InitOut.offsetOf('maxWrite'), InHeader.offsetOf('uid')], [60, 40, 16, 20, 24]);
});

it('a dirent is its 24-byte head and the name, padded to 8 bytes, with the next entry\'s cookie', () => {
  const out = Buffer.alloc(64, 0xee);
  const end = writeDirent(out, 0, { ino: 7n, off: 3n, type: 4, name: Buffer.from('nvidia') });
  assert.equal(end, direntSize(6));
  assert.equal(end, 32);
  assert.deepEqual([out.readBigUInt64LE(0), out.readBigUInt64LE(8), out.readUInt32LE(16), out.readUInt32LE(20), out.subarray(24, 30).toString(), out.subarray(30, 32).toString('hex')],
    [7n, 3n, 6, 4, 'nvidia', '0000']);
});
