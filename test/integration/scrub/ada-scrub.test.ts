/**
 * The copy-engine scrub end-to-end on the simulated Ada GPU: the scrub plugin's CeScrubber drives the Ada HAL's
 * copy channel, the host-side simulated CE wipes the shared FB, and the FIFO non-stall comes back as a firmware
 * event. Worker mode for isolation; process mode (native arena) for a 4 GiB scrub with the event loop watched.
 */
import 'reflect-metadata';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { monotonicClock } from '../../../core/clock.js';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { FirmwareEventRecord } from '../../../core/contracts/events.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { loadNativeOps } from '../../../native/index.js';
import { CeScrubber } from '../../../plugins/scrub/ce-scrubber.js';
import { loopTurnsDuring } from '../../helpers/loop-turns.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const MiB = 1n << 20n;
const GiB = 1n << 30n;
const native = loadNativeOps().kind === 'native';
const devices: SimDeviceHandle[] = [];
const dir = mkdtempSync('/dev/shm/vgpud-scrub-test-');
after(async () => {
  await Promise.allSettled(devices.map((d) => d.stop()));
  rmSync(dir, { recursive: true, force: true });
});

async function openAda(mode: 'worker' | 'process', fbBytes: bigint, bdf: string): Promise<{ dev: SimDeviceHandle; gpu: PhysicalGpu; scrubber: CeScrubber; bus: EventBusImpl }> {
  const dev = await startSimDevice({ board: 'l40s', bdf, mode, fbBytes, ...(mode === 'process' ? { dir } : {}) });
  devices.push(dev);
  const logger = new MemoryLogger();
  const gpu = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: RPC_GUARD_MS });
  await gpu.firmware.boot({ version: '570.144', source: 'test' });
  const bus = new EventBusImpl(logger);
  const scrubber = new CeScrubber(bus, logger, monotonicClock, () => ({ verify: false, timeoutMs: 4000, submitBytes: 2n * GiB, hostFallback: false }));
  return { dev, gpu, scrubber, bus };
}

describe('copy-engine scrub on the simulated Ada GPU', () => {
  it('wipes the previous tenant\'s bytes, signals through FIFO_NONSTALL, and frees everything', async () => {
    const { dev, gpu, scrubber } = await openAda('worker', 256n * MiB, '0000:51:00.0');
    assert.ok(gpu.caps.has('ce-chan-alloc') && gpu.caps.has('pushbuf-submit'));
    const range = gpu.memory.reserve({ size: 64n * MiB, align: 2n * MiB, owner: 'vgpu-a', label: 'guest-fb' });
    const chids = gpu.channels.alloc(8, 'vgpu-a');
    const secret = Buffer.from('tenant A: private key material');
    const spots = [0n, 12345n * 4n, range.size - BigInt(secret.length)];
    const map = gpu.memory.map(range);
    for (const at of spots) map.write(Number(at), secret);
    // what the device (a guest with its FB mapped) sees, before and after
    assert.deepEqual(Buffer.from(dev.fbWindow(range.offset + spots[2]!, secret.length)), secret);

    const nonstall: FirmwareEventRecord[] = [];
    const off = gpu.firmware.onEvent((e) => { if (e.name === 'FIFO_NONSTALL') nonstall.push(e); });
    const record = await scrubber.scrub({ gpu, range, chids, vgpuId: 'vgpu-a', reason: 'destroy', verify: true });
    off();
    assert.equal(record.verified, true);
    assert.equal(record.bytes, 64n * MiB);
    for (const at of spots) {
      assert.ok(Buffer.from(dev.fbWindow(range.offset + at, secret.length)).every((b) => b === 0), `device sees zeros at +${at}`);
    }
    assert.equal(nonstall.length, 1);
    assert.equal(new DataView(nonstall[0]!.payload.buffer, nonstall[0]!.payload.byteOffset).getUint32(0, true), chids.offset + chids.count - 1);
    map.unmap();
    assert.deepEqual(gpu.memory.list().map((r) => r.label), ['guest-fb'], 'semaphore page freed');
    // the CHID is free for a copy channel again
    const ch = await gpu.channels.allocCopyChannel(chids.offset + chids.count - 1, 'again');
    await ch.free();
    await gpu.close();
  });

  it('keeps the event loop responsive during a 4 GiB scrub', { skip: native ? false : 'needs the native addon (process mode)', timeout: 60_000 }, async () => {
    const { dev, gpu, scrubber, bus } = await openAda('process', 6n * GiB, '0000:52:00.0');
    const range = gpu.memory.reserve({ size: 4n * GiB, align: 2n * MiB, owner: 'vgpu-b', label: 'guest-fb' });
    const chids = gpu.channels.alloc(8, 'vgpu-b');
    // dirty one 64 KiB block in every 64 MiB, so the wipe has real bytes to deal with (and we can look for them)
    const map = gpu.memory.map(range);
    const junk = Buffer.alloc(64 * 1024, 0xa5);
    for (let at = 0n; at < range.size; at += 64n * MiB) map.write(Number(at), junk);
    map.unmap();
    const progress: number[] = [];
    bus.on('scrub:progress', (e) => progress.push(e.done));

    // No verify pass here: the native verify of 4 GiB of tmpfs holes takes seconds (see docs/scrub.md).
    // The loop keeps turning while the copy engine works (the daemon keeps answering); the millisecond figure
    // is `npm run bench:loop-delay`'s, not a timed assertion here. A zero scrub of a mostly sparse FB gives pages
    // back rather than writing them, so it can be over in a few milliseconds: one timer turn mid-scrub is what
    // shows it did not hold the loop (held, none would run). The 4 GiB fills themselves are held to MIN_TURNS in
    // test/native/arena-loop-delay.solo.test.ts.
    const { turns } = await loopTurnsDuring(() => scrubber.scrub({ gpu, range, chids, vgpuId: 'vgpu-b', reason: 'create' }));
    assert.ok(turns >= 1, `no timer ran during a 4 GiB scrub: it held the event loop`);
    for (let at = 0n; at < range.size; at += 64n * MiB) {
      assert.ok(Buffer.from(dev.fbWindow(range.offset + at, junk.length)).every((b) => b === 0), `block at +${at} wiped`);
    }
    assert.deepEqual(progress, [2 * 2 ** 30, 4 * 2 ** 30]);
    await gpu.close();
  });
});
