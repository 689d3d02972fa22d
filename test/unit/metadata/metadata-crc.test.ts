/**
 * The header CRC is Linux `crc32_le(0xFFFFFFFF, …)` without the final xor. Checked against an independent
 * table-driven implementation written here from the definition (reflected polynomial 0xEDB88320).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { computeFileCrc, metadataCrc32, sealMetadataCrc } from '../../../core/metadata/metadata-format.js';

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** Kernel `crc32_le(seed, p, len)`: no inversion in or out. */
function crc32Le(seed: number, data: Uint8Array): number {
  let crc = seed >>> 0;
  for (const byte of data) crc = (TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)) >>> 0;
  return crc;
}

describe('metadata CRC', () => {
  it('matches crc32_le seeded 0xFFFFFFFF without final xor on the check string', () => {
    const data = new TextEncoder().encode('123456789');
    // The standard CRC-32 of "123456789" is 0xCBF43926; without the final inversion it is its complement.
    assert.equal(crc32Le(0xffffffff, data), 0x340bc6d9);
    assert.equal(metadataCrc32(data), 0x340bc6d9);
  });
  it('matches the table implementation on empty, short and random inputs', () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 24;
    for (const len of [0, 1, 3, 16, 255, 4096, 40000]) {
      const d = Uint8Array.from({ length: len }, rnd);
      assert.equal(metadataCrc32(d), crc32Le(0xffffffff, d), `length ${len}`);
    }
  });
  it('covers bytes [16, end) only and seals in place', () => {
    const file = new Uint8Array(300).map((_, i) => i & 0xff);
    sealMetadataCrc(file);
    const stored = new DataView(file.buffer).getUint32(8, true);
    assert.equal(stored, crc32Le(0xffffffff, file.subarray(16)));
    file[0] = file[0]! ^ 0xff; // before the covered range: no effect
    assert.equal(computeFileCrc(file), stored);
    file[16] = file[16]! ^ 1;
    assert.notEqual(computeFileCrc(file), stored);
  });
});
