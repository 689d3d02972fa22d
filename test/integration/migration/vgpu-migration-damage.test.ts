/**
 * vGPU live migration on the simulator, a damaged stream between two "daemons" over a Unix socket: a corrupted
 * stream, a truncated stream and a source killed mid-stream. The destination must refuse it with a typed error
 * and keep no vGPU; the source must go back to RUNNING with its FB as it was.
 *
 * The source is driven by hand (RUNNING → STOP_COPY into a damaging pipe to the listener), as a VMM would drive
 * the VFIO state machine, so the damage lands in the middle of the whole-FB stream.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Transform } from 'node:stream';
import { createConnection, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { MigState } from '../../../plugins/migration/fsm.js';
import { daemon, dispose, fbHash, fill, makeSource, noVgpusLeft, startGpu, stopGpu, type Daemon, type SimGpu } from './harness.js';

let A: SimGpu, C: SimGpu;
let local: Daemon; // GPU A: the source
let remote: Daemon; // GPU C, listening on a socket
const sock = `/tmp/vgpud-migdamage-${process.pid}.sock`;

before(async () => {
  [A, C] = await Promise.all([startGpu('0000:41:00.0'), startGpu('0000:43:00.0')]);
  local = daemon([A], 'local');
  remote = daemon([C], 'remote');
  await remote.mig.listen(sock);
});

after(async () => {
  await remote?.mig.close();
  await Promise.all([stopGpu(A), stopGpu(C)]);
  rmSync(sock, { force: true });
});

/** The destination's reply lines as they arrive; `matching(re)` resolves once they match (on data, not on a clock). */
function replyLines(s: Socket): { text: () => string; matching: (re: RegExp) => Promise<void> } {
  let text = '';
  const waiters: Array<() => void> = [];
  s.on('data', (d: Buffer) => {
    text += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  const matching = async (re: RegExp): Promise<void> => {
    while (!re.test(text)) await new Promise<void>((r) => waiters.push(r));
  };
  return { text: () => text, matching };
}

describe('vGPU migration on the simulator: damaged streams', () => {
  const cases = [
    ['corrupt', 'a corrupted stream', /"op":"error".*"code":"VGPU_ECHECKSUM"/, 4],
    ['truncate', 'a truncated stream', /"op":"error".*"code":"VGPU_EMIGRATION".*truncated/, 5],
    ['kill', 'a source killed mid-stream', null, 6],
  ] as const;
  for (const [damage, title, reply, vf] of cases) {
    // The timeout only guards against a hang (a loaded shared machine is slow, not wrong).
    it(`${title}: the destination refuses it and keeps nothing, the source resumes with its FB intact`, { timeout: 180_000 }, async () => {
      const id = await makeSource(local, A, vf);
      fill(local, id, 33);
      const before = await fbHash(local, id);
      const s = createConnection({ path: sock, allowHalfOpen: true });
      try {
        await new Promise((r) => s.once('connect', r));
        s.write(`${JSON.stringify({ op: 'migrate', v: 1, typeId: local.svc.get(id).typeId })}\n`);
        const replies = replyLines(s);
        s.on('error', () => undefined);
        await replies.matching(/"op":"ready"/); // the destination made a vGPU and is ready
        assert.equal(remote.svc.list().length, 1);
        let at = 0;
        const cut = 3 << 20;
        const pipe = new Transform({
          transform(chunk: Buffer, _e, cb) {
            const start = at;
            at += chunk.length;
            if (damage === 'corrupt' && start <= cut && cut < at) { const c = Buffer.from(chunk); c[cut - start]! ^= 0x40; return cb(null, c); }
            if (damage !== 'corrupt' && at > cut) {
              if (damage === 'truncate') {
                if (start < cut) { this.push(chunk.subarray(0, cut - start)); s.end(); }
                return cb(); // the rest goes nowhere
              }
              s.destroy(); return cb(new Error('source process killed'));
            }
            cb(null, chunk);
          },
        });
        pipe.pipe(s);
        pipe.on('error', () => undefined); // the encoder reports transport errors; after its trailer nobody listens
        // As a socket sink does: the destination closing the connection fails the source's pending writes.
        s.on('close', () => pipe.destroy(new Error('destination closed the connection')));
        const h = await local.mig.setState(id, MigState.STOP_COPY, { sink: pipe });
        assert.equal(h?.kind, 'save');
        // The save may complete (a mostly-zero FB fits the socket buffers before the destination answers) or fail
        // (the destination hung up first): the source cannot tell before reading the reply. Either way it settles.
        await (h as { done: Promise<unknown> }).done.catch(() => undefined);
        // Destination: the half-made vGPU is destroyed (its teardown runs after the stream failed: wait for it).
        await noVgpusLeft(remote);
        assert.deepEqual(remote.svc.list(), []);
        if (reply !== null) {
          // Sent before the teardown; read until the connection ends, then it must be there.
          await new Promise<void>((r) => { if (s.readableEnded || s.destroyed) r(); else { s.once('end', () => r()); s.once('close', () => r()); } });
          assert.match(replies.text(), reply, 'typed error reply');
        }
        // Source: back to RUNNING with its FB as it was, its firmware running (STOP_WORK needs a running task).
        assert.equal(local.mig.getState(id), MigState.STOP_COPY);
        await local.mig.setState(id, MigState.RUNNING);
        assert.equal(local.mig.getState(id), MigState.RUNNING);
        assert.ok((await fbHash(local, id)).equals(before));
        await local.mig.setState(id, MigState.STOP);
        await local.mig.setState(id, MigState.RUNNING);
      } finally {
        s.destroy();
        await dispose(local, id);
      }
    });
  }
});
