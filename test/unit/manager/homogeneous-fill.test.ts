/**
 * The promise an operator reads off `vgpuctl types` on an empty GPU: under the homogeneous policy every type of the
 * board's table is available max_instance times, and that many really get their guest FB and management heap.
 * Checked for every board of every generation's catalogue (metadata/ada.yaml, metadata/hopper.yaml) with the board's
 * own hardware (FB size, VMMU segment size, VFs, ECC) from its generation's chip table — a 32 MiB segment in the mock once hid that 64 MiB-segment boards fall one vGPU short.
 * Run twice per board: with the whole FB free (the simulator), and with the host reserve the catalogue assumes
 * (fbMiB − vgpuFbMiB) already taken, as GSP-RM takes it on a real board.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import type { VgpuTypeRecord } from '../../../core/metadata/metadata-file.js';
import type { PgpuManager } from '../../../core/manager/pgpu-manager.js';
import { DEFAULT_CATALOG_PATHS } from '../../../metadata/compile-to-file.js';
import { loadCatalogs } from '../../../metadata/compile-catalog.js';
import { ADA_BOARD_TABLE } from '../../../hal/ada-lovelace/chips.js';
import { HOPPER_BOARD_TABLE } from '../../../hal/hopper/chips.js';
import { MiB, rig } from './fixture.js';

interface YamlType { id: number; name: string; maxInstance: number }
interface YamlBoard { key: string; deviceId: number; fbMiB: number; vgpuFbMiB: number; types: YamlType[] }

const yamlBoards = DEFAULT_CATALOG_PATHS.flatMap((p) => (parse(readFileSync(p, 'utf8')) as { boards: YamlBoard[] }).boards);
const metadata = buildMetadata(loadCatalogs(DEFAULT_CATALOG_PATHS).spec);
const boardByDeviceId = (id: number) => ADA_BOARD_TABLE.byDeviceId(id) ?? HOPPER_BOARD_TABLE.byDeviceId(id);

/** What `vgpuctl types` shows as AVAILABLE (the same terms as VgpuServiceImpl.types). */
function available(mgr: PgpuManager, t: VgpuTypeRecord, vfCount: number): number {
  const policy = mgr.policy;
  const freeVfs = Array.from({ length: vfCount }, (_, i) => i).filter((vf) => policy.selectionOf(vf) === undefined);
  if (freeVfs.length === 0 || !policy.creatable(freeVfs[0]!).some((c) => c.id === t.id)) return 0;
  return Math.max(0, Math.min(
    t.maxInstance - policy.countOf(t.id), freeVfs.length, policy.maxVgpus - policy.selections().length, policy.fitCount(t),
    mgr.heapRoomFor(t),
  ));
}

for (const board of yamlBoards) {
  const chip = boardByDeviceId(board.deviceId);
  for (const hostReserve of [false, true]) {
    for (const ecc of [...new Set([false, chip?.eccEnabledDefault ?? false])]) {
      const label = `${board.key}, ECC ${ecc ? 'on' : 'off'}, ${hostReserve ? 'host reserve taken' : 'whole FB free'}`;
      test(`${label}: an empty GPU offers every type max_instance times, and that many fit`, async () => {
        assert.ok(chip !== undefined, `board ${board.key} (0x${board.deviceId.toString(16)}) is in its generation's chip table`);
        assert.equal(chip.fbBytes, BigInt(board.fbMiB) * MiB, 'catalogue and chip table agree on the FB size');
        const r = await rig({
          device: { deviceId: board.deviceId, fbBytes: chip.fbBytes, totalVfs: chip.totalVfs },
          segmentSize: chip.vmmuSegmentSize,
          ecc,
          metadata,
        });
        if (hostReserve) r.gpu.memory.reserve({ size: BigInt(board.fbMiB - board.vgpuFbMiB) * MiB, owner: 'host', label: 'host-reserve' });
        const mgr = await r.create({ policy: 'homogeneous' });
        const usable = mgr.installedTypes().filter((t) => !ecc || t.eccSupported);
        assert.equal(usable.length, board.types.filter((_, i) => !ecc || mgr.installedTypes()[i]!.eccSupported).length);
        const short: string[] = [];
        for (const t of usable) {
          const yamlMax = board.types.find((y) => y.id === t.id)!.maxInstance;
          const n = available(mgr, t, chip.totalVfs);
          if (n !== yamlMax) short.push(`${t.name}: available ${n} of ${yamlMax}`);
        }
        assert.deepEqual(short, [], 'every type is available max_instance times on an empty GPU');

        // Not just the count: fill the GPU with each type, guest FB placement and management heap for every vGPU.
        for (const t of usable) {
          const heaps = [];
          for (let vf = 0; vf < t.maxInstance; vf++) {
            mgr.abi.writeCurrent(vf, String(t.id));
            heaps.push(mgr.reserveHeap({ vf, size: t.gspHeapSize, owner: `vf${vf}` }));
          }
          assert.equal(available(mgr, t, chip.totalVfs), 0, `${t.name}: nothing left once full`);
          for (const h of heaps) r.gpu.memory.free(h);
          for (let vf = 0; vf < t.maxInstance; vf++) mgr.abi.writeCurrent(vf, '0');
        }
        await mgr.close();
      });
    }
  }
}
