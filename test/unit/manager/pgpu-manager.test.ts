import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RmControl } from '../../../core/firmware-abi/rm-controls.js';
import { PgpuInitError, type PgpuInitStep } from '../../../core/manager/pgpu-init-error.js';
import { emptyBooks } from '../../../hal/mock/mock-gpu.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { ADD_TYPE_PAYLOAD, GiB, MiB, SMALL_TABLE, metadataFor, rig, type } from './fixture.js';

test('init reads the firmware facts and uploads the blob payload unchanged on the manager client', async () => {
  const r = await rig({ segmentSize: 256n * MiB, ecc: true });
  const mgr = await r.create();
  assert.equal(mgr.vmmuSegmentSize, 256n * MiB);
  assert.equal(mgr.eccEnabled, true);
  assert.equal(mgr.firmwareVersion, '570.144');
  assert.equal(mgr.channelCount, 2048);
  assert.equal(mgr.fbTotal, 48n * GiB);
  assert.deepEqual(mgr.installedTypes().map((t) => t.id), SMALL_TABLE.map((t) => t.id));
  assert.equal(r.uploads.length, 1);
  assert.deepEqual(r.uploads[0], ADD_TYPE_PAYLOAD);
  const upload = r.mock.calls.find((c) => c.op === 'firmware.control' && c.args['cmd'] === RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE);
  assert.equal(upload?.args['hClient'], mgr.client.hClient);
  // engine bitmap copy is padded to 8 bytes and holds the HAL's bits
  assert.equal(mgr.engineBitmap.byteLength % 8, 0);
  assert.deepEqual(mgr.engineBitmap.subarray(0, r.gpu.config.engineBitmap.byteLength), r.gpu.config.engineBitmap);
  assert.equal(r.mock.books().clients.length, 1);
  await mgr.close();
  assert.deepEqual(r.mock.books(), emptyBooks());
});

test('the guest-FB region sits at the top of free FB, segment aligned, and holds the largest promised fill', async () => {
  const r = await rig({ segmentSize: 512n * MiB });
  const mgr = await r.create();
  // largest max_instance × FB over the table: 32 × 1 GiB = 64 segments of 512 MiB
  assert.equal(mgr.region.slots, 64);
  assert.equal(mgr.region.base % (512n * MiB), 0n);
  assert.equal(mgr.region.base + 64n * 512n * MiB, 48n * GiB);
  await mgr.close();
});

const failures: Array<[PgpuInitStep, (r: Awaited<ReturnType<typeof rig>>) => void]> = [
  ['alloc-client', (r) => { r.mock.faults.inject({ op: 'firmware.allocClient' }); }],
  ['vmmu-segment-size', (r) => { r.gpu.firmware.onControl(RmControl.GPU_GET_VMMU_SEGMENT_SIZE, () => ({ status: 0x1f })); }],
  ['ecc-status', (r) => { r.gpu.firmware.onControl(RmControl.GPU_QUERY_ECC_STATUS, () => ({ status: 0x1f })); }],
  ['firmware-version', (r) => { r.gpu.firmware.onControl(RmControl.GSP_GET_FEATURES, () => ({ status: 0x1f })); }],
  ['load-metadata', (r) => { r.files.clear(); }],
  ['upload-types', (r) => { r.gpu.firmware.onControl(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, () => ({ status: 0x1f })); }],
];

for (const [step, breakIt] of failures) {
  test(`init failure at '${step}' names the step and frees the client`, async () => {
    const r = await rig();
    breakIt(r);
    await assert.rejects(r.create(), (e) => e instanceof PgpuInitError && e.step === step && e.gpu === '0000:41:00.0');
    assert.deepEqual(r.mock.books().clients, []);
  });
}

test('a VMMU segment size outside 32..512 MiB fails the init', async () => {
  const r = await rig({ segmentSize: 48n * MiB });
  await assert.rejects(r.create(), (e) => e instanceof PgpuInitError && e.step === 'vmmu-segment-size');
  assert.deepEqual(r.mock.books().clients, []);
});

test('metadata for another GSP version or another device is refused at load-metadata', async () => {
  const other = await rig({ firmwareVersion: '570.172' });
  await assert.rejects(other.create(), (e) => e instanceof PgpuInitError && e.step === 'load-metadata' && /vgpu-570\.172\.bin/.test(e.message));
  const wrongDev = await rig({ metadata: metadataFor(SMALL_TABLE, 0x26b5) });
  await assert.rejects(wrongDev.create(), (e) => e instanceof PgpuInitError && e.step === 'load-metadata' && isVgpuError(e, 'VGPU_EMETADATA'));
  assert.deepEqual(wrongDev.mock.books().clients, []);
});

test('reloadMetadata keeps selected types and swaps the table', async () => {
  const r = await rig();
  const mgr = await r.create();
  mgr.abi.writeCurrent(0, '101\n');
  const next = [...SMALL_TABLE.slice(0, 3), type(110, 'NVIDIA T-3Q', 3, 10)];
  await mgr.reloadMetadata(metadataFor(next));
  assert.deepEqual(mgr.installedTypes().map((t) => t.id), [100, 101, 102, 110]);
  assert.equal(mgr.abi.readCurrent(0), '101\n');
  assert.equal(r.uploads.length, 2);
  mgr.abi.writeCurrent(0, '0');
  await mgr.close();
});

test('reloadMetadata refuses a change to a selected type, naming it, and leaves everything as it was', async () => {
  const r = await rig();
  const mgr = await r.create();
  mgr.abi.writeCurrent(3, '102');
  const before = mgr.abi.readCreatable(4);
  const cases = [
    SMALL_TABLE.filter((t) => t.id !== 102),
    SMALL_TABLE.map((t) => (t.id === 102 ? { ...t, fbLength: 3n * GiB } : t)),
    SMALL_TABLE.map((t) => (t.id === 102 ? { ...t, gspHeapSize: 64n * MiB } : t)),
  ];
  for (const types of cases) {
    await assert.rejects(mgr.reloadMetadata(metadataFor(types)), (e) => isVgpuError(e, 'VGPU_EBUSY') && /102 \(NVIDIA T-4Q\)/.test(e.message));
  }
  await assert.rejects(mgr.reloadMetadata(new Uint8Array(10)), (e) => isVgpuError(e, 'VGPU_EMETADATA'));
  assert.equal(r.uploads.length, 1, 'nothing was sent to the firmware');
  assert.deepEqual(mgr.installedTypes().map((t) => t.id), SMALL_TABLE.map((t) => t.id));
  assert.equal(mgr.abi.readCreatable(4), before);
  // a failed upload also leaves the old table
  r.gpu.firmware.onControl(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, () => ({ status: 0x1f }));
  await assert.rejects(mgr.reloadMetadata(metadataFor(SMALL_TABLE.slice(0, 4))));
  assert.equal(mgr.installedTypes().length, SMALL_TABLE.length);
  mgr.abi.writeCurrent(3, '0'); // not frozen any more
  await mgr.close();
});

test('selections are paused (EBUSY) while a reload is in flight', async () => {
  const r = await rig();
  const mgr = await r.create();
  let release!: () => void;
  const gate = new Promise<void>((res) => { release = res; });
  r.gpu.firmware.onControl(RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, async () => { await gate; });
  const reload = mgr.reloadMetadata(metadataFor(SMALL_TABLE));
  assert.throws(() => mgr.abi.writeCurrent(0, '100'), (e) => isVgpuError(e) && (e as { errno?: string }).errno === 'EBUSY');
  release();
  await reload;
  mgr.abi.writeCurrent(0, '100');
  assert.equal(mgr.abi.readCurrent(0), '100\n');
  mgr.abi.writeCurrent(0, '0');
  await mgr.close();
});

test('close is refused while a VF has a type', async () => {
  const r = await rig();
  const mgr = await r.create();
  mgr.abi.writeCurrent(0, '100');
  await assert.rejects(mgr.close(), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  mgr.abi.writeCurrent(0, '0');
  await mgr.close();
  assert.deepEqual(r.mock.books(), emptyBooks());
});
