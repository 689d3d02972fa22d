/**
 * Hash dirty tracking over a process-mode simulated GPU keeps the FB sparse: the scans hash through the backing's
 * own hole-aware page hash (FramebufferMemory.hashPages), so migrating a mostly unwritten vGPU does not allocate its
 * whole FB in /dev/shm (on these 24 GiB machines a 24Q vGPU would not fit twice). The dirty pages are still found.
 */
import 'reflect-metadata';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { loadNativeOps } from '../../../native/index.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { SimPciBus } from '../../../hal/sim/device/sim-pci-bus.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { simPaths } from '../../../hal/sim/device/sim-descriptor.js';
import { mappingRegion } from '../../../plugins/migration/mapping-region.js';
import { HashDirtyTracker } from '../../../plugins/migration/dirty-tracker.js';
import { arenaRegion } from '../../../plugins/migration/fb-region.js';
import { inProcessPair } from '../../../plugins/migration/transport.js';
import { migrateSource, receiveMigration } from '../../../plugins/migration/precopy-engine.js';
import type { MigrationCompat } from '../../../plugins/migration/stream/compat.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const ops = loadNativeOps();
const native = ops.kind === 'native';
const dir = mkdtempSync('/dev/shm/vgpud-sparse-scan-');
const GiB = 1n << 30n;
let dev: SimDeviceHandle | undefined;
const closers: Array<() => Promise<void> | void> = [];
after(async () => {
  for (const c of closers.reverse()) await c();
  await dev?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('hash dirty tracking on a process-mode simulated GPU', { skip: native ? false : 'needs the native addon (process mode)' }, () => {
  it('finds the written pages of a 2 GiB FB without allocating the rest of it', async () => {
    const bdf = '0000:43:00.0';
    dev = await startSimDevice({ board: 'rtx6000-ada', bdf, mode: 'process', dir });
    const bus = new SimPciBus({ dirs: [dir] });
    const gpu = await new AdaHal().open((await bus.list())[0]!, { logger: new MemoryLogger(), rpcTimeoutMs: RPC_GUARD_MS });
    closers.push(() => gpu.detach());
    assert.ok(gpu.memory.hashPages !== undefined, 'the Ada backing hashes pages itself');
    const range = gpu.memory.reserve({ size: 2n * GiB, align: 64n << 20n, owner: 'vgpu-1', label: 'guest-fb' });
    const map = gpu.memory.map(range);
    closers.push(() => map.unmap());
    map.write(5 * 4096, Buffer.from('written before the snapshot'));

    const file = simPaths(dir, bdf).region;
    const allocated = (): number => statSync(file).blocks * 512;
    const region = mappingRegion(gpu.memory, range, ops);
    closers.push(() => region.close());
    const tracker = new HashDirtyTracker(region, 4096);
    const before = allocated();
    await tracker.start();
    map.write(7 * 4096 + 100, Buffer.from('written after'));
    map.write(Number(GiB) + 3 * 4096, Buffer.from('and in the second GiB'));
    assert.deepEqual([...(await tracker.collect())], [7, 262144 + 3]);
    assert.deepEqual([...(await tracker.collect())], [], 'a second collect finds nothing new');
    const grew = allocated() - before;
    assert.ok(grew < 16 * 2 ** 20, `two scans of a 2 GiB FB allocated ${(grew / 2 ** 20).toFixed(0)} MiB of it`);

    // A whole migration of that FB (full pass, dirty pass, stop-copy) reads only what was written: never-written
    // pages go as ZERO_PAGES found by the backing's scan, not by reading them. The destination gets the same bytes.
    const dst = ops.createArena({ size: range.size, backing: 'memfd' });
    closers.push(() => dst.close());
    const compat: MigrationCompat = {
      vgpuTypeId: 941, vgpuTypeName: 'NVIDIA RTX6000-Ada-1Q', fbBytes: range.size, chidCount: 64, firmwareVersion: '570.144', pciVdevId: 0x26b1, pageSize: 4096,
    };
    const { sender, receiver } = inProcessPair(1 << 20);
    const beforeMigration = allocated();
    const received = receiveMigration({ source: receiver, region: arenaRegion(dst), expect: compat });
    await migrateSource({
      region, dirty: new HashDirtyTracker(region, 4096), sink: sender, compat,
      device: { stop: async () => {}, resume: async () => {} },
      firmware: { async *save() { yield Buffer.from('fw'); }, async cancel() {} },
      policy: { downtimeBudgetMs: 10_000 },
    });
    await received;
    const migrationGrew = allocated() - beforeMigration;
    assert.ok(migrationGrew < 16 * 2 ** 20, `migrating a 2 GiB FB with three written pages allocated ${(migrationGrew / 2 ** 20).toFixed(0)} MiB of it`);
    const [a, b] = [await region.hashPages(0n, range.size, 4096), await dst.hashPages(0n, range.size, 4096)];
    assert.ok(Buffer.from(a.buffer).equals(Buffer.from(b.buffer)), 'the destination FB equals the source page for page');
    // The destination may back its FB ahead of the stream (its pre-fault reserves pages without writing them, as
    // real VRAM is there): what must stay small is what it WROTE — its record of written pages.
    const ext = dst.dataExtents!(0n, range.size);
    let written = 0n;
    for (let i = 0; i < ext.length; i += 2) written += ext[i + 1]! - ext[i]!;
    assert.ok(written < 16n << 20n, `the destination wrote only what was sent (${written} bytes written)`);
  });
});
