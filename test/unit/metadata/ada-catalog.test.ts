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

/**
 * The guest FB the YAML implies, worked out here and not through core/manager: the profile (N GiB of the name) less
 * the heap, in whole VMMU segments, capped by the share of the guest-FB region each of maxInstance vGPUs gets — the
 * region being vgpuFbMiB (segment-aligned) less the manager's heap room (largest maxInstance x heap + 32 scratch
 * pages of 4 KiB) rounded up to a segment.
 */
function expectedGuestMiB(board: any, t: any): number {
  const seg = board.vmmuSegmentMiB as number;
  const heapRoomMiB = Math.max(...board.types.map((x: any) => x.maxInstance * x.heapMiB)) + (32 * 4096) / 2 ** 20;
  const regionSegs = Math.floor(board.vgpuFbMiB / seg) - Math.ceil(heapRoomMiB / seg);
  const n = Number(/-(\d+)[QBAC]$/.exec(t.name)![1]);
  return Math.min(Math.floor((n * 1024 - t.heapMiB) / seg) * seg, Math.floor(regionSegs / t.maxInstance) * seg);
}

/** BAR1 the YAML implies: the series value, or for 'profile' the smallest power of two that maps the profile. */
function expectedBar1MiB(t: any): number {
  const spec = t.bar1MiB ?? yaml.series[String(t.name).slice(-1)].bar1MiB;
  if (spec !== 'profile') return spec;
  const n = Number(/-(\d+)[QBAC]$/.exec(t.name)![1]) * 1024;
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

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
          fbLength: BigInt(expectedGuestMiB(board, t)) * MiB,
          gspHeapSize: BigInt(t.heapMiB as number) * MiB,
          bar1LengthMiB: expectedBar1MiB(t),
          maxInstance: t.maxInstance,
          eccSupported: (t.eccSupported as unknown as boolean | undefined) ?? defaults.eccSupported,
          fbReservation: BigInt((t.fbReservationMiB as number | undefined) ?? 0) * MiB,
        }, `${board.key} ${t.name}`);
      });
    }
  });

  it('uploads a payload that says the same as the kernel records, with the nominal profile and the series display facts', () => {
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
        const n = BigInt(/-(\d+)[QBAC]$/.exec(info.name)![1]!);
        assert.equal(info.profileSize, n << 30n, `${info.name}: profile = the nominal N GiB of the name`);
        assert.ok(info.fbLength + info.gspHeapSize + info.fbReservation <= info.profileSize, `${info.name}: heap and guest FB live inside the profile`);
      }
      assert.equal(blob.rmctrlPayload.byteLength, 8 + 0x40 * 5224, 'the params are the fixed-size C struct');
      assert.equal(blob.rmctrlVgpuInfoOffset, 8n);
      assert.equal(blob.rmctrlVgpuInfoSize, BigInt(p.infos.length * 5224));
    }
  });

  it('keeps the sourced facts: RTX 6000 Ada Q ids 941-950 and the decoded L40-1B record', () => {
    const q = typesFor(file, 0x26b1).filter((t) => t.name.endsWith('Q'));
    assert.deepEqual(q.map((t) => [t.id, t.name]), [1, 2, 3, 4, 6, 8, 12, 16, 24, 48].map((n, i) => [941 + i, `NVIDIA RTX6000-Ada-${n}Q`]));
    const l40 = typesFor(file, 0x26b5).find((t) => t.name === 'NVIDIA L40-1B');
    // The guest FB is the 1 GiB profile less the 32 MiB heap in whole 64 MiB segments (the RFC v1 record, from an
    // older release, gave the guest the whole profile: see docs/reference/vgpu-types.md).
    assert.deepEqual(l40, { id: 869, name: 'NVIDIA L40-1B', vdevId: 0x26b5176d, pdevId: 0x26b5, fbLength: 960n * MiB,
      gspHeapSize: 32n * MiB, bar1LengthMiB: 256, maxInstance: 32, eccSupported: false, fbReservation: 0n });
    const info = decodeAddVgpuTypeParams(file.blobs[2]!.rmctrlPayload).infos.find((i) => i.id === 869)!;
    assert.deepEqual([info.vgpuClass, info.numHeads, info.maxResolutionX, info.maxResolutionY, info.maxPixels, info.frlConfig, info.cudaEnabled, info.profileSize, info.license],
      ['NVS', 4, 5120, 2880, 16_384_000, 45, false, 1n << 30n, 'GRID-Virtual-PC,2.0;Quadro-Virtual-DWS,5.0;GRID-Virtual-WS,2.0;GRID-Virtual-WS-Ext,2.0']);
  });

  it('uses the real ids seen in public sources: nova-core\'s L40-1Q record and an L40S host\'s types', () => {
    const l40q = typesFor(file, 0x26b5).find((t) => t.name === 'NVIDIA L40-1Q');
    assert.deepEqual(l40q && [l40q.id, l40q.vdevId, l40q.fbLength, l40q.gspHeapSize, l40q.maxInstance, l40q.eccSupported],
      [871, 0x26b5176f, 960n * MiB, 32n * MiB, 32, true]);
    const l40s = new Map(typesFor(file, 0x26b9).map((t) => [t.name, t.id]));
    const sizes = [1, 2, 3, 4, 6, 8, 12, 16, 24, 48];
    assert.deepEqual(sizes.map((n) => l40s.get(`NVIDIA L40S-${n}Q`)), sizes.map((_, i) => 1147 + i));
    assert.deepEqual(sizes.map((n) => l40s.get(`NVIDIA L40S-${n}A`)), sizes.map((_, i) => 1157 + i));
    assert.deepEqual([l40s.get('NVIDIA L40S-1B'), l40s.get('NVIDIA L40S-2B')], [1145, 1146]);
  });

  it('gives -N types min(32, board GiB / N) instances, and all of them fit in the FB left for vGPUs', () => {
    for (const board of yaml.boards) {
      const gib = board.fbMiB / 1024;
      const seg = board.vmmuSegmentMiB as number;
      const heapRoomMiB = Math.max(...board.types.map((t: any) => t.maxInstance * t.heapMiB)) + (32 * 4096) / 2 ** 20;
      const regionMiB = Math.floor(board.vgpuFbMiB / seg) * seg - Math.ceil(heapRoomMiB / seg) * seg;
      const guest = new Map(typesFor(file, board.deviceId).map((t) => [t.name, Number(t.fbLength / MiB)]));
      for (const t of board.types) {
        const n = Number(/-(\d+)[QBAC]$/.exec(t.name)![1]);
        const g = guest.get(t.name)!;
        assert.equal(t.maxInstance, Math.min(32, Math.floor(gib / n)), t.name);
        assert.ok(g + t.heapMiB <= n * 1024, `${t.name} guest FB and heap exceed the profile`);
        assert.equal(g % seg, 0, `${t.name} guest FB is whole ${seg} MiB segments`);
        assert.ok(t.maxInstance * g <= regionMiB, `${t.name} does not fit ${t.maxInstance} times in ${regionMiB} MiB`);
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
    for (const s of Object.values(yaml.series) as any[]) assert.ok(s.source.length > 20, 'every series says where its values come from');
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
    expectKey(broken((d) => { d.boards[2].types[5].heapMiB = 'big'; }), 'boards[2].types[5].heapMiB');
    expectKey(broken((d) => { d.boards[2].types[5].fbMiB = 2048; }), 'boards[2].types[5]');
    expectKey(broken((d) => { d.boards[0].types[0].maxInstance = 33; }), 'boards[0].types[0].maxInstance');
    expectKey(broken((d) => { d.boards[1].types[0].name = 'NVIDIA RTX5000-Ada-1X'; }), 'boards[1].types[0].name');
    expectKey(broken((d) => { d.boards[0].types[0].bar1MiB = 300; }), 'boards[0].types[0].bar1MiB');
    expectKey(broken((d) => { d.boards[0].typo = 1; }), 'boards[0]');
  });
  it('reports relation errors by path', () => {
    expectKey(broken((d) => { d.boards[3].types[1].id = d.boards[3].types[0].id; }), 'boards[3].types[1].id');
    expectKey(broken((d) => { d.boards[4].deviceId = d.boards[0].deviceId; }), 'boards[4].deviceId');
    expectKey(broken((d) => { d.boards[5].types[7].name = 'NVIDIA L4-48Q'; }), 'boards[5].types[7].name');
  });
  it('refuses a table whose types leave no guest FB once max_instance heaps are set aside', () => {
    // 2 GiB left for vGPUs: 32 heaps of 32 MiB take 1 GiB of it; 32 x 1Q would get under one 64 MiB segment each.
    const src = broken((d) => { d.boards[0].vgpuFbMiB = 2048; });
    expectKey(src, 'boards[0].types[0].maxInstance');
    assert.throws(() => compileCatalog(src, 'x.yaml'), /leaves no guest FB/);
    expectKey(broken((d) => { d.boards[0].vmmuSegmentMiB = 48; }), 'boards[0].vmmuSegmentMiB');
  });
  it('reports YAML syntax errors', () => {
    assert.throws(() => compileCatalog('boards: [', 'x.yaml'), (e) => e instanceof VgpuError && /YAML syntax/.test(e.message));
  });
});
