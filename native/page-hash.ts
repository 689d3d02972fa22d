/**
 * The page hash, "vgpu-page-hash-v1". The addon (`native/src/hash.cc`) computes the same function; the contract
 * test checks that both give identical values. Change neither without the other (and bump the name).
 *
 * Definition, for a page of N bytes (N a power of two ≥ 8) read as 32-bit little-endian words w[0..N/4):
 *   lo = 0x811C9DC5;  hi = 0x9E3779B9
 *   for each w:  lo = (lo ^ w) * 0x01000193         mod 2^32   (FNV-1a step over words, not bytes)
 *                hi = (rotl32(hi, 5) ^ w) * 0x9E3779B1  mod 2^32
 *   L = fmix32(lo);  H = fmix32(hi ^ L)
 *   hash = H * 2^32 + L   (a u64)
 *   fmix32(h): h ^= h >>> 16; h *= 0x85EBCA6B; h ^= h >>> 13; h *= 0xC2B2AE35; h ^= h >>> 16   (murmur3 finaliser)
 *
 * Why two 32-bit lanes instead of a true 64-bit hash: JavaScript has no fast 64-bit multiply (BigInt costs ~50×),
 * but Math.imul is one instruction, so the fallback hashes at a few GB/s instead of tens of MB/s. It is a change
 * detector for migration dirty tracking and scrub checks, not a cryptographic hash.
 */

export const PAGE_HASH_NAME = 'vgpu-page-hash-v1';

/** murmur3's 32-bit finaliser (also the buffer hash's, native/buffer-hash.ts). */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Hash `count` pages of `wordsPerPage` words starting at word `start` of `words`; write page i's hash as two u32
 * halves into `out32[2*(outIndex+i)]` (low) and `out32[2*(outIndex+i)+1]` (high), i.e. into the little-endian
 * BigUint64Array that shares `out32`'s buffer.
 */
export function hashPagesInto(words: Int32Array, start: number, wordsPerPage: number, count: number,
  out32: Uint32Array, outIndex: number): void {
  for (let p = 0; p < count; p++) {
    let lo = 0x811c9dc5 | 0;
    let hi = 0x9e3779b9 | 0;
    const end = start + (p + 1) * wordsPerPage;
    for (let i = start + p * wordsPerPage; i < end; i++) {
      const w = words[i]!;
      lo = Math.imul(lo ^ w, 0x01000193);
      hi = Math.imul(((hi << 5) | (hi >>> 27)) ^ w, 0x9e3779b1);
    }
    const l = fmix32(lo);
    out32[2 * (outIndex + p)] = l;
    out32[2 * (outIndex + p) + 1] = fmix32(hi ^ l);
  }
}
