import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelPoolBase } from '../../../core/alloc/channel-pool.js';
import type { CopyChannel } from '../../../core/contracts/channels.js';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';

class TestPool extends ChannelPoolBase {
  checked: number[] = [];
  async allocCopyChannel(chid: number, owner: string): Promise<CopyChannel> {
    this.checkCopyChid(chid, owner);
    this.checked.push(chid);
    return { chid } as CopyChannel;
  }
}

describe('ChannelPoolBase', () => {
  it('allocates CHID ranges and reports stats', () => {
    const p = new TestPool(2048);
    const a = p.alloc(16, 'vgpu-1');
    const b = p.alloc(16, 'vgpu-2', { at: 1024 });
    assert.deepEqual([a.offset, b.offset], [0, 1024]);
    assert.deepEqual(p.stats(), { total: 2048, used: 32, largestFree: 1008 });
    assert.equal(p.rangeOf(1030)?.owner, 'vgpu-2');
    p.free(a);
    assert.deepEqual(p.list(), [b]);
  });

  it('binds copy channels only to allocated CHIDs of the pool', async () => {
    const p = new TestPool(64);
    const r = p.alloc(8, 'vgpu-1');
    await p.allocCopyChannel(r.offset + r.count - 1, 'scrub');
    await assert.rejects(p.allocCopyChannel(63, 'scrub'), (e) => isVgpuError(e, ErrorCode.NotFound));
    await assert.rejects(p.allocCopyChannel(64, 'scrub'), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.deepEqual(p.checked, [7]);
  });
});
