// The guest model's structures against the spec's tables, byte by byte: the header and DMA_MAP written out by hand
// from QEMU docs/interop/vfio-user.rst (offsets and widths), VERSION's JSON with its NUL, SET_IRQS flags from
// vfio.h, and the VERSION reply rules the client enforces. If one of these fails, the client would hide (or invent)
// a server mistake, so they are checked without any server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { defineStruct } from '../../guest-model/wire/struct-layout.js';
import { DmaMap, Header, RegionAccess, RegionInfo } from '../../guest-model/wire/spec-structs.js';
import { decodeVersionReply, encodeVersion } from '../../guest-model/protocol/version.js';
import { encodeIrqSet } from '../../guest-model/protocol/irqs.js';
import { VfioUserProtocolError } from '../../guest-model/wire/errors.js';

const hex = (b: Buffer): string => b.toString('hex');

describe('guest model: structures packed as the spec tables say', () => {
  it('packs the 16-byte header: u16 id, u16 command, u32 size, u32 flags, u32 error, little-endian', () => {
    const b = Header.pack({ msgId: 0x1234, command: 9, size: 32, flags: 0x21, error: 22 });
    assert.equal(hex(b), '34120900' + '20000000' + '21000000' + '16000000');
    assert.deepEqual(Header.unpack(b), { msgId: 0x1234, command: 9, size: 32, flags: 0x21, error: 22 });
  });

  it('packs DMA_MAP as 32 bytes: argsz 0, flags 4, offset 8, address 16, size 24', () => {
    const b = DmaMap.pack({ argsz: 32, flags: 3, offset: 0x1000n, addr: 0x1_0000_0000n, size: 0x20_0000n });
    assert.equal(b.length, 32);
    assert.equal(hex(b), '20000000' + '03000000' + '0010000000000000' + '0000000001000000' + '0000200000000000');
  });

  it('packs REGION_READ (offset u64, region u32, count u32) and region info (argsz, flags, index, cap_offset, size, offset)', () => {
    assert.equal(hex(RegionAccess.pack({ offset: 0x2200n, region: 0, count: 4 })), '0022000000000000' + '00000000' + '04000000');
    assert.equal(RegionInfo.size, 32);
    assert.equal(hex(RegionInfo.pack({ argsz: 32, index: 7 })), '20000000' + '00000000' + '07000000' + '00000000' + '0'.repeat(32));
  });

  it('refuses a table whose fields overlap or run past the structure', () => {
    assert.throws(() => defineStruct('bad', 8, { a: ['u32', 0], b: ['u32', 2] }), /overlaps/);
    assert.throws(() => defineStruct('bad', 8, { a: ['u64', 4] }), /outside/);
  });

  it('encodes VERSION as major, minor, then NUL-terminated JSON {"capabilities": …}, or nothing after the numbers', () => {
    const b = encodeVersion({ major: 0, minor: 1, capabilities: { max_msg_fds: 4 } });
    assert.equal(hex(b.subarray(0, 4)), '00000100');
    assert.equal(b[b.length - 1], 0);
    assert.deepEqual(JSON.parse(b.subarray(4, b.length - 1).toString()), { capabilities: { max_msg_fds: 4 } });
    assert.equal(encodeVersion({ major: 0, minor: 1 }).length, 4);
  });

  it('holds a VERSION reply to the spec: same major, minor not above, only proposed capabilities, NUL-terminated JSON', () => {
    const proposal = { major: 0, minor: 1, capabilities: { max_msg_fds: 16, max_data_xfer_size: 65536 } };
    const reply = (major: number, minor: number, json?: string): Buffer => Buffer.concat([
      Buffer.from([major & 0xff, major >> 8, minor & 0xff, minor >> 8]), json === undefined ? Buffer.alloc(0) : Buffer.from(json),
    ]);
    const ok = decodeVersionReply(reply(0, 1, '{"capabilities":{"max_msg_fds":8}}\0'), proposal);
    assert.equal(ok.toServer.maxMsgFds, 8);
    assert.equal(ok.toServer.maxDataXferSize, 1048576, 'absent: the spec default');
    assert.equal(ok.toClient.maxDataXferSize, 65536, 'what we proposed binds the server');
    assert.equal(decodeVersionReply(reply(0, 0), proposal).toServer.maxMsgFds, 1, 'no JSON: max_msg_fds defaults to 1');
    for (const [bad, why] of [
      [reply(1, 0, '{}\0'), /major/],
      [reply(0, 2, '{}\0'), /minor/],
      [reply(0, 1, '{"capabilities":{"pgsizes":4096}}\0'), /not proposed/],
      [reply(0, 1, '{"capabilities":{}}'), /NUL/],
      [reply(0, 1, '{"capabilities":{"max_msg_fds":"x"}}\0'), /not a count/],
    ] as const) assert.throws(() => decodeVersionReply(bad, proposal), (e: unknown) => e instanceof VfioUserProtocolError && why.test(e.message));
  });

  it('encodes SET_IRQS with vfio.h flags: bool data after the 20-byte head, eventfds not in the payload', () => {
    const b = encodeIrqSet(2, 6, 2, 'trigger', { kind: 'bool', values: [true, false] });
    assert.equal(hex(b), '16000000' + '22000000' + '02000000' + '06000000' + '02000000' + '0100');
    const e = encodeIrqSet(2, 0, 3, 'trigger', { kind: 'eventfd', fds: [7, 8, 9] });
    assert.equal(e.length, 20);
    assert.equal(e.readUInt32LE(4), 0x24, 'DATA_EVENTFD | ACTION_TRIGGER');
  });
});
