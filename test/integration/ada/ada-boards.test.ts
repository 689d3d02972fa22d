/**
 * Every board of the Ada chip table boots on the simulator (worker mode) and reports the hardware its chip-table
 * row and the simulated device describe: PCI ids, FB, SR-IOV VFs, engines, firmware version.
 */
import 'reflect-metadata';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ADA_BOARDS, boot0For, engineBitmap } from '../../../hal/ada-lovelace/chips.js';
import { AdaHal } from '../../../hal/ada-lovelace/ada-hal.js';
import { startSimDevice, WORKER_MAX_FB_BYTES, type SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import {
  GPU_GET_VMMU_SEGMENT_SIZE_PARAMS, GPU_QUERY_ECC_STATUS_PARAMS, RmControl, decodeEccStatus, decodeVmmuSegmentSize,
} from '../../../core/firmware-abi/rm-controls.js';
import { Bar0 } from '../../../hal/sim/device/device-layout.js';
import { RPC_GUARD_MS } from '../../helpers/guard-timeouts.js';

const started: SimDeviceHandle[] = [];
after(async () => {
  await Promise.allSettled(started.map((d) => d.stop()));
});

describe('Ada boards on the simulator (worker mode)', () => {
  ADA_BOARDS.forEach((board, i) => {
    it(`${board.key} (0x${board.deviceId.toString(16)}) boots and reads back its hardware config`, async () => {
      const bdf = `0000:${(0x41 + i).toString(16)}:00.0`;
      const dev = await startSimDevice({ board: board.key, bdf, mode: 'worker' });
      started.push(dev);
      const logger = new MemoryLogger();
      const info = dev.pciInfo();
      assert.equal(info.vendorId, 0x10de);
      assert.equal(info.deviceId, board.deviceId);
      assert.equal(info.subsystemId, board.subsystemId);
      assert.equal(info.classCode, 0x030200);
      assert.equal(info.sriov?.totalVfs, 32);

      const gpu = await new AdaHal().open(info, { logger, rpcTimeoutMs: RPC_GUARD_MS });
      const expectedFb = board.fbBytes < WORKER_MAX_FB_BYTES ? board.fbBytes : WORKER_MAX_FB_BYTES;
      assert.equal(gpu.config.fbBytes, expectedFb);
      assert.equal(gpu.memory.totalBytes, expectedFb);
      assert.equal(dev.descriptor.boardFbBytes, board.fbBytes);
      assert.deepEqual(gpu.config.pci, { vendorId: 0x10de, deviceId: board.deviceId });
      assert.equal(gpu.config.totalVfs, 32);
      assert.equal(gpu.config.copyEngineClass, 0xc7b5);
      assert.equal(gpu.config.firmwareFloor, '570.144');
      assert.deepEqual([...gpu.config.engineBitmap], [...engineBitmap(board.engines)]);
      assert.ok(gpu.config.engines.includes(0x01) && gpu.config.engines.includes(0x09), 'GR0 and COPY0 present');
      assert.ok(gpu.caps.has('ce-chan-alloc') && gpu.caps.has('pushbuf-submit'), 'copy-engine channels (scrub issue)');
      assert.equal(gpu.registers.read32(Bar0.PMC_BOOT_0), boot0For(board));

      const vfs = gpu.vfs();
      assert.equal(vfs.length, 32);
      assert.deepEqual(vfs[0], { index: 0, gfid: 1, bdf: `0000:${(0x41 + i).toString(16)}:00.4`, deviceId: board.vfDeviceId });
      assert.equal(vfs[31]?.gfid, 32);

      const fw = await gpu.firmware.boot({ version: '570.144', source: 'test' });
      assert.deepEqual(fw, { version: '570.144', initDone: true, attached: false }); // this host booted it
      assert.equal(gpu.firmware.state, 'running');

      const client = await gpu.firmware.allocClient();
      const seg = decodeVmmuSegmentSize(await gpu.firmware.control(client, RmControl.GPU_GET_VMMU_SEGMENT_SIZE,
        new Uint8Array(GPU_GET_VMMU_SEGMENT_SIZE_PARAMS.size)));
      assert.equal(seg, board.vmmuSegmentSize);
      const ecc = decodeEccStatus(await gpu.firmware.control(client, RmControl.GPU_QUERY_ECC_STATUS,
        new Uint8Array(GPU_QUERY_ECC_STATUS_PARAMS.size)));
      assert.equal(ecc.units[0]?.supported, true);
      assert.equal(ecc.units[0]?.enabled, board.eccEnabledDefault);
      await gpu.firmware.freeClient(client);
      await gpu.firmware.freeClient(client); // idempotent

      const steps = logger.lines.map((l) => l.message);
      for (const s of ['probe', 'claim', 'hardware configuration', 'ready', 'GSP boot: GSP_INIT_DONE']) {
        assert.ok(steps.includes(s), `boot step "${s}" logged`);
      }
      assert.match(new TextDecoder().decode(gpu.firmware.readLog('gsp')), /GSP_INIT_DONE/);
      await gpu.close();
      assert.equal(gpu.firmware.state, 'off');
      await dev.stop();
    });
  });
});
