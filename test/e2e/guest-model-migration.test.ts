/**
 * The guest model migrates a vGPU between two daemons entirely over vfio-user (issue 11 point 6): two hosts — each
 * a real vgpud with its own vgpu-sim, started as the README starts them — and a VMM on each, the source's guest
 * running and writing FB. The VMM drives the device states with DEVICE_FEATURE MIG_DEVICE_STATE and moves the
 * bytes itself, MIG_DATA_READ on the source → MIG_DATA_WRITE on the destination (QEMU docs/interop/vfio-user.rst
 * "VFIO_USER_MIG_DATA_READ/WRITE"): source RUNNING → PRE_COPY (a full pass, then the guest dirties pages, then a
 * dirty pass) → STOP_COPY → STOP; destination STOP → RESUMING → RUNNING. Afterwards the two devices' FB slices
 * are byte-equal (checked in both simulators' region files) and the guest carries on at the destination.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Harness } from './helpers/daemon-harness.js';
import { createVgpus, pattern, show, socketOf, startRig, type VgpuJson } from './helpers/guest-model-rig.js';
import { fdOpsAvailable } from '../../native/fd-ops.js';
import { MIGRATION_P2P, MIGRATION_PRE_COPY, MIGRATION_STOP_COPY, MigState } from '../guest-model/wire/spec-constants.js';
import { isErrno } from '../guest-model/wire/errors.js';
import { VmmDevice } from '../guest-model/guest/vmm-device.js';
import { VgpuGuest } from '../guest-model/guest/vgpu-guest.js';
import { Bar0 } from '../guest-model/guest/vgpu-registers.js';

const skip = fdOpsAvailable() ? false : 'the native addon is not built (npm run build:native)';
const PAGE = 4096;
const EINVAL = 22;
/** The stream's frame magic, first bytes of any stream (plugins' frame-format.ts: "VGMF" in memory). */
const FRAME_MAGIC = Buffer.from('VGMF', 'latin1');

/** FB slices of two devices compared in 64 MiB windows; returns the first differing offset or -1n. */
function firstDifference(a: Harness, aOff: bigint, b: Harness, bOff: bigint, length: bigint): bigint {
  const step = 64n << 20n;
  for (let at = 0n; at < length; at += step) {
    const n = Number(length - at < step ? length - at : step);
    const x = a.sim.fbWindow(aOff + at, n);
    const y = b.sim.fbWindow(bOff + at, n);
    if (!x.equals(y)) {
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return at + BigInt(i);
    }
  }
  return -1n;
}

/** The guest-visible device registers a guest driver sets and relies on afterwards. */
async function guestRegisters(g: VgpuGuest): Promise<Record<string, number>> {
  const out: Record<string, number> = {
    leafEnable0: await g.readReg(Bar0.cpuIntrLeafEnSet(0)),
    topEnable: await g.readReg(Bar0.CPU_INTR_TOP_EN_SET),
  };
  for (let i = 0; i < 16; i++) out[`mailboxScratch${i}`] = await g.readReg(Bar0.mailboxScratch(i));
  return out;
}

describe('guest model: a vGPU migrated between two daemons over vfio-user, the VMM moving the bytes', { skip, timeout: 900_000 }, () => {
  let src: Harness;
  let dst: Harness;
  let srcVgpu: VgpuJson;
  let dstVgpu: VgpuJson;
  let srcDev: VmmDevice | undefined;
  let dstDev: VmmDevice | undefined;
  let srcGuest: VgpuGuest | undefined;
  let dstGuest: VgpuGuest | undefined;
  /** BAR0 registers the source's guest had set, read when the source stopped. */
  let srcRegs: Record<string, number> = {};

  before(async () => {
    src = await startRig('vgpud-e2e-gmig-src-');
    dst = await startRig('vgpud-e2e-gmig-dst-');
    [srcVgpu] = await createVgpus(src, 'RTX6000-Ada-1Q', 1) as [VgpuJson];
    [dstVgpu] = await createVgpus(dst, 'RTX6000-Ada-1Q', 1) as [VgpuJson];
    srcVgpu = await show(src, srcVgpu.id);
    dstVgpu = await show(dst, dstVgpu.id);
  });
  after(async () => {
    srcGuest?.close();
    dstGuest?.close();
    srcDev?.close();
    dstDev?.close();
    await src?.close();
    await dst?.close();
  });

  it('source RUNNING → PRE_COPY → STOP_COPY → STOP, destination RESUMING → RUNNING, MIG_DATA_READ → MIG_DATA_WRITE: FB equal afterwards', async () => {
    srcDev = await VmmDevice.attach(await socketOf(src, srcVgpu.id), { dir: src.dir });
    dstDev = await VmmDevice.attach(await socketOf(dst, dstVgpu.id), { dir: dst.dir });
    srcGuest = await VgpuGuest.start(srcDev);
    assert.equal((await srcGuest.rpcSetup()).result, 0);
    const fbSize = BigInt(srcVgpu.fb.size);
    // The guest's FB before migration: scattered pages, the slice's first and last bytes.
    const early: [bigint, Buffer][] = [[0n, pattern(1, PAGE)], [0x100000n, pattern(2, 5 * PAGE)], [0x3000_0000n, pattern(3, PAGE)], [fbSize - 8n, Buffer.from('lastbyte')]];
    for (const [at, b] of early) srcDev.bar1.writeMapped(at, b);

    const flags = await srcDev.client.migrationFlags();
    assert.equal(flags & MIGRATION_STOP_COPY, MIGRATION_STOP_COPY, 'STOP_COPY (the spec requires it)');
    assert.equal(flags & MIGRATION_PRE_COPY, MIGRATION_PRE_COPY, 'PRE_COPY');
    assert.equal(flags & MIGRATION_P2P, MIGRATION_P2P, 'P2P');
    assert.equal(await srcDev.client.migState(), MigState.RUNNING);
    assert.equal(await dstDev.client.migState(), MigState.RUNNING);

    await dstDev.client.setMigState(MigState.STOP);
    await dstDev.client.setMigState(MigState.RESUMING);
    assert.equal(await dstDev.client.migState(), MigState.RESUMING);

    let moved = 0;
    const pass = async (): Promise<number> => {
      let bytes = 0;
      for (const chunk of await srcDev!.client.migReadPass()) {
        await dstDev!.client.migWrite(chunk);
        bytes += chunk.length;
      }
      moved += bytes;
      return bytes;
    };

    await srcDev.client.setMigState(MigState.PRE_COPY);
    assert.equal(await srcDev.client.migState(), MigState.PRE_COPY);
    assert.ok(await pass() > 0, 'the first pre-copy pass carries the FB');
    // PRE_COPY: the device runs normally — the guest writes FB and its RPCs are answered.
    const late: [bigint, Buffer][] = [[0x100000n + BigInt(PAGE), pattern(4, PAGE)], [0x2000_0000n, pattern(5, 3 * PAGE)]];
    for (const [at, b] of late) srcDev.bar1.writeMapped(at, b);
    assert.equal(await srcGuest.echo('during pre-copy'), 'during pre-copy');
    await pass();
    // A last write the dirty pass has not seen: STOP_COPY must carry it.
    const last: [bigint, Buffer] = [0x3000_0000n + 123n, Buffer.from('written just before stop-copy')];
    srcDev.bar1.writeMapped(last[0], last[1]);

    await srcDev.client.setMigState(MigState.STOP_COPY);
    assert.equal(await srcDev.client.migState(), MigState.STOP_COPY);
    assert.ok(await pass() > 0, 'stop-copy carries the rest (firmware state at least)');
    await srcDev.client.setMigState(MigState.STOP);
    assert.equal(await srcDev.client.migState(), MigState.STOP);
    assert.ok(moved > 0);
    srcRegs = await guestRegisters(srcGuest);

    // The VMM moves guest RAM too (the RPC pages live there), then the destination runs.
    srcDev.ram.view(0, srcDev.ram.size).copy(dstDev.ram.view(0, dstDev.ram.size));
    await dstDev.client.setMigState(MigState.RUNNING);
    assert.equal(await dstDev.client.migState(), MigState.RUNNING);

    const diff = firstDifference(src, BigInt(srcVgpu.fb.offset), dst, BigInt(dstVgpu.fb.offset), fbSize);
    assert.equal(diff, -1n, `the destination's FB slice equals the source's (first difference at 0x${diff.toString(16)})`);
    for (const [at, b] of [...late, last]) assert.ok(dstDev.bar1.readMapped(at, b.length).equals(b), `FB 0x${at.toString(16)} at the destination, through its BAR1`);
    for (const [at, b] of early) assert.ok(dstDev.bar1.readMapped(at, b.length).equals(srcDev.bar1.readMapped(at, b.length)), `FB 0x${at.toString(16)} equal at both ends`);
    assert.ok(dstDev.bar1.readMapped(fbSize - 8n, 8).equals(Buffer.from('lastbyte')), 'the slice\'s last bytes');
    assert.deepEqual(srcDev.client.violations, []);
    assert.deepEqual(dstDev.client.violations, []);
  });

  // The device state carries the VF's guest-visible registers and the firmware task's record of the RPC channel
  // (the firmware context image, version 2): without them a migrated guest waits for its next answer forever.
  it('the guest carries on at the destination: its RPC channel and interrupt setup came with the device state', async () => {
    const d = dstDev!;
    // The destination VMM restores what it owns (config space, MSI-X eventfds), as QEMU's vfio_pci_load_config
    // does; the device's own registers (RPC setup, interrupt enables) are the migrated device state.
    dstGuest = await VgpuGuest.adopt(d);
    const regs = await guestRegisters(dstGuest);
    assert.deepEqual(regs, srcRegs, 'the registers the guest set (interrupt enables, RPC mailbox) are as they were at the source');
    assert.equal(await dstGuest.echo('hello after migration'), 'hello after migration');
    const info = await dstGuest.getInfo();
    assert.equal(info.typeId, dstVgpu.typeId);
    assert.deepEqual(d.client.violations, []);
  });

  it('refuses the arcs the spec forbids and reads/writes of data outside the saving/resuming states', async () => {
    const s = srcDev!.client;
    await s.setMigState(MigState.RUNNING);
    // EINVAL, as libvfio-user answers a data command outside the saving/resuming states (lib/migration.c).
    await assert.rejects(s.migRead(PAGE), (e: unknown) => isErrno(e, EINVAL), 'MIG_DATA_READ while RUNNING');
    await assert.rejects(s.migWrite(Buffer.alloc(16)), (e: unknown) => isErrno(e, EINVAL), 'MIG_DATA_WRITE while not RESUMING');
    await s.setMigState(MigState.STOP);
    await assert.rejects(s.migRead(PAGE), (e: unknown) => isErrno(e, EINVAL), 'MIG_DATA_READ while STOP');
    await s.setMigState(MigState.RUNNING);
    await s.setMigState(MigState.STOP_COPY); // a combination arc: RUNNING → STOP → STOP_COPY
    assert.equal(await s.migState(), MigState.STOP_COPY);
    await assert.rejects(s.setMigState(MigState.PRE_COPY), (e: unknown) => isErrno(e), 'STOP_COPY → PRE_COPY is explicitly not allowed');
    assert.equal(await s.migState(), MigState.STOP_COPY, 'a refused arc leaves the state as it was');
    await s.setMigState(MigState.STOP);
    await s.setMigState(MigState.RUNNING);
    assert.equal(await s.migState(), MigState.RUNNING);
    assert.equal(await srcGuest!.echo('the source runs again'), 'the source runs again');
  });

  it('invalid migration data fails RESUMING → STOP, and DEVICE_RESET brings the device from ERROR back to RUNNING', async () => {
    // QEMU spec MIG_DEVICE_STATE: "If the delivered data is found to be incomplete, inconsistent, or otherwise
    // invalid, fail the SET command and optionally transition to the ERROR state … To recover from ERROR,
    // VFIO_USER_DEVICE_RESET must be used to return back to RUNNING."
    const g = dstGuest ?? await VgpuGuest.start(dstDev!);
    dstGuest = g;
    const c = dstDev!.client;
    await c.setMigState(MigState.STOP);
    await c.setMigState(MigState.RESUMING);
    await c.migWrite(Buffer.alloc(3 * PAGE, 0x41));
    await assert.rejects(c.setMigState(MigState.STOP), (e: unknown) => isErrno(e), 'garbage is not a device state');
    const st = await c.migState();
    assert.ok(st === MigState.ERROR || st === MigState.RESUMING, `after the refused arc the device is in ERROR or still RESUMING (got ${st})`);
    await g.reset();
    assert.equal(await c.migState(), MigState.RUNNING);
    await g.enableDevice();
    assert.equal((await g.rpcSetup()).result, 0);
    assert.equal(await g.echo('recovered'), 'recovered');
    assert.deepEqual(c.violations, []);
  });

  // A VMM picks its own read size (QEMU's is its data buffer): the stream must not depend on it. Odd sizes that
  // split every frame, written to the destination re-cut into other odd sizes.
  it('a VMM reading the stream in small, odd chunks and writing it in others migrates the same FB', async () => {
    const s = srcDev!.client;
    const d = dstDev!.client;
    const fbSize = BigInt(srcVgpu.fb.size);
    const marks: [bigint, Buffer][] = [[0x40_0000n, pattern(7, 3 * PAGE)], [fbSize - BigInt(PAGE), pattern(8, PAGE)]];
    for (const [at, b] of marks) srcDev!.bar1.writeMapped(at, b);
    await d.setMigState(MigState.STOP);
    await d.setMigState(MigState.RESUMING);
    await s.setMigState(MigState.STOP_COPY); // RUNNING → STOP → STOP_COPY: the whole stream after the stop
    const READ = 4096 + 7;
    const chunks: Buffer[] = [];
    for (;;) {
      const b = await s.migRead(READ);
      if (b.length > 0) chunks.push(b);
      if (b.length === 0) break; // STOP_COPY: an empty answer is the end
    }
    const stream = Buffer.concat(chunks);
    assert.ok(stream.subarray(0, 4).equals(FRAME_MAGIC), 'the stream starts with a frame');
    for (let at = 0; at < stream.length; at += 3001) await d.migWrite(stream.subarray(at, Math.min(stream.length, at + 3001)));
    await s.setMigState(MigState.STOP);
    await d.setMigState(MigState.RUNNING);
    assert.equal(await d.migState(), MigState.RUNNING);
    const diff = firstDifference(src, BigInt(srcVgpu.fb.offset), dst, BigInt(dstVgpu.fb.offset), fbSize);
    assert.equal(diff, -1n, `the destination's FB slice equals the source's (first difference at 0x${diff.toString(16)})`);
    for (const [at, b] of marks) assert.ok(dstDev!.bar1.readMapped(at, b.length).equals(b), `FB 0x${at.toString(16)} at the destination`);
    await s.setMigState(MigState.RUNNING);
  });

  // A VMM that gives up mid-stream (the migration was cancelled) takes the source back to RUNNING: nothing of the
  // abandoned session is left, the guest runs, and a new migration starts with a fresh stream.
  it('a reader that stops mid-stream: the source goes back to RUNNING and a new PRE_COPY starts a fresh stream', async () => {
    const s = srcDev!.client;
    srcDev!.bar1.writeMapped(0x80_0000n, pattern(9, 64 * PAGE));
    await s.setMigState(MigState.PRE_COPY);
    const first = await s.migRead(PAGE);
    assert.equal(first.length, PAGE, 'the pass has more than one page of stream');
    assert.ok(first.subarray(0, 4).equals(FRAME_MAGIC));
    await s.setMigState(MigState.RUNNING); // abandon the pass mid-stream
    assert.equal(await s.migState(), MigState.RUNNING);
    await assert.rejects(s.migRead(PAGE), (e: unknown) => isErrno(e, EINVAL), 'no data after the session ended');
    assert.equal(await srcGuest!.echo('after an abandoned pre-copy'), 'after an abandoned pre-copy');
    assert.ok(srcDev!.bar1.readMapped(0x80_0000n, 64 * PAGE).equals(pattern(9, 64 * PAGE)), 'the source FB is as the guest left it');
    // Destination side: a stream cut off mid-way is refused when the VMM leaves RESUMING.
    const d = dstDev!.client;
    await s.setMigState(MigState.PRE_COPY);
    const again = await s.migRead(64 << 10);
    assert.ok(again.subarray(0, 4).equals(FRAME_MAGIC), 'a new session starts a new stream (header first)');
    await d.setMigState(MigState.STOP);
    await d.setMigState(MigState.RESUMING);
    await d.migWrite(again);
    await assert.rejects(d.setMigState(MigState.RUNNING), (e: unknown) => isErrno(e), 'a truncated stream is not a device state');
    await s.setMigState(MigState.RUNNING);
    assert.equal(await s.migState(), MigState.RUNNING);
    await dstGuest!.reset();
    assert.equal(await d.migState(), MigState.RUNNING, 'DEVICE_RESET brings the destination back');
    assert.deepEqual(s.violations, []);
    assert.deepEqual(d.violations, []);
  });

  // QEMU moves to STOP_COPY when its estimate says so, not necessarily after reading a pass to its end: what the
  // pass still had comes first in STOP_COPY, then the rest, and the stream stays one valid stream.
  it('STOP_COPY in the middle of a pre-copy pass: the rest of the pass, then the stop-copy data, one valid stream', async () => {
    const s = srcDev!.client;
    srcDev!.bar1.writeMapped(0xC0_0000n, pattern(10, 16 * PAGE));
    await startPass();
    srcDev!.bar1.writeMapped(0xD0_0000n, pattern(11, 2 * PAGE)); // written during the pass
    await s.setMigState(MigState.STOP_COPY);
    await finishStopCopy();
  });

  // VFIO: when the SET returns, the device is in the new state. A pass with more data than the front buffers ahead
  // of the VMM (192 MiB of non-zero pages) waits for the VMM to read — which it does only after STOP_COPY's reply:
  // that reply must still come after the device stopped, so a GET right after it says STOP_COPY.
  it('STOP_COPY while a pre-copy pass waits for the VMM to read: the device is in STOP_COPY when the SET returns', async () => {
    const s = srcDev!.client;
    const mib = pattern(12, 1 << 20);
    for (let i = 0; i < 192; i++) {
      mib.writeUInt32LE(i + 1, 0);
      srcDev!.bar1.writeMapped(0x1000_0000n + BigInt(i << 20), mib);
    }
    await startPass();
    await s.setMigState(MigState.STOP_COPY);
    assert.equal(await s.migState(), MigState.STOP_COPY, 'a GET right after the SET: the device is stopped');
    await finishStopCopy();
  });

  /** The destination RESUMING, the source in PRE_COPY with the first page of its pass read and written across. */
  async function startPass(): Promise<void> {
    const s = srcDev!.client;
    const d = dstDev!.client;
    await d.setMigState(MigState.STOP);
    await d.setMigState(MigState.RESUMING);
    await s.setMigState(MigState.PRE_COPY);
    const head = await s.migRead(PAGE);
    assert.equal(head.length, PAGE);
    await d.migWrite(head);
  }

  /** The source in STOP_COPY, the destination RESUMING: the rest of the stream across, both ends finished, FB equal. */
  async function finishStopCopy(): Promise<void> {
    const s = srcDev!.client;
    const d = dstDev!.client;
    for (;;) {
      const b = await s.migRead(64 << 10);
      if (b.length > 0) await d.migWrite(b);
      if (b.length === 0) break;
    }
    await s.setMigState(MigState.STOP);
    await d.setMigState(MigState.RUNNING);
    assert.equal(await d.migState(), MigState.RUNNING);
    const diff = firstDifference(src, BigInt(srcVgpu.fb.offset), dst, BigInt(dstVgpu.fb.offset), BigInt(srcVgpu.fb.size));
    assert.equal(diff, -1n, `the destination's FB slice equals the source's (first difference at 0x${diff.toString(16)})`);
    await s.setMigState(MigState.RUNNING);
    assert.deepEqual(s.violations, []);
    assert.deepEqual(d.violations, []);
  }
});
