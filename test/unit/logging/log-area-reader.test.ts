import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LogAreaReader, LogCursorReader } from '../../../plugins/logging/log-area-reader.js';
import { appendLogRing, initLogRing, readLogRing, readLogRingSince, LOG_RING_HEADER } from '../../../hal/sim/device/log-ring.js';

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

describe('LogCursorReader over the simulator log ring (reads only what is new)', () => {
  it('returns each line once across ring wraps, holds a partial line, and says when text was lost', () => {
    const ring = Buffer.alloc(LOG_RING_HEADER + 300);
    initLogRing(ring);
    const r = new LogCursorReader();
    const seen: string[] = [];
    for (let i = 0; i < 40; i++) {
      appendLogRing(ring, `line ${String(i).padStart(3, '0')} of the ring\n`);
      if (i % 5 === 4) seen.push(...r.next(readLogRingSince(ring, r.position)));
    }
    assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => `line ${String(i).padStart(3, '0')} of the ring`));
    appendLogRing(ring, 'half a li');
    assert.deepEqual(r.next(readLogRingSince(ring, r.position)), []);
    appendLogRing(ring, 'ne\n');
    assert.deepEqual(r.next(readLogRingSince(ring, r.position)), ['half a line']);
    assert.deepEqual(r.next(readLogRingSince(ring, r.position)), [], 'nothing new: nothing repeated');
    for (let i = 0; i < 40; i++) appendLogRing(ring, `burst ${String(i).padStart(3, '0')} xxxxxxxx\n`);
    const after = r.next(readLogRingSince(ring, r.position));
    assert.match(after[0]!, /log text lost/);
    assert.equal(after.at(-1), 'burst 039 xxxxxxxx');
    appendLogRing(ring, 'no end');
    assert.deepEqual(r.flush(), []);
    r.next(readLogRingSince(ring, r.position));
    assert.deepEqual(r.flush(), ['no end']);
  });

  it('starts over when the ring was set up again under it (a new task on the gfid)', () => {
    const ring = Buffer.alloc(LOG_RING_HEADER + 300);
    initLogRing(ring);
    const r = new LogCursorReader();
    appendLogRing(ring, 'first task, a long line of its own\n');
    assert.deepEqual(r.next(readLogRingSince(ring, r.position)), ['first task, a long line of its own']);
    initLogRing(ring, { reset: true });
    appendLogRing(ring, 'second task\n');
    assert.deepEqual(r.next(readLogRingSince(ring, r.position)), ['second task']);
  });
});

describe('appendLogRing', () => {
  it('puts a line appended as a string byte for byte where the same line appended as UTF-8 bytes goes, at the ring end and across it', () => {
    // 50 data bytes: lines of 7–12 bytes (some with multi-byte UTF-8) end exactly at the ring end, cross it, and wrap.
    const asText = Buffer.alloc(LOG_RING_HEADER + 50);
    const asBytes = Buffer.alloc(LOG_RING_HEADER + 50);
    initLogRing(asText);
    initLogRing(asBytes);
    const lines = ['abcdefghi\n', 'größe ok\n', 'τ line 3\n', '0123456789\n', 'x\n', 'fits €\n', 'wrap me now\n', 'ünïcödé\n', 'z\n'];
    for (let i = 0; i < 40; i++) {
      const line = lines[i % lines.length]!;
      appendLogRing(asText, line);
      appendLogRing(asBytes, new Uint8Array(Buffer.from(line, 'utf8')));
      assert.deepEqual(asText, asBytes, `after line ${i}`);
    }
    assert.ok(readLogRing(asText).byteLength === 50, 'the ring wrapped');
  });
});
