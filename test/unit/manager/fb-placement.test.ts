import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { FbPlacement } from '../../../core/manager/fb-placement.js';

const SEG = 512n << 20n;

test('small requests pack low, large ones high, best fit across runs', () => {
  const p = new FbPlacement({ totalSlots: 16, segmentSize: SEG, largeSlots: 4 });
  const a = p.place(2, 'a');
  const big = p.place(8, 'big');
  assert.equal(a.id, 0);
  assert.equal(big.id, 8);
  const b = p.place(1, 'b');
  assert.equal(b.id, 2);
  assert.deepEqual(p.freeRuns(), [{ start: 3, length: 5 }]);
  p.release(a);
  const c = p.place(4, 'c'); // large: the high end of the smallest run that fits (3..7)
  assert.equal(c.id, 4);
  // best fit: a 1-slot request takes the 1-slot hole at 3, not the 2-slot run at 0
  const d = p.place(1, 'd');
  assert.equal(d.id, 3);
  assert.deepEqual(p.stats(), { totalSlots: 16, usedSlots: 14, freeSlots: 2, largestFreeRun: 2, placements: 4 });
});

test('two-ended keeps room a big type needs where first-fit strands it', () => {
  const run = (strategy: 'two-ended' | 'first-fit'): { fits: boolean; stranded: bigint } => {
    const p = new FbPlacement({ totalSlots: 16, segmentSize: SEG, largeSlots: 4, strategy });
    const small = p.place(2, 'small');
    p.place(8, 'big');
    p.release(small);
    return { fits: p.canFit(8), stranded: p.strandedBytes(8) };
  };
  assert.deepEqual(run('first-fit'), { fits: false, stranded: 8n * SEG });
  assert.deepEqual(run('two-ended'), { fits: true, stranded: 0n });
});

test('ENOSPC when nothing fits, exact placement for re-attach, misuse refused', () => {
  const p = new FbPlacement({ totalSlots: 8, segmentSize: SEG });
  const x = p.place(3, 'x', 2);
  assert.equal(x.id, 2);
  assert.throws(() => p.place(2, 'y', 4), (e) => isVgpuError(e, 'VGPU_ENOSPC'));
  assert.throws(() => p.place(4, 'z'), (e) => isVgpuError(e, 'VGPU_ENOSPC'));
  assert.throws(() => p.place(0, 'z'), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  p.release(x);
  assert.throws(() => p.release(x), (e) => isVgpuError(e, 'VGPU_EINVAL'));
  assert.equal(p.fitCount(4), 2);
});
