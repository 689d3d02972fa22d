/**
 * The simulated GSP-RM parses the ADD_VGPU_TYPE control the way the real one lays it out: the fixed-size
 * NV2080_CTRL_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE_PARAMS with NVA081_CTRL_VGPU_INFO records (r570.144). The shipped
 * catalogue's payload installs its types; a wrongly sized params block is refused as RM refuses one
 * (NV_ERR_INVALID_PARAM_STRUCT), a malformed record or another board's types with NV_ERR_INVALID_ARGUMENT — and
 * the table in force stays what it was.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { RmClient } from '../../../core/contracts/firmware.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { NvStatus } from '../../../core/firmware-abi/nv-status.js';
import { RmControl } from '../../../core/firmware-abi/rm-controls.js';
import { ADD_VGPU_TYPE_PARAMS, VGPU_INFO } from '../../../core/metadata/vgpu-info-record.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { loadCatalog } from '../../../metadata/compile-catalog.js';
import { DEFAULT_CATALOG_PATH } from '../../../metadata/default-metadata.js';

const GiB = 1n << 30n;
const catalog = loadCatalog(DEFAULT_CATALOG_PATH);
const payloadOf = (deviceId: number): Uint8Array => catalog.spec.blobs.find((b) => b.deviceId === deviceId)!.rmctrlPayload;
const rmStatus = (want: number) => (e: unknown): boolean => isVgpuError(e) && e.details.rmStatus === want;

describe('ADD_VGPU_TYPE on the simulated GSP-RM (NVA081_CTRL_VGPU_INFO records)', () => {
  let dev: SimDeviceHandle;
  let gpu: PhysicalGpu;
  let client: RmClient;
  const upload = (params: Uint8Array) => gpu.firmware.control(client, RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, params);

  before(async () => {
    dev = await startSimDevice({ board: 'rtx6000-ada', bdf: '0000:41:00.0', mode: 'worker', fbBytes: 4n * GiB });
    gpu = await new AdaHal().open(dev.pciInfo(), { logger: new MemoryLogger(), rpcTimeoutMs: 10_000 });
    await gpu.firmware.boot({ version: '570.144' });
    client = await gpu.firmware.allocClient();
  });
  after(async () => {
    await gpu?.close().catch(() => {});
    await dev?.stop();
  });

  it('installs the catalogue payload (334,344 bytes through the GSP queues) and refuses malformed ones', async () => {
    const good = payloadOf(0x26b1);
    assert.equal(good.byteLength, ADD_VGPU_TYPE_PARAMS.bytes);
    await upload(good);

    // One record short of sizeof(params): the struct RM expects is not what was sent.
    await assert.rejects(upload(good.subarray(0, good.byteLength - VGPU_INFO.bytes)), rmStatus(NvStatus.INVALID_PARAM_STRUCT));
    // A flag that is not 0/1 in the second record.
    const bad = good.slice();
    new DataView(bad.buffer).setUint32(ADD_VGPU_TYPE_PARAMS.vgpuInfo + VGPU_INFO.bytes + VGPU_INFO.cudaEnabled, 7, true);
    await assert.rejects(upload(bad), rmStatus(NvStatus.INVALID_ARGUMENT));
    // The L40's table on an RTX 6000 Ada: its records name another PCI device.
    await assert.rejects(upload(payloadOf(0x26b5)), rmStatus(NvStatus.INVALID_ARGUMENT));

    // The good upload is still what the firmware holds: the RTX 6000 Ada table, guest FB as the record says.
    const types = await dev.controls.uploadedTypes();
    assert.equal(types.length, 29);
    const q24 = types.find((t) => t.name === 'NVIDIA RTX6000-Ada-24Q')!;
    assert.deepEqual([q24.id, q24.maxInstance, q24.fbLength], [949, 2, String(23488n << 20n)]);
  });
});
