import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, isVgpuError, type VgpuError } from '../../../core/contracts/exceptions.js';
import type { ScrubRecord } from '../../../core/contracts/vgpu-service.js';
import { GiB, MiB, leftovers, scrubFixture } from './scrub-fixture.js';

const CLEAN = { semaphores: 0, mappings: 0, copyChannels: 0, firmwareListeners: 0 };

/** `0x…` strings the mock's call log recorded for mapMemory results, in call order. */
function mappedVas(calls: Array<{ op: string; result?: unknown }>): bigint[] {
  return calls.filter((c) => c.op === 'channel.mapMemory').map((c) => BigInt(String(c.result)));
}

describe('copy-engine scrub on the mock HAL', () => {
  it('runs the upstream procedure: last CHID, semaphore page, exact pushbuffer, everything freed', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const req = f.slice(4n * MiB);
    const record = await f.scrubber.scrub(req);

    const alloc = f.mock.calls.filter((c) => c.op === 'channels.allocCopyChannel');
    assert.equal(alloc.length, 1);
    assert.equal(alloc[0]!.args['chid'], req.chids.offset + req.chids.count - 1, 'the vGPU\'s last CHID');
    const reserve = f.mock.calls.filter((c) => c.op === 'memory.reserve' && c.args['label'] === 'semaphore');
    assert.equal(reserve.length, 1);
    assert.equal(reserve[0]!.args['size'], '0x1000');
    assert.equal(reserve[0]!.args['owner'], req.vgpuId);
    const fbMap = f.mock.calls.find((c) => c.op === 'channel.mapMemory' && c.args['hugePage'] === true)!;
    assert.equal(fbMap.args['compressibleDisable'], true);
    const [semVa, fbVa] = mappedVas(f.mock.calls);

    const subs = f.gpu.channels.submissions;
    assert.equal(subs.length, 1);
    const ch = subs[0]!;
    const handle = f.mock.calls.find((c) => c.op === 'channels.allocCopyChannel')!.result;
    assert.equal(typeof handle, 'string'); // the channel object is summarised; its handle comes from the dwords below
    const d = [...ch.dwords];
    assert.deepEqual(d.slice(0, 32), new Array(32).fill(0));
    assert.equal(d[32], 0x20010000, 'SET_OBJECT on subchannel 0');
    assert.deepEqual(d.slice(34), [
      0x200181c2, 0x30004,
      0x200181c0, 0,
      0x20048104, 0x400000, 0x400000, 0x100000, 1,
      0x20028102, Number(fbVa! >> 32n), Number(fbVa! & 0xffffffffn),
      0x200180c0, 0x785,
      0x20038090, Number(semVa! >> 32n), Number(semVa! & 0xffffffffn), 0xdeadbeef,
      0x200180c0, 0x5cc,
    ]);
    const begins = f.mock.calls.filter((c) => c.op === 'channel.begin');
    assert.deepEqual(begins.map((c) => c.args['dwords']), [150]);

    assert.equal(record.bytes, 4n * MiB);
    assert.equal(record.pattern, 0);
    assert.equal(record.reason, 'create');
    assert.equal(record.verified, null);
    assert.deepEqual(leftovers(f.gpu), CLEAN);
    assert.equal(f.bus.listenerCount('channel:nonstall'), 0);
  });

  it('splits a range over 2 GiB into lines of ≤ 2 GiB in one submission (submitMiB 0, as upstream)', async (t) => {
    const f = await scrubFixture({ submitMiB: 0 });
    t.after(() => f.close());
    const req = f.slice(6n * GiB);
    await f.scrubber.scrub(req);
    const [semVa, fbVa] = mappedVas(f.mock.calls);
    const subs = f.gpu.channels.submissions;
    assert.equal(subs.length, 1);
    assert.deepEqual([...subs[0]!.dwords].slice(34), [
      0x200181c2, 0x30004,
      0x200181c0, 0,
      0x20048104, 0x60000000, 0x60000000, 0x18000000, 4, // 4 lines of 1.5 GiB
      0x20028102, Number(fbVa! >> 32n), Number(fbVa! & 0xffffffffn),
      0x200180c0, 0x785,
      0x20038090, Number(semVa! >> 32n), Number(semVa! & 0xffffffffn), 0xdeadbeef,
      0x200180c0, 0x5cc,
    ]);
  });

  it('leaves nothing of the previous tenant in the slice', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const req = f.slice(8n * MiB);
    const map = f.gpu.memory.map(req.range);
    const secret = Buffer.from('previous tenant: credit card 4111-1111-1111-1111');
    const spots = [0, 4096, Number(4n * MiB) - 7, Number(8n * MiB) - secret.length];
    for (const at of spots) map.write(at, secret);
    assert.deepEqual(map.read(spots[3]!, secret.length), secret, 'the secret is there before');
    await f.scrubber.scrub({ ...req, reason: 'destroy' });
    for (const at of spots) assert.ok(map.read(at, secret.length).every((b) => b === 0), `zeros at +${at}`);
    map.unmap();
    assert.deepEqual(leftovers(f.gpu), CLEAN);
  });

  it('times out with VGPU_ETIMEDOUT when the engine never signals, not before its timeout, and frees every resource', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    f.gpu.channels.engine.hang = true;
    const req = f.slice(4n * MiB);
    // Mocked timers: the scrub's clock moves only when the test says, 10 ms at a time, so "it waited its 200 ms"
    // is counted, not measured (setImmediate stays real and lets the scrub run between steps).
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] });
    let settled = false;
    const scrub = assert.rejects(f.scrubber.scrub({ ...req, timeoutMs: 200 }), (e) => isVgpuError(e, ErrorCode.RpcTimeout) && e.details['timeoutMs'] === 200)
      .finally(() => { settled = true; });
    let waitedMs = 0;
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (settled) break;
      t.mock.timers.tick(10);
      waitedMs += 10;
    }
    await scrub;
    t.mock.timers.reset();
    assert.ok(waitedMs >= 200, `gave up after ${waitedMs} ms of its 200 ms`);
    assert.deepEqual(leftovers(f.gpu), CLEAN);
    assert.equal(f.bus.listenerCount('channel:nonstall'), 0);
    assert.equal(f.gpu.books().fbRanges.length, 1, 'only the guest FB remains');
  });

  it('fails with VGPU_ESCRUB when the submit is refused, and frees every resource', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    f.mock.faults.inject({ op: 'channel.submit' });
    const req = f.slice(4n * MiB);
    await assert.rejects(f.scrubber.scrub(req), (e) => isVgpuError(e, ErrorCode.Scrub) && (e as VgpuError).details['causeCode'] === 'VGPU_ERPC');
    assert.deepEqual(leftovers(f.gpu), CLEAN);
  });

  it('fails cleanly when a setup step fails half-way (mapping the guest FB)', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    f.mock.faults.inject({ op: 'channel.mapMemory', nth: 2 });
    await assert.rejects(f.scrubber.scrub(f.slice(4n * MiB)), (e) => isVgpuError(e, ErrorCode.Scrub));
    assert.deepEqual(leftovers(f.gpu), CLEAN);
  });

  it('completes on the coarse re-check when the non-stall interrupt is lost', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    let lost = 0;
    f.gpu.firmware.emitNonstall = (() => { lost++; }) as unknown as typeof f.gpu.firmware.emitNonstall;
    const record = await f.scrubber.scrub({ ...f.slice(4n * MiB), timeoutMs: 3000 });
    assert.equal(lost, 1, 'the interrupt was raised and dropped');
    assert.equal(record.bytes, 4n * MiB);
  });

  it('is woken by a non-stall forwarded on the bus too', { timeout: 10_000 }, async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const gpu = f.gpu;
    gpu.firmware.emitNonstall = ((chid: number) => { f.bus.emit('channel:nonstall', { gpu: gpu.bdf, chid }); }) as unknown as typeof gpu.firmware.emitNonstall;
    // The waiter's lost-interrupt re-check (setInterval) and its deadline's last look (setTimeout) are frozen here
    // (mock timers, never advanced), so the scrub can only finish if the bus event woke it; without the wake-up it
    // never settles and the test's own timeout fails it. No wall-clock bound needed.
    t.mock.timers.enable({ apis: ['setInterval', 'setTimeout'] });
    const record = await f.scrubber.scrub({ ...f.slice(4n * MiB), timeoutMs: 3000 });
    assert.equal(record.bytes, 4n * MiB, 'woken by the event on the bus, not by the re-check');
  });

  it('verify pass catches a page the engine skipped', async (t) => {
    const f = await scrubFixture({ verify: true });
    t.after(() => f.close());
    const req = f.slice(4n * MiB);
    const size = req.range.size;
    // An engine that skips the last page of every fill: the tenant's word there survives.
    f.gpu.channels.engine.fill = (off, len, pattern) => f.gpu.memory.store.fill(off, len - 4096n, pattern);
    const map = f.gpu.memory.map(req.range);
    map.write(Number(size) - 8, Buffer.from([1, 2, 3, 4]));
    const done: ScrubRecord[] = [];
    f.bus.on('scrub:done', (e) => done.push(e.record));
    await assert.rejects(f.scrubber.scrub(req), (e) => isVgpuError(e, ErrorCode.Scrub) && (e as VgpuError).details['offset'] === String(size - 8n));
    assert.equal(done.length, 1);
    assert.equal(done[0]!.verified, false);
    map.unmap();
    assert.deepEqual(leftovers(f.gpu), CLEAN);
  });

  it('verify pass passes on a clean scrub (per request, config off)', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const req = f.slice(4n * MiB);
    f.gpu.memory.map(req.range).write(100, Buffer.from('x'));
    const record = await f.scrubber.scrub({ ...req, verify: true });
    assert.equal(record.verified, true);
  });

  it('reports real progress: one event per submission, adding up to the total', async (t) => {
    const f = await scrubFixture({ submitMiB: 1024 });
    t.after(() => f.close());
    const req = f.slice(5n * GiB);
    const events: Array<{ done: number; total: number; vgpuId: string }> = [];
    f.bus.on('scrub:progress', (e) => events.push(e));
    await f.scrubber.scrub(req);
    assert.equal(f.gpu.channels.submissions.length, 5, 'five 1 GiB submissions');
    assert.equal(events.length, 5);
    let prev = 0;
    let sum = 0;
    for (const e of events) {
      assert.equal(e.total, 5 * 2 ** 30);
      assert.equal(e.vgpuId, req.vgpuId);
      assert.ok(e.done > prev);
      sum += e.done - prev;
      prev = e.done;
    }
    assert.equal(sum, 5 * 2 ** 30);
    // each submission's OFFSET_OUT moves on by the chunk size
    const lows = f.gpu.channels.submissions.map((s) => BigInt(s.dwords[45]!) | (BigInt(s.dwords[44]!) << 32n));
    for (let i = 1; i < lows.length; i++) assert.equal(lows[i]! - lows[i - 1]!, GiB);
  });

  it('refuses a bad request before touching the GPU, and a bad config at start', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const req = f.slice(4n * MiB);
    const before = f.mock.calls.length;
    await assert.rejects(f.scrubber.scrub({ ...req, chids: { ...req.chids, count: 0 } }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    await assert.rejects(f.scrubber.scrub({ ...req, vgpuId: '' }), (e) => isVgpuError(e, ErrorCode.InvalidArgument));
    assert.equal(f.mock.calls.length, before);
    await assert.rejects(scrubFixture({ submitMiB: 3 }), (e) => isVgpuError(e, ErrorCode.PluginStart) || isVgpuError(e, ErrorCode.Config));
    await assert.rejects(scrubFixture({ verfy: true }), (e) => isVgpuError(e, ErrorCode.PluginStart) || isVgpuError(e, ErrorCode.Config));
  });

  it('wipes from the host when the HAL has no copy-engine channel', async (t) => {
    const mockCaps = await import('../../../hal/mock/mock-pci-bus.js');
    const caps = mockCaps.ALL_MOCK_CAPS.filter((c) => c !== 'ce-chan-alloc' && c !== 'pushbuf-submit');
    const { MockHal } = await import('../../../hal/mock/mock-hal.js');
    const { createMockHalPlugin } = await import('../../../hal/mock/mock-hal-plugin.js');
    const { createScrubPlugin } = await import('../../../plugins/scrub/scrub-plugin.js');
    const { createTestContainer } = await import('../../helpers/test-container.js');
    const { TOKENS } = await import('../../../core/tokens.js');
    const mock = new MockHal({ devices: [{ bdf: '0000:41:00.0', caps }] });
    const tc = await createTestContainer({ plugins: [createMockHalPlugin(mock), createScrubPlugin()] });
    t.after(() => tc.stop());
    const gpu = await mock.openDevice();
    await gpu.firmware.boot({ version: '570.144' });
    const range = gpu.memory.reserve({ size: 4n * MiB, owner: 'v', label: 'guest-fb' });
    gpu.memory.map(range).write(0, Buffer.from('secret'));
    const scrubber = tc.container.get<import('../../../core/contracts/scrubber.js').FbScrubber>(TOKENS.FbScrubber);
    const record = await scrubber.scrub({ gpu, range, chids: gpu.channels.alloc(2, 'v'), vgpuId: 'v', reason: 'reset', verify: true });
    assert.equal(record.verified, true);
    assert.equal(gpu.channels.submissions.length, 0, 'no copy engine used');
  });

  it('places the semaphore page below scratchBelow (the guest-FB region), never on an unreserved guest placement', async (t) => {
    const f = await scrubFixture();
    t.after(() => f.close());
    const base = 64n * MiB;
    // Management area [0, base) full; [base, 2 × base) is a placement a VF selected but no create has reserved
    // yet; the vGPU being scrubbed sits above it.
    f.gpu.memory.reserve({ size: 32n * MiB, owner: 'manager', label: 'mgmt-heap' });
    const hole = f.gpu.memory.reserve({ size: 4096n, owner: 'manager', label: 'mgmt-heap' });
    f.gpu.memory.reserve({ size: 32n * MiB - 4096n, owner: 'manager', label: 'mgmt-heap' });
    const range = f.gpu.memory.reserve({ size: 4n * MiB, at: 2n * base, owner: 'vgpu-1', label: 'guest-fb' });
    const req = { gpu: f.gpu, range, chids: f.gpu.channels.alloc(8, 'vgpu-1'), vgpuId: 'vgpu-1', reason: 'create' as const, scratchBelow: base };
    const selectedPlacementFree = (): boolean => f.gpu.books().fbRanges.every((r) => r.offset + r.size <= base || r.offset >= 2n * base);

    // No room below the bound: the scrub fails cleanly instead of taking guest FB nobody has reserved yet.
    await assert.rejects(f.scrubber.scrub(req), (e: VgpuError) => isVgpuError(e, ErrorCode.Scrub) && e.details['causeCode'] === ErrorCode.NoSpace);
    assert.deepEqual(leftovers(f.gpu), CLEAN);
    assert.ok(selectedPlacementFree());

    // A free page below the bound: the semaphore goes there, though first fit alone would not care.
    f.gpu.memory.free(hole);
    await f.scrubber.scrub(req);
    const sem = f.mock.calls.filter((c) => c.op === 'memory.reserve' && c.args['label'] === 'semaphore' && c.outcome === 'ok');
    assert.equal(sem.length, 1);
    assert.equal(BigInt(String((sem[0]!.result as { offset: unknown }).offset)), hole.offset);
    assert.deepEqual(leftovers(f.gpu), CLEAN);
    assert.ok(selectedPlacementFree());
  });
});
