// hashBuffers ("vgpu-buffer-hash-v1"): the addon and the pure-TS fallback give the same values, the value depends
// only on the concatenated bytes (not on how they are split into parts or aligned), and any single flipped byte is
// caught — the migration stream's frame check relies on all three.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../core/contracts/exceptions.js';
import { implementations } from './fixtures/impls.js';
import { loadAddon } from '../../native/index.js';

const impls = implementations();
const addonLeg = impls.find((i) => i.name === 'addon')!;
const fallbackLeg = impls.find((i) => i.name === 'fallback')!;

/** Deterministic non-trivial bytes. */
function bytes(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

/** Independent reference written from the definition in native/buffer-hash.ts (word by word, no streaming). */
function reference(data: Uint8Array): bigint {
  const padded = new Uint8Array(Math.ceil(data.length / 128) * 128);
  padded.set(data);
  const dv = new DataView(padded.buffer);
  const lo = new Array<number>(32).fill(0x811c9dc5), hi = new Array<number>(32).fill(0x9e3779b9);
  const rotl5 = (x: number): number => ((x << 5) | (x >>> 27)) >>> 0;
  const mul = (a: number, b: number): number => Math.imul(a, b) >>> 0;
  for (let k = 0; k < padded.length / 4; k++) {
    const w = dv.getUint32(4 * k, true), j = k % 32;
    lo[j] = mul((lo[j]! ^ w) >>> 0, 0x01000193);
    hi[j] = mul((rotl5(hi[j]!) ^ w) >>> 0, 0x9e3779b1);
  }
  let a = (0x811c9dc5 ^ (data.length >>> 0)) >>> 0, b = (0x9e3779b9 ^ Math.floor(data.length / 2 ** 32)) >>> 0;
  for (let j = 0; j < 32; j++) {
    a = mul((a ^ lo[j]!) >>> 0, 0x01000193);
    b = mul((rotl5(b) ^ hi[j]!) >>> 0, 0x9e3779b1);
  }
  const fmix = (h: number): number => {
    h = (h ^ (h >>> 16)) >>> 0; h = mul(h, 0x85ebca6b); h = (h ^ (h >>> 13)) >>> 0; h = mul(h, 0xc2b2ae35); return (h ^ (h >>> 16)) >>> 0;
  };
  const l = fmix(a);
  return (BigInt(fmix((b ^ l) >>> 0)) << 32n) | BigInt(l);
}

describe('hashBuffers (vgpu-buffer-hash-v1)', () => {
  it('the built addon exports it (otherwise the addon leg would silently run the TS function)', { skip: addonLeg.skip }, () => {
    const raw = loadAddon();
    assert.ok(!(raw instanceof Error));
    assert.equal(typeof (raw as unknown as { hashBuffers?: unknown }).hashBuffers, 'function', 'run npm run build:native');
  });

  for (const impl of impls) {
    it(`${impl.name}: matches the reference for lengths around the 128-byte block and for 1 MiB`, { skip: impl.skip }, () => {
      for (const n of [0, 1, 3, 4, 5, 127, 128, 129, 255, 256, 1000, 4096 + 16, (1 << 20) + 40]) {
        const b = bytes(n, n + 1);
        assert.equal(impl.ops.hashBuffers([b]), reference(b), `length ${n}`);
      }
    });

    it(`${impl.name}: the split into parts and their alignment do not matter`, { skip: impl.skip }, () => {
      const whole = bytes(300_001, 7);
      const want = impl.ops.hashBuffers([whole]);
      const cuts = [[0], [1], [16, 32], [3, 131, 133, 4099], [299_999], [128, 256, 384], [5, 5, 5]];
      for (const c of cuts) {
        const parts: Buffer[] = [];
        let at = 0;
        for (const x of c) { parts.push(whole.subarray(at, x)); at = Math.max(at, x); }
        parts.push(whole.subarray(at));
        assert.equal(impl.ops.hashBuffers(parts), want, `cuts ${c.join(',')}`);
      }
      // Odd byte offset inside its ArrayBuffer (a socket chunk's subarray is anywhere).
      const shifted = Buffer.alloc(whole.length + 3);
      whole.copy(shifted, 3);
      assert.equal(impl.ops.hashBuffers([shifted.subarray(3)]), want);
    });

    it(`${impl.name}: any single flipped byte changes the hash, as does the length`, { skip: impl.skip }, () => {
      const b = bytes(4096 + 40, 11);
      const h0 = impl.ops.hashBuffers([b]);
      for (let i = 0; i < b.length; i += 1) {
        for (const bit of [0x01, 0x80]) {
          b[i]! ^= bit;
          assert.notEqual(impl.ops.hashBuffers([b]), h0, `byte ${i} bit ${bit}`);
          b[i]! ^= bit;
        }
      }
      assert.notEqual(impl.ops.hashBuffers([b, Buffer.alloc(1)]), h0, 'a trailing zero byte is a different input');
      assert.notEqual(impl.ops.hashBuffers([Buffer.alloc(5)]), impl.ops.hashBuffers([Buffer.alloc(4)]));
    });

    it(`${impl.name}: refuses what is not an array of Uint8Arrays with VGPU_EINVAL`, { skip: impl.skip }, () => {
      for (const bad of [[new Uint16Array(4)], ['text'], 42]) {
        assert.throws(() => impl.ops.hashBuffers(bad as unknown as Uint8Array[]), (e: unknown) => isVgpuError(e) && e.code === 'VGPU_EINVAL' && e.hint.length > 0);
      }
    });
  }

  it('addon and fallback agree on random inputs and splits', { skip: addonLeg.skip }, () => {
    for (let s = 1; s <= 40; s++) {
      const b = bytes(s * 997, s);
      const cut = (s * 31) % b.length;
      const parts = [b.subarray(0, cut), b.subarray(cut)];
      assert.equal(addonLeg.ops.hashBuffers(parts), fallbackLeg.ops.hashBuffers(parts), `seed ${s}`);
    }
  });
});
