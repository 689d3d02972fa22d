/**
 * The buffer hash, "vgpu-buffer-hash-v1": a 64-bit change detector over the concatenation of several buffers (a
 * migration frame's header, prefix and page bytes without gluing them together). The addon
 * (`native/src/buffer-hash.cc`) computes the same function; test/native/buffer-hash.test.ts checks they agree.
 * Change neither without the other (and bump the name).
 *
 * WHY not CRC-32 (zlib) as the frame check used to be: zlib's CRC ran at ~3 GB/s and was paid on both ends of every
 * page frame, the largest CPU cost of a migration after the socket itself. This hash keeps 32 independent lanes,
 * so the addon runs it as four AVX2 vectors per 128-byte block with no shuffles (memory speed), and the fallback
 * with Math.imul.
 *
 * Definition, for the byte string S (all parts in order) of n bytes:
 *   S is zero-padded to a multiple of 128 bytes and read as 32-bit little-endian words; word k feeds lane k mod 32.
 *   per lane j:  lo_j = 0x811C9DC5, hi_j = 0x9E3779B9;  per word w of the lane:
 *                lo_j = (lo_j ^ w) * 0x01000193;  hi_j = (rotl32(hi_j, 5) ^ w) * 0x9E3779B1   (mod 2^32)
 *   a = 0x811C9DC5 ^ (n mod 2^32);  b = 0x9E3779B9 ^ floor(n / 2^32)
 *   for j = 0..31:  a = (a ^ lo_j) * 0x01000193;  b = (rotl32(b, 5) ^ hi_j) * 0x9E3779B1
 *   L = fmix32(a);  H = fmix32(b ^ L);  hash = H * 2^32 + L      (fmix32: murmur3's finaliser)
 *
 * Every step is a bijection of the lane state for a fixed word, and of `a` for a fixed lane value, so changing any
 * ONE word (a flipped byte, a flipped bit anywhere) always changes L: a single damaged spot is never missed. Random
 * multi-spot damage collides with probability ~2^-64. Not a cryptographic hash (nor was the CRC).
 */

import { fmix32 } from './page-hash.js';

export const BUFFER_HASH_NAME = 'vgpu-buffer-hash-v1';

const LANES = 32;
const BLOCK = LANES * 4;

/** Streaming state of one hash (the fallback's hashBuffers; also usable for reference checks). */
export class BufferHasher {
  private readonly lo = new Int32Array(LANES).fill(0x811c9dc5 | 0);
  private readonly hi = new Int32Array(LANES).fill(0x9e3779b9 | 0);
  private readonly stage = new Uint8Array(BLOCK);
  private readonly stageWords = new Int32Array(this.stage.buffer);
  private staged = 0;
  private n = 0;

  update(part: Uint8Array): this {
    let pos = 0;
    const len = part.length;
    this.n += len;
    if (this.staged > 0) {
      const k = Math.min(BLOCK - this.staged, len);
      this.stage.set(part.subarray(0, k), this.staged);
      this.staged += k;
      pos = k;
      if (this.staged < BLOCK) return this;
      this.blocks(this.stageWords, 0, 1);
      this.staged = 0;
    }
    const whole = Math.floor((len - pos) / BLOCK);
    if (whole > 0) {
      const at = part.byteOffset + pos;
      if (at % 4 === 0) {
        this.blocks(new Int32Array(part.buffer, at, whole * LANES), 0, whole);
      } else {
        // Unaligned start (a prefix of odd length before it): go through the staging block.
        for (let b = 0; b < whole; b++) {
          this.stage.set(part.subarray(pos + b * BLOCK, pos + (b + 1) * BLOCK));
          this.blocks(this.stageWords, 0, 1);
        }
      }
      pos += whole * BLOCK;
    }
    if (pos < len) {
      this.stage.set(part.subarray(pos), 0);
      this.staged = len - pos;
    }
    return this;
  }

  /** The 64-bit hash (the state is spent: make a new hasher for the next one). */
  digest(): bigint {
    if (this.staged > 0) {
      this.stage.fill(0, this.staged);
      this.blocks(this.stageWords, 0, 1);
      this.staged = 0;
    }
    let a = (0x811c9dc5 ^ (this.n >>> 0)) | 0;
    let b = (0x9e3779b9 ^ Math.floor(this.n / 2 ** 32)) | 0;
    for (let j = 0; j < LANES; j++) {
      a = Math.imul(a ^ this.lo[j]!, 0x01000193);
      b = Math.imul(((b << 5) | (b >>> 27)) ^ this.hi[j]!, 0x9e3779b1);
    }
    const l = fmix32(a);
    const h = fmix32(b ^ l);
    return (BigInt(h) << 32n) | BigInt(l);
  }

  private blocks(words: Int32Array, start: number, count: number): void {
    const lo = this.lo, hi = this.hi;
    for (let j = 0; j < LANES; j++) {
      let l = lo[j]!, h = hi[j]!;
      for (let i = start + j, end = start + count * LANES; i < end; i += LANES) {
        const w = words[i]!;
        l = Math.imul(l ^ w, 0x01000193);
        h = Math.imul(((h << 5) | (h >>> 27)) ^ w, 0x9e3779b1);
      }
      lo[j] = l;
      hi[j] = h;
    }
  }
}

/** vgpu-buffer-hash-v1 of the concatenation of `parts`. */
export function bufferHash(parts: readonly Uint8Array[]): bigint {
  const h = new BufferHasher();
  for (const p of parts) h.update(p);
  return h.digest();
}
