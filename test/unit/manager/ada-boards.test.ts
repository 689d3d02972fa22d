/**
 * Every board of every generation's catalogue (metadata/ada.yaml, metadata/hopper.yaml) through the manager: the creatable list of an empty GPU is the board's
 * table (read straight from the YAML), a GPU filled with the largest type offers nothing more, and every type reaches
 * its maximum of the mode on an empty GPU — max_instance in equal-size (homogeneous) mode, maxInstanceMixed in
 * mixed-size (heterogeneous) mode — and not one more.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { DEFAULT_CATALOG_PATHS } from '../../../metadata/compile-to-file.js';
import { loadCatalogs } from '../../../metadata/compile-catalog.js';
import { emptyBooks } from '../../../hal/mock/mock-gpu.js';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { MiB, rig } from './fixture.js';

interface YamlType { id: number; name: string; maxInstance: number; maxInstanceMixed: number }

/** The profile size of a type name (N GiB for -N<series>). */
const nominalGiB = (t: YamlType): number => Number(/-(\d+)[QBAC]$/.exec(t.name)![1]);
interface YamlBoard { key: string; deviceId: number; fbMiB: number; types: YamlType[] }

const yamlBoards = DEFAULT_CATALOG_PATHS.flatMap((p) => (parse(readFileSync(p, 'utf8')) as { boards: YamlBoard[] }).boards);
const metadata = buildMetadata(loadCatalogs(DEFAULT_CATALOG_PATHS).spec);

for (const board of yamlBoards) {
  for (const policy of ['homogeneous', 'heterogeneous'] as const) {
    test(`${board.key} (${policy}): empty GPU lists the table; filled with the largest type lists nothing`, async () => {
      const r = await rig({
        device: { deviceId: board.deviceId, fbBytes: BigInt(board.fbMiB) * MiB, totalVfs: 32 },
        segmentSize: 32n * MiB,
        metadata,
      });
      const mgr = await r.create({ policy });
      const expected = 'ID    : vGPU Name\n' + board.types.map((t) => `${String(t.id).padEnd(5)} : ${t.name}\n`).join('');
      assert.equal(mgr.abi.readCreatable(0), expected);

      const largest = board.types.reduce((a, b) => (nominalGiB(b) > nominalGiB(a) ? b : a));
      for (let vf = 0; vf < largest.maxInstance; vf++) mgr.abi.writeCurrent(vf, String(largest.id));
      for (let vf = largest.maxInstance; vf < 32; vf++) assert.equal(mgr.abi.readCreatable(vf), '', `VF ${vf}`);

      for (let vf = 0; vf < largest.maxInstance; vf++) mgr.abi.writeCurrent(vf, '0');
      // every type reaches the maximum of the mode on its own, and the next one is refused naming the limit
      for (const t of board.types) {
        const max = policy === 'homogeneous' ? t.maxInstance : t.maxInstanceMixed;
        assert.ok(Number.isInteger(max) && max >= 1, `${t.name}: the YAML gives a maximum for ${policy} mode`);
        for (let vf = 0; vf < max; vf++) mgr.abi.writeCurrent(vf, String(t.id));
        if (max < 32) {
          assert.throws(() => mgr.abi.writeCurrent(max, String(t.id)), (e) => isVgpuError(e, 'VGPU_ENOSPC')
            && (policy === 'homogeneous' || (e as Error).message.includes(`mixed-size (heterogeneous) mode allows at most ${max} vGPUs`)), `${t.name}: one more than ${max}`);
        }
        for (let vf = 0; vf < max; vf++) mgr.abi.writeCurrent(vf, '0');
      }
      await mgr.close();
      assert.deepEqual(r.mock.books().clients, emptyBooks().clients);
    });
  }
}
