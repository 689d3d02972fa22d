/**
 * Fuzz: 10,000 mutated metadata files (bit flips, byte sets, u64 sets, truncations, extensions; the CRC re-sealed
 * on half so mutations reach the checks behind it). Each either parses consistently — re-serialising gives the
 * same bytes and parses to the same object — or throws VgpuError(Metadata) with an offset inside the file and a
 * field name. Never another exception, never a hang. Seeded (FUZZ_SEED=n to replay).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { sealMetadataCrc } from '../../../core/metadata/metadata-format.js';
import { parseMetadata } from '../../../core/metadata/metadata-reader.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { decodeAddVgpuTypeParams, encodeAddVgpuTypeParams, VGPU_INFO } from '../../../core/metadata/vgpu-info-record.js';
import { compileCatalog } from '../../../metadata/compile-catalog.js';
import { DEFAULT_CATALOG_PATH } from '../../../metadata/default-metadata.js';
import { sampleSpec } from './metadata-test-helpers.js';

const ITERATIONS = 10_000;
const seed0 = Number(process.env.FUZZ_SEED ?? 0x5eed1234);

/** xorshift32: small, fast, reproducible. */
function rng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = (): number => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s;
  };
  return { next, below: (n: number) => next() % n };
}

function bases(): Uint8Array[] {
  const small = buildMetadata(sampleSpec());
  // Files whose payloads are real ADD_VGPU_TYPE params (334,344 bytes each, the fixed C struct): one blob, and two
  // blobs of two boards. The shipped six-board file (2 MB) would make each mutation copy and CRC 2 MB for no new path.
  const cat = compileCatalog(readFileSync(DEFAULT_CATALOG_PATH, 'utf8'));
  const blobOf = (deviceId: number) => {
    const board = cat.boards.find((b) => b.deviceId === deviceId)!;
    const infos = board.infos.slice(0, 2);
    return {
      ...cat.spec.blobs.find((b) => b.deviceId === deviceId)!,
      rmctrlPayload: encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos }),
      rmctrlVgpuInfoSize: BigInt(infos.length * VGPU_INFO.bytes),
      types: board.types.slice(0, 2),
    };
  };
  const one = buildMetadata({ ...cat.spec, blobs: [blobOf(0x27b8)] });
  const two = buildMetadata({ ...cat.spec, blobs: [blobOf(0x26b1), blobOf(0x26b5)] });
  return [small, one, two];
}

const INTERESTING_U64 = [0n, 1n, 15n, 16n, 17n, 72n, 96n, 0xffn, 0xffffn, 0xffffffffn, 1n << 63n, (1n << 64n) - 1n];

function mutate(base: Uint8Array, r: ReturnType<typeof rng>): Uint8Array {
  // Aim half the positions at the header and first blob headers, where most checks live.
  const pos = (len: number) => (r.below(2) === 0 ? r.below(Math.min(len, 420)) : r.below(len));
  let b = base.slice();
  const rounds = 1 + r.below(3);
  for (let k = 0; k < rounds; k++) {
    switch (r.below(6)) {
      case 0: { const p = pos(b.length); b[p]! ^= 1 << r.below(8); break; }
      case 1: { const p = pos(b.length); b[p] = [0, 1, 0x7f, 0x80, 0xff, r.below(256)][r.below(6)]!; break; }
      case 2: {
        if (b.length < 8) break;
        const p = Math.min(pos(b.length) & ~7, b.length - 8);
        new DataView(b.buffer).setBigUint64(p, INTERESTING_U64[r.below(INTERESTING_U64.length)]!, true);
        break;
      }
      case 3: b = b.slice(0, r.below(b.length + 1)); break;
      case 4: { const ext = new Uint8Array(b.length + 1 + r.below(200)); ext.set(b); for (let i = b.length; i < ext.length; i++) ext[i] = r.below(3) ? 0 : r.below(256); b = ext; break; }
      default: { const p = pos(b.length); b.fill(0, p, p + r.below(64)); break; }
    }
  }
  return b;
}

describe('metadata fuzz', () => {
  it(`${ITERATIONS} mutated files parse consistently or fail with VgpuError(Metadata)`, { timeout: 60_000 }, () => {
    const r = rng(seed0);
    const files = bases();
    let accepted = 0;
    const fields = new Map<string, number>();
    for (let i = 0; i < ITERATIONS; i++) {
      const reseal = i % 2 === 0;
      let bytes = mutate(files[r.below(files.length)]!, r);
      if (reseal && bytes.length >= 16) bytes = sealMetadataCrc(bytes);
      let parsed;
      try {
        parsed = parseMetadata(bytes);
      } catch (e) {
        if (!(e instanceof VgpuError) || e.code !== ErrorCode.Metadata) {
          assert.fail(`iteration ${i} (seed ${seed0}): unexpected ${e instanceof Error ? e.stack : String(e)}`);
        }
        const { offset, field } = e.details as { offset: unknown; field: unknown };
        assert.ok(typeof offset === 'number' && offset >= 0 && offset <= bytes.length, `iteration ${i}: offset ${String(offset)} outside the ${bytes.length}-byte file`);
        assert.ok(typeof field === 'string' && field.length > 0 && e.message.includes(field), `iteration ${i}: ${e.message}`);
        const key = field.replace(/\[\d+\]/g, '[]');
        fields.set(key, (fields.get(key) ?? 0) + 1);
        continue;
      }
      accepted++;
      const again = buildMetadata(parsed);
      assert.deepEqual(again, bytes, `iteration ${i}: accepted file is not canonical`);
      assert.deepEqual(parseMetadata(again), parsed, `iteration ${i}: re-serialised file parses differently`);
    }
    // The fuzz must really exercise both sides and reach well past the CRC check.
    if (process.env.FUZZ_STATS) console.log(accepted, [...fields].join(" "));
    assert.ok(accepted > 100, `only ${accepted} mutants accepted`);
    const deep = [...fields.keys()].filter((f) => !['crc32', 'metadata_hdr', 'identifier'].includes(f));
    assert.ok(deep.length >= 15, `only reached ${deep.join(', ')}`);
  });

  it('mutated ADD_VGPU_TYPE payloads (what the simulated GSP parses) decode or fail with VgpuError(Metadata)', { timeout: 60_000 }, () => {
    const r = rng(seed0 ^ 0x5a5a);
    const cat = compileCatalog(readFileSync(DEFAULT_CATALOG_PATH, 'utf8'));
    const base = encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: cat.boards[0]!.infos.slice(0, 3) });
    // Aim at the header and the used records (the modelled fields sit in the first 444 bytes of each).
    const hot = 8 + 3 * VGPU_INFO.bytes;
    let accepted = 0;
    const fields = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      let b = base.slice();
      for (let k = 0; k <= r.below(3); k++) {
        const rec = r.below(4);
        const p = rec === 3 ? r.below(8) : 8 + rec * VGPU_INFO.bytes + r.below(r.below(4) === 0 ? VGPU_INFO.bytes : 448);
        switch (r.below(4)) {
          case 0: b[p]! ^= 1 << r.below(8); break;
          case 1: b[p] = [0, 1, 2, 0x41, 0x7f, 0xff][r.below(6)]!; break;
          case 2: if (p + 8 <= b.length) new DataView(b.buffer).setBigUint64(p & ~7, INTERESTING_U64[r.below(INTERESTING_U64.length)]!, true); break;
          default: if (r.below(8) === 0) b = b.slice(0, r.below(hot)); else b.fill(0, p, p + r.below(40));
        }
      }
      try {
        const d = decodeAddVgpuTypeParams(b);
        accepted++;
        for (const info of d.infos) assert.ok(info.fbLength <= info.profileSize && info.maxInstance >= 1 && info.maxInstance <= 32, `iteration ${i}`);
      } catch (e) {
        if (!(e instanceof VgpuError) || e.code !== ErrorCode.Metadata) assert.fail(`iteration ${i}: unexpected ${e instanceof Error ? e.stack : String(e)}`);
        const { offset, field } = e.details as { offset: number; field: string };
        assert.ok(offset >= 0 && offset <= base.length, `iteration ${i}: offset ${offset}`);
        fields.add(field.replace(/\[\d+\]/g, '[]'));
      }
    }
    assert.ok(accepted > 100, `only ${accepted} payloads accepted`);
    assert.ok(fields.size >= 8, `only reached ${[...fields].join(', ')}`);
  });
});
