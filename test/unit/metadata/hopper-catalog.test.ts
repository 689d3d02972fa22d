/**
 * metadata/hopper.yaml: NVIDIA's time-sliced C-series tables for the Hopper boards, compiled into the SAME metadata
 * file as Ada's (the daemon loads one vgpu-570.144.bin). The expectations are NVIDIA's published tables, written out
 * here independently of the YAML (docs/reference/hopper-chips.md gives the source of each).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { parseMetadata, typesFor } from '../../../core/metadata/metadata-reader.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { decodeAddVgpuTypeParams } from '../../../core/metadata/vgpu-info-record.js';
import { loadCatalogs } from '../../../metadata/compile-catalog.js';
import { DEFAULT_CATALOG_PATH, DEFAULT_CATALOG_PATHS } from '../../../metadata/default-metadata.js';

const GiB = 1n << 30n;

/** NVIDIA AI Enterprise "Hopper Architecture vGPU Types", time-sliced tables, max vGPUs per GPU (equal-size). */
const NVIDIA_TABLES: Record<number, { prefix: string; sizes: Record<number, number> }> = {
  0x2331: { prefix: 'H100', sizes: { 80: 1, 40: 2, 20: 4, 16: 6, 10: 8, 8: 10, 5: 16, 4: 20 } },
  0x2321: { prefix: 'H100L', sizes: { 94: 1, 47: 2, 23: 4, 15: 6, 11: 8, 6: 15, 4: 23 } },
  0x2330: { prefix: 'H100XM', sizes: { 80: 1, 40: 2, 20: 4, 16: 6, 10: 8, 8: 10, 5: 16, 4: 20 } },
  0x2335: { prefix: 'H200X', sizes: { 141: 1, 70: 2, 35: 4, 28: 5, 17: 8, 14: 10, 8: 16, 7: 20, 4: 32 } },
  0x233b: { prefix: 'H200', sizes: { 141: 1, 70: 2, 35: 4, 28: 5, 17: 8, 14: 10, 8: 16, 7: 20, 4: 32 } },
  0x2329: { prefix: 'H20', sizes: { 96: 1, 48: 2, 24: 4, 16: 6, 12: 8, 6: 16, 4: 24 } },
};

const catalog = loadCatalogs(DEFAULT_CATALOG_PATHS);
const file = parseMetadata(buildMetadata(catalog.spec), { expectedGspVersion: '570.144' });
/** The GSP view of a blob's types, decoded from the RM control the file carries (profile size lives there). */
const infosOf = (dev: number) => decodeAddVgpuTypeParams(file.blobs.find((b) => b.deviceId === dev)!.rmctrlPayload).infos;

test('the default metadata file holds every Hopper board with exactly NVIDIA\'s C-series types, nominal sizes and max instances', () => {
  for (const [dev, table] of Object.entries(NVIDIA_TABLES)) {
    const types = infosOf(Number(dev));
    assert.deepEqual(types.map((t) => t.id), typesFor(file, Number(dev)).map((t) => t.id), 'kernel records and GSP records agree');
    const got = Object.fromEntries(types.map((t) => [t.name, [t.profileSize / GiB, t.maxInstance]]));
    const want = Object.fromEntries(Object.entries(table.sizes).map(([n, max]) => [`NVIDIA ${table.prefix}-${n}C`, [BigInt(n), max]]));
    assert.deepEqual(got, want, `device 0x${Number(dev).toString(16)}`);
    // Compute types only (Hopper has no display engine), each with its guest FB inside the profile.
    for (const t of types) {
      assert.equal(t.name.endsWith('C'), true, t.name);
      assert.ok(t.fbLength > 0n && t.fbLength < t.profileSize, `${t.name}: guest FB inside the profile`);
    }
  }
});

test('Ada\'s boards are still in the same file, untouched by the merge', () => {
  const adaOnly = parseMetadata(buildMetadata(loadCatalogs([DEFAULT_CATALOG_PATH]).spec), { expectedGspVersion: '570.144' });
  for (const dev of [0x26b1, 0x26b5, 0x26b9, 0x27b8]) assert.deepEqual(typesFor(file, dev), typesFor(adaOnly, dev));
});

test('catalogues that disagree on the version, or describe one device twice, are refused naming the file and key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-cat-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hopper = readFileSync(DEFAULT_CATALOG_PATHS[1]!, 'utf8');
  const older = join(dir, 'older.yaml');
  writeFileSync(older, hopper.replace('gspVersion: "570.144"', 'gspVersion: "570.124"'));
  assert.throws(() => loadCatalogs([DEFAULT_CATALOG_PATH, older]), (e) =>
    isVgpuError(e, ErrorCode.Metadata) && e.message.includes(older) && /gspVersion: 570\.124 differs from 570\.144/.test(e.message));
  const twice = join(dir, 'twice.yaml');
  writeFileSync(twice, hopper);
  assert.throws(() => loadCatalogs([DEFAULT_CATALOG_PATHS[1]!, twice]), (e) =>
    isVgpuError(e, ErrorCode.Metadata) && /twice\.yaml: boards\[0\]\.deviceId: device 0x2331 is already described in .*hopper\.yaml/.test(e.message));
});
