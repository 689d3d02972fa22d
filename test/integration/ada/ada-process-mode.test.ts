/**
 * Process mode: the simulated GPU is its own vgpu-sim process with a sparse file region. The host attaches, boots,
 * writes FB through a host mapping, detaches (device keeps running), and a FRESH HAL instance re-attaches, finds
 * GSP-RM still running and the bytes still there. SIGTERM then stops the device cleanly.
 */
import 'reflect-metadata';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadNativeOps } from '../../../native/index.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { PROBE_CLIENT } from '../../../hal/gsp-gpu/gsp-firmware-client.js';
import { SimPciBus } from '../../../hal/sim/device/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { simPaths } from '../../../hal/sim/device/sim-descriptor.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const native = loadNativeOps().kind === 'native';
const dir = mkdtempSync('/dev/shm/vgpud-sim-test-');
let dev: SimDeviceHandle | undefined;
/** GPUs still attached when an assertion fails: detached here so a failure ends the file instead of hanging it. */
const attached = new Set<{ detach(): Promise<void> }>();
after(async () => {
  for (const g of attached) await g.detach().catch(() => {});
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('Ada simulator in process mode', { skip: native ? false : 'needs the native addon (npm run build:native)' }, () => {
  it('keeps FB contents and a running GSP across a detach and a re-attach from a fresh HAL', async () => {
    const bdf = '0000:41:00.0';
    dev = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'process', dir });
    assert.notEqual(dev.descriptor.pid, process.pid);
    const { region } = simPaths(dir, bdf);
    assert.equal(statSync(region).size, Number(dev.arena.size));
    assert.ok(statSync(region).blocks * 512 < 64 * 2 ** 20, 'the 48 GiB region file is sparse');

    const bus = new SimPciBus({ dirs: [dir] });
    const listed = await bus.list();
    assert.deepEqual(listed.map((d) => [d.bdf, d.deviceId, d.transport.kind]), [[bdf, 0x26b1, 'gsp-sim']]);

    const gpu1 = await new AdaHal().open(listed[0]!, { logger: new MemoryLogger(), rpcTimeoutMs: RPC_GUARD_MS });
    attached.add(gpu1);
    assert.equal(gpu1.config.fbBytes, 48n << 30n);
    assert.equal((await gpu1.firmware.boot({ version: '570.144' })).version, '570.144');
    const range = gpu1.memory.reserve({ size: 1n << 30n, align: 64n << 20n, owner: 'vgpu-1', label: 'guest-fb', at: 40n << 30n });
    const map = gpu1.memory.map(range, { offset: 0x1000n, size: 0x1000n });
    const pattern = Buffer.from('written by the first daemon, read by the second');
    map.write(16, pattern);
    // A guest with the FB mapped sees the same bytes at the same FB offset.
    assert.deepEqual(dev.fbWindow((40n << 30n) + 0x1000n + 16n, pattern.length), pattern);
    map.unmap();
    // A daemon killed while it probed the firmware version leaves the probe's RM client behind; the next attach
    // must reclaim it, not add to it.
    const clients = await dev.controls.rmClients();
    await gpu1.firmware.allocClient({ hClient: PROBE_CLIENT });
    assert.equal(await dev.controls.rmClients(), clients + 1);
    await gpu1.detach();
    attached.delete(gpu1);

    const logger = new MemoryLogger();
    const gpu2 = await new AdaHal().open((await bus.list())[0]!, { logger, rpcTimeoutMs: RPC_GUARD_MS });
    attached.add(gpu2);
    assert.equal(gpu2.firmware.state, 'running', 'GSP-RM survived the detach');
    assert.equal(gpu2.firmware.info().version, '570.144');
    assert.ok(logger.lines.some((l) => /already running/.test(l.message)));
    assert.equal(await dev.controls.rmClients(), clients, 'the left-behind probe client was freed by the re-attach');
    const again = gpu2.memory.reserve({ size: 1n << 30n, align: 64n << 20n, owner: 'vgpu-1', label: 'guest-fb', at: 40n << 30n });
    assert.deepEqual(gpu2.memory.map(again).read(0x1000 + 16, pattern.length), pattern);
    const c = await gpu2.firmware.allocClient();
    await gpu2.firmware.freeClient(c);
    await gpu2.detach();
    attached.delete(gpu2);

    dev.child?.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => dev!.child!.once('exit', (c2) => r(c2)));
    assert.equal(code, 0);
    assert.equal(existsSync(simPaths(dir, bdf).descriptor), false, 'descriptor removed on clean exit');
    assert.equal(existsSync(region), true, 'device file kept');
    assert.deepEqual(await bus.list(), []);
  });

  it('a device file whose vgpu-sim was killed with -9 is taken over by a new one: firmware off (not a frozen "running"), boots, FB kept', async () => {
    const bdf = '0000:42:00.0';
    const first = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'process', dir });
    const gpu1 = await new AdaHal().open(first.pciInfo(), { logger: new MemoryLogger(), rpcTimeoutMs: 5000 });
    attached.add(gpu1);
    await gpu1.firmware.boot({ version: '570.144' });
    const lost = new Promise<string>((resolve) => gpu1.firmware.onEvent((e) => { if (e.name === 'GPU_LOST') resolve(Buffer.from(e.payload).toString()); }));
    first.fbWindow(0x10_0000n, 5).set(Buffer.from('kept!'));
    first.child!.kill('SIGKILL');
    assert.match(await lost, /Xid 79/, 'the open GPU learns of the death from its link, with no call in flight');
    await gpu1.detach();
    attached.delete(gpu1);
    await first.stop();

    dev = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'process', dir });
    const logger = new MemoryLogger();
    const gpu2 = await new AdaHal().open(dev.pciInfo(), { logger, rpcTimeoutMs: 5000 });
    attached.add(gpu2);
    assert.equal(gpu2.firmware.state, 'off', 'the new device powered on with GSP-RM halted');
    assert.equal((await gpu2.firmware.boot({ version: '570.144' })).version, '570.144');
    assert.deepEqual(Buffer.from(dev.fbWindow(0x10_0000n, 5)), Buffer.from('kept!'));
    await gpu2.close();
    attached.delete(gpu2);
  });
});
