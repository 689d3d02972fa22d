import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogAreaReader } from '../../../plugins/logging/log-area-reader.js';
import { appendLogRing, initLogRing, readLogRing, LOG_RING_HEADER } from '../../../hal/sim/device/log-ring.js';

describe('LogAreaReader over the simulator log ring', () => {
  it('returns each line once across ring wraps, and says when text was lost', () => {
    const ring = Buffer.alloc(LOG_RING_HEADER + 300);
    initLogRing(ring);
    const r = new LogAreaReader();
    const seen: string[] = [];
    for (let i = 0; i < 40; i++) {
      appendLogRing(ring, `line ${String(i).padStart(3, '0')} of the ring\n`); // 21 bytes: wraps every ~14 lines
      if (i % 5 === 4) seen.push(...r.next(readLogRing(ring)));
    }
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => `line ${String(i).padStart(3, '0')} of the ring`));
    for (let i = 0; i < 40; i++) appendLogRing(ring, `burst ${String(i).padStart(3, '0')} xxxxxxxx\n`);
    const after = r.next(readLogRing(ring));
    assert.match(after[0]!, /log text lost/);
    assert.equal(after.at(-1), 'burst 039 xxxxxxxx');
  });

  it('treats an emptied area as nothing new', () => {
    const r = new LogAreaReader();
    assert.deepEqual(r.next(Buffer.from('a\nb\n')), ['a', 'b']);
    assert.deepEqual(r.next(new Uint8Array(0)), []);
    assert.deepEqual(r.next(Buffer.from('a\nb\nc\n')), ['c']);
  });
});
