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
import { encodeAddVgpuTypeParams } from '../../../core/metadata/vgpu-info-record.js';
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
  const ada = buildMetadata(compileCatalog(readFileSync(DEFAULT_CATALOG_PATH, 'utf8')).spec);
  const small = buildMetadata(sampleSpec());
  // A one-blob file whose payload is our real ADD_VGPU_TYPE params, so offsets land in records often.
  const cat = compileCatalog(readFileSync(DEFAULT_CATALOG_PATH, 'utf8'));
  const l4 = cat.boards.find((b) => b.deviceId === 0x27b8)!;
  const one = buildMetadata({ ...cat.spec, blobs: [{ ...cat.spec.blobs.find((b) => b.deviceId === 0x27b8)!, rmctrlPayload: encodeAddVgpuTypeParams({ discardVgpuTypes: true, infos: l4.infos.slice(0, 2) }), rmctrlVgpuInfoSize: 320n, types: l4.types.slice(0, 2) }] });
  return [ada, small, one];
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
});
