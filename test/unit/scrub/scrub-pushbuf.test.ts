import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { buildScrubPushbuf, splitLines } from '../../../plugins/scrub/scrub-pushbuf.js';

describe('scrub pushbuffer', () => {
  it('splits into lines of at most 2 GiB by halving the length and doubling the count', () => {
    assert.deepEqual(splitLines(4096n), { lineBytes: 4096n, lineCount: 1 });
    assert.deepEqual(splitLines(0x8000_0000n), { lineBytes: 0x8000_0000n, lineCount: 1 });
    assert.deepEqual(splitLines(0x8000_1000n), { lineBytes: 0x4000_0800n, lineCount: 2 });
    assert.deepEqual(splitLines(6n << 30n), { lineBytes: 0x6000_0000n, lineCount: 4 });
    assert.deepEqual(splitLines(48n << 30n), { lineBytes: 0x6000_0000n, lineCount: 32 });
  });

  it('refuses sizes it could not wipe completely (upstream would drop the remainder)', () => {
    assert.throws(() => splitLines(0n), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.throws(() => splitLines(6n), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    // 2 GiB + 4 bytes halves to a line that is not a whole number of 4-byte components
    assert.throws(() => splitLines(0x8000_0004n), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
  });

  it('emits the upstream layout for a memset with a semaphore release', () => {
    const d = buildScrubPushbuf({ objectHandle: 0xcaf0_0010, dstVa: 0x1_2340_0000n, bytes: 0x10_0000n, pattern: 0, semaphoreVa: 0x1_0001_0000n });
    assert.deepEqual(d.slice(32), [
      0x20010000, 0xcaf00010, // SET_OBJECT, subchannel 0
      0x200181c2, 0x00030004, // SET_REMAP_COMPONENTS
      0x200181c0, 0x00000000, // SET_REMAP_CONST_A
      0x20048104, 0x00100000, 0x00100000, 0x00040000, 0x00000001, // PITCH_IN, PITCH_OUT, LINE_LENGTH_IN, LINE_COUNT
      0x20028102, 0x00000001, 0x23400000, // OFFSET_OUT_UPPER/LOWER
      0x200180c0, 0x00000785, // LAUNCH_DMA memset
      0x20038090, 0x00000001, 0x00010000, 0xdeadbeef, // SEMAPHORE_A/B/PAYLOAD
      0x200180c0, 0x000005cc, // LAUNCH_DMA semaphore + non-stall interrupt
    ]);
    assert.deepEqual(d.slice(0, 32), new Array(32).fill(0), '32 NOPs first');
    assert.ok(d.length <= 150, 'fits the 150 dwords upstream reserves');
  });
});
