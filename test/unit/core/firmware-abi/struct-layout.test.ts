import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StructLayout } from '../../../../core/firmware-abi/struct-layout.js';

// decodeAt reads u64 fields through a zero fast path (both halves 0 → 0n): values with only one half set must
// still come back whole, in single fields, in arrays and inside nested structs.
const INNER = new StructLayout<{ a: bigint; b: number }>('inner', [{ name: 'a', type: 'u64' }, { name: 'b', type: 'u16' }]);
const OUTER = new StructLayout<{ x: number; list: bigint[]; one: bigint; inner: Array<{ a: bigint; b: number }>; tag: Uint8Array }>('outer', [
  { name: 'x', type: 'u32' },
  { name: 'list', type: 'u64', count: 6 },
  { name: 'one', type: 'u64' },
  { name: 'inner', type: INNER, count: 2 },
  { name: 'tag', type: 'bytes', count: 3 },
]);

test('u64 values with either half zero decode whole, in fields, arrays and nested structs', () => {
  const list = [0n, 1n, 0xffff_ffffn, 1n << 32n, 0xffff_ffff_0000_0000n, 0xffff_ffff_ffff_ffffn];
  const v = { x: 7, list, one: 1n << 63n, inner: [{ a: 1n << 40n, b: 3 }, { a: 0n, b: 0xffff }], tag: new Uint8Array([1, 2, 3]) };
  const back = OUTER.decode(OUTER.encode(v));
  assert.deepEqual(back, v);
  // Arrays come back at their C length, unset entries zero.
  assert.deepEqual(OUTER.decode(OUTER.encode({ list: [5n] })).list, [5n, 0n, 0n, 0n, 0n, 0n]);
});
