/**
 * The shipped catalogue (metadata/ada.yaml) compiles to a file that parses back to exactly what the YAML says,
 * for every board; the sourced facts (RFC ids, the decoded L40-1B record) survive; the catalogue errors name keys.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { parseMetadata, typesFor } from '../../../core/metadata/metadata-reader.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { decodeAddVgpuTypeParams, kernelTypeFromInfo } from '../../../core/metadata/vgpu-info-record.js';
import { compileCatalog } from '../../../metadata/compile-catalog.js';
import { DEFAULT_CATALOG_PATH } from '../../../metadata/default-metadata.js';
import { boardByDeviceId } from '../../../hal/ada-lovelace/chips.js';

const text = readFileSync(DEFAULT_CATALOG_PATH, 'utf8');
// The YAML read independently of the compiler: expectations below come from the source, not from compiled output.
const yaml = parseYaml(text) as any;
const file = parseMetadata(buildMetadata(compileCatalog(text).spec), { expectedGspVersion: '570.144' });
const MiB = 1n << 20n;

describe('ada catalogue', () => {
  it('has the header 18.1 / 570.144 and the six Ada boards', () => {
    assert.equal(file.vgpuMajor, 18);
    assert.equal(file.vgpuMinor, 1);
    assert.equal(file.gspVersion, '570.144');
    assert.deepEqual(file.blobs.map((b) => b.deviceId), [0x26b1, 0x26b2, 0x26b5, 0x26b9, 0x26ba, 0x27b8]);
  });

  it('round-trips every type of every board to the YAML values', () => {
    for (const board of yaml.boards) {
      const types = typesFor(file, board.deviceId);
      assert.equal(types.length, board.types.length, board.key);
      board.types.forEach((t: Record<string, number | string>, i: number) => {
        const series = String(t.name).slice(-1);
        const defaults = yaml.series[series];
        const sub = (t.vdevSubsystem as number | undefined) ?? (t.id as number);
        assert.deepEqual(types[i], {
          id: t.id,
          name: t.name,
          vdevId: board.deviceId * 0x10000 + sub,
          pdevId: board.deviceId,
          fbLength: BigInt(t.fbMiB as number) * MiB,
          gspHeapSize: BigInt(t.heapMiB as number) * MiB,
          bar1LengthMiB: t.bar1MiB,
          maxInstance: t.maxInstance,
          eccSupported: (t.eccSupported as unknown as boolean | undefined) ?? defaults.eccSupported,
          fbReservation: BigInt((t.fbReservationMiB as number | undefined) ?? 0) * MiB,
        }, `${board.key} ${t.name}`);
      });
    }
  });

  it('uploads a payload that says the same as the kernel records, with the series display facts', () => {
    for (const blob of file.blobs) {
      const p = decodeAddVgpuTypeParams(blob.rmctrlPayload);
      assert.equal(p.discardVgpuTypes, true);
      assert.deepEqual(p.infos.map(kernelTypeFromInfo), blob.types);
      for (const info of p.infos) {
        const d = yaml.series[info.series];
        assert.equal(info.series, info.name.slice(-1));
        assert.equal(info.vgpuClass, d.vgpuClass);
        assert.equal(`${info.maxResolutionX}x${info.maxResolutionY}`, d.maxResolution);
        assert.equal(info.numHeads, d.numHeads);
      }
      assert.equal(blob.rmctrlVgpuInfoOffset, 8n);
      assert.equal(blob.rmctrlVgpuInfoSize, BigInt(p.infos.length * 160));
    }
  });

  it('keeps the sourced facts: RTX 6000 Ada Q ids 941-950 and the decoded L40-1B record', () => {
    const q = typesFor(file, 0x26b1).filter((t) => t.name.endsWith('Q'));
    assert.deepEqual(q.map((t) => [t.id, t.name]), [1, 2, 3, 4, 6, 8, 12, 16, 24, 48].map((n, i) => [941 + i, `NVIDIA RTX6000-Ada-${n}Q`]));
    const l40 = typesFor(file, 0x26b5).find((t) => t.name === 'NVIDIA L40-1B');
    assert.deepEqual(l40, { id: 869, name: 'NVIDIA L40-1B', vdevId: 0x26b5176d, pdevId: 0x26b5, fbLength: 1n << 30n,
      gspHeapSize: 32n * MiB, bar1LengthMiB: 256, maxInstance: 32, eccSupported: false, fbReservation: 0n });
    const info = decodeAddVgpuTypeParams(file.blobs[2]!.rmctrlPayload).infos.find((i) => i.id === 869)!;
    assert.deepEqual([info.vgpuClass, info.numHeads, info.maxResolutionX, info.maxResolutionY, info.maxPixels, info.frlConfig, info.cudaEnabled],
      ['NVS', 4, 5120, 2880, 16_384_000, 45, false]);
  });

  it('uses the real ids seen in public sources: nova-core\'s L40-1Q record and an L40S host\'s types', () => {
    const l40q = typesFor(file, 0x26b5).find((t) => t.name === 'NVIDIA L40-1Q');
    assert.deepEqual(l40q && [l40q.id, l40q.vdevId, l40q.fbLength, l40q.gspHeapSize, l40q.maxInstance, l40q.eccSupported],
      [871, 0x26b5176f, 1n << 30n, 32n * MiB, 32, true]);
    const l40s = new Map(typesFor(file, 0x26b9).map((t) => [t.name, t.id]));
    const sizes = [1, 2, 3, 4, 6, 8, 12, 16, 24, 48];
    assert.deepEqual(sizes.map((n) => l40s.get(`NVIDIA L40S-${n}Q`)), sizes.map((_, i) => 1147 + i));
    assert.deepEqual(sizes.map((n) => l40s.get(`NVIDIA L40S-${n}A`)), sizes.map((_, i) => 1157 + i));
    assert.deepEqual([l40s.get('NVIDIA L40S-1B'), l40s.get('NVIDIA L40S-2B')], [1145, 1146]);
  });

  it('gives -N types min(32, board GiB / N) instances, and all of them fit in the FB left for vGPUs', () => {
    // Written out from the YAML here, not through core/manager: whole VMMU segments per guest, and below them the
    // manager's heap room (largest maxInstance x heap + 32 scratch pages of 4 KiB), rounded up to a segment.
    for (const board of yaml.boards) {
      const gib = board.fbMiB / 1024;
      const seg = board.vmmuSegmentMiB as number;
      const heapRoomMiB = Math.max(...board.types.map((t: any) => t.maxInstance * t.heapMiB)) + (32 * 4096) / 2 ** 20;
      const regionMiB = Math.floor(board.vgpuFbMiB / seg) * seg - Math.ceil(heapRoomMiB / seg) * seg;
      for (const t of board.types) {
        const n = Number(/-(\d+)[QBAC]$/.exec(t.name)![1]);
        assert.equal(t.maxInstance, Math.min(32, Math.floor(gib / n)), t.name);
        assert.ok(t.fbMiB <= n * 1024, `${t.name} guest FB above its nominal size`);
        assert.equal(t.fbMiB % seg, 0, `${t.name} guest FB is whole ${seg} MiB segments`);
        assert.ok(t.maxInstance * t.fbMiB <= regionMiB, `${t.name} does not fit ${t.maxInstance} times in ${regionMiB} MiB`);
      }
    }
  });

  it('states each board\'s VMMU segment size as the HAL\'s chip table does', () => {
    for (const board of yaml.boards) {
      const chip = boardByDeviceId(board.deviceId);
      assert.ok(chip !== undefined, board.key);
      assert.equal(BigInt(board.vmmuSegmentMiB) * MiB, chip.vmmuSegmentSize, board.key);
      assert.equal(BigInt(board.fbMiB) * MiB, chip.fbBytes, board.key);
    }
  });

  it('cites a source for every board table and every type', () => {
    for (const board of yaml.boards) {
      assert.match(board.source, /Virtual GPU Types for Supported GPUs/);
      assert.ok(board.fbSource.length > 0);
      for (const t of board.types) assert.ok(['rfc-v2-doc', 'rfc-v1-decoded', 'public-observed', 'assigned-by-vgpud'].includes(t.source), t.name);
    }
  });
});

describe('catalogue errors name the YAML key', () => {
  const broken = (edit: (doc: typeof yaml) => void): string => {
    const doc = structuredClone(yaml);
    edit(doc);
    return stringify(doc);
  };
  const expectKey = (src: string, key: string) => assert.throws(() => compileCatalog(src, 'x.yaml'), (e: unknown) => {
    assert.ok(e instanceof VgpuError && e.code === ErrorCode.Metadata, String(e));
    assert.equal(e.details.key, key);
    assert.ok(e.message.startsWith(`x.yaml: ${key}: `), e.message);
    return true;
  });
  it('reports shape errors by path', () => {
    expectKey(broken((d) => { d.boards[2].types[5].fbMiB = 'big'; }), 'boards[2].types[5].fbMiB');
    expectKey(broken((d) => { d.boards[0].types[0].maxInstance = 33; }), 'boards[0].types[0].maxInstance');
    expectKey(broken((d) => { d.boards[1].types[0].name = 'NVIDIA RTX5000-Ada-1X'; }), 'boards[1].types[0].name');
    expectKey(broken((d) => { d.boards[0].types[0].bar1MiB = 300; }), 'boards[0].types[0].bar1MiB');
    expectKey(broken((d) => { d.boards[0].typo = 1; }), 'boards[0]');
  });
  it('reports relation errors by path', () => {
    expectKey(broken((d) => { d.boards[3].types[1].id = d.boards[3].types[0].id; }), 'boards[3].types[1].id');
    expectKey(broken((d) => { d.boards[4].deviceId = d.boards[0].deviceId; }), 'boards[4].deviceId');
    expectKey(broken((d) => { d.boards[0].types[1].fbMiB = 2048; }), 'boards[0].types[1].fbMiB');
  });
  it('refuses a table an empty GPU cannot fill with maxInstance vGPUs of one type, by whole segments', () => {
    // RTX6000-Ada-3Q at the old 2976 MiB: 16 x 2976 MiB fit the FB byte-wise, but each takes 47 segments of 64 MiB
    // (3008 MiB), and 16 of those no longer fit beside the heap room: the GPU offered 15.
    const rtx3q = yaml.boards[0].types.findIndex((t: any) => t.name === 'NVIDIA RTX6000-Ada-3Q');
    assert.ok(rtx3q >= 0);
    const src = broken((d) => { d.boards[0].types[rtx3q].fbMiB = 2976; });
    expectKey(src, `boards[0].types[${rtx3q}].fbMiB`);
    assert.throws(() => compileCatalog(src, 'x.yaml'), /16 x 47 segments of 64 MiB/);
    // The heap room counts: a bigger heap on the 1 GiB type (32 x heap) pushes the region up: 24 x 2Q no longer fit.
    expectKey(broken((d) => { d.boards[0].types[0].heapMiB = 64; }), 'boards[0].types[1].fbMiB');
    // So does the segment size: the same table on 512 MiB segments cannot place 24 x 1920 MiB.
    expectKey(broken((d) => { d.boards[0].vmmuSegmentMiB = 512; }), 'boards[0].types[1].fbMiB');
    expectKey(broken((d) => { d.boards[0].vmmuSegmentMiB = 48; }), 'boards[0].vmmuSegmentMiB');
  });
  it('reports YAML syntax errors', () => {
    assert.throws(() => compileCatalog('boards: [', 'x.yaml'), (e) => e instanceof VgpuError && /YAML syntax/.test(e.message));
  });
});
