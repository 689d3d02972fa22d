// Run-time kernel choice (native/src/kernels.h): every fill, page-hash and buffer-hash kernel THIS CPU can run gives
// the pure-TS fallback's bytes and hashes — the migration stream's format depends on the hash values, and a host
// with another CPU picks another kernel. Also: the report names the CPU, and a bad override changes nothing.
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { loadAddon, loadNativeOps } from '../../native/index.js';
import { fallbackOps } from '../../native/fallback.js';
import type { SharedArena } from '../../native/native-ops.js';
import { referencePageHash } from './fixtures/reference-hash.js';
import { scribble } from './fixtures/scribble.js';
import { assetPath } from '../../core/runtime/package-root.js';

const addon = loadAddon();
const skip = process.env.VGPUD_NO_NATIVE === '1' ? 'VGPUD_NO_NATIVE=1: addon leg disabled'
  : addon instanceof Error ? `native addon did not build (${addon.message.split('\n')[0]})`
    : addon.setKernels === undefined ? 'stale addon without run-time kernels: npm run build:native' : false;
const raw = addon instanceof Error ? undefined : addon;
const MiB = 1n << 20n;

describe('run-time kernels', { skip }, () => {
  const ops = loadNativeOps(undefined, { fresh: true });
  const arenas: SharedArena[] = [];
  const pair = (size: bigint): [SharedArena, SharedArena] => {
    const a = ops.createArena({ size, backing: 'memfd' });
    const j = fallbackOps.createArena({ size, backing: 'sab' });
    arenas.push(a, j);
    return [a, j];
  };
  after(() => {
    raw?.setKernels?.({ fill: 'auto', pageHash: 'auto', bufferHash: 'auto', streamThreshold: 'auto' });
    arenas.forEach((a) => a.close());
  });

  it('reports the CPU it chose for and only kernels that CPU can run', () => {
    const r = ops.kernels();
    assert.ok(r.cpu.arch.length > 0);
    if (r.cpu.arch === 'x86_64') {
      assert.ok(r.cpu.vendor.length > 0, 'cpuid vendor');
      assert.ok(r.cpu.features.includes('sse2'), 'every x86-64 has SSE2');
      assert.ok(r.available.fill.includes('stream-sse2'));
    }
    assert.ok(r.available.fill.includes(r.fill.large));
    assert.ok(r.available.pageHash.includes(r.pageHash));
    assert.ok(r.available.bufferHash.includes(r.bufferHash));
    assert.equal(r.available.pageHash.includes('avx2-staggered'), r.cpu.features.includes('avx2'));
    assert.equal(r.overridden, false);
  });

  it('VGPUD_KERNELS pins kernels when the addon loads; an item it cannot apply is ignored with a warning', () => {
    const addonFile = assetPath('native', 'build', 'Release', 'vgpud_native.node');
    const r = spawnSync(process.execPath, ['-e', `process.stdout.write(JSON.stringify(require(${JSON.stringify(addonFile)}).kernels()))`], {
      env: { ...process.env, VGPUD_KERNELS: 'pageHash=scalar-x4,streamThreshold=65536,fill=warp-drive,bogus' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    const k = JSON.parse(r.stdout) as ReturnType<typeof ops.kernels>;
    assert.equal(k.pageHash, 'scalar-x4');
    assert.equal(k.fill.streamThreshold, 65536);
    assert.equal(k.fill.large, ops.kernels().fill.large, 'the unknown fill kernel left the automatic choice');
    assert.equal(k.overridden, true);
    assert.match(r.stderr, /VGPUD_KERNELS item 'fill=warp-drive' ignored: fill: unknown kernel/);
    assert.match(r.stderr, /VGPUD_KERNELS item 'bogus' ignored: expected key=value/);
  });

  it('refuses an unknown or unusable kernel and keeps the previous choice (all or nothing)', () => {
    const before = ops.kernels();
    assert.throws(() => raw!.setKernels!({ pageHash: 'scalar-x4', fill: 'memcpy-by-hand' }),
      (e: unknown) => (e as { code?: string }).code === 'VGPU_EINVAL');
    assert.throws(() => raw!.setKernels!({ streamThreshold: -1 }), (e: unknown) => (e as { code?: string }).code === 'VGPU_EINVAL');
    if (!before.cpu.features.includes('avx2')) {
      assert.throws(() => raw!.setKernels!({ pageHash: 'avx2-staggered' }), (e: unknown) => (e as { code?: string }).code === 'VGPU_EINVAL');
    }
    assert.deepEqual(ops.kernels(), before);
  });

  // Heads and tails (offsets 4 past a 32-byte boundary, lengths not a multiple of a vector), a job big enough to be
  // sliced over the helper threads, and each pattern shape: memset-able, wmemset-only, zero without release.
  it('every fill kernel, streamed or not, writes exactly the fallback bytes', async () => {
    const { available } = ops.kernels();
    const [a, j] = pair(24n * MiB);
    const jobs: [bigint, bigint, number][] = [
      [4n, 12n * MiB + 20n, 0x5a5a5a5a], [36n, 4092n, 0x01020304], [MiB + 8n, 9n * MiB + 44n, 0xdeadbeef],
      [20n * MiB + 4n, 60n, 0xfffffffe], [16n * MiB, 8n * MiB, 0],
    ];
    for (const fill of available.fill) {
      for (const threshold of [0, 'auto'] as const) { // 0: every job streams; auto: small jobs go to the C library
        raw!.setKernels!({ fill, streamThreshold: threshold });
        for (const x of [a, j]) await x.fill(0n, x.size, 0x11111111, { release: false });
        for (const [off, len, pat] of jobs) {
          await a.fill(off, len, pat, { release: false });
          await j.fill(off, len, pat, { release: false });
        }
        for (let o = 0n; o < a.size; o += 4n * MiB) {
          assert.ok(a.window(o, Number(4n * MiB)).equals(j.window(o, Number(4n * MiB))), `fill=${fill} threshold=${threshold} at ${o}`);
        }
      }
    }
  });

  it('every page-hash kernel gives the definition\'s values for every page size and page count', async () => {
    const { available } = ops.kernels();
    const [a] = pair(4n * MiB);
    scribble(a, 0n, 45 * 8192, 11);
    const win = a.window(0n, 45 * 8192);
    for (const pageHash of available.pageHash) {
      raw!.setKernels!({ pageHash });
      // 45 pages: five groups of 8 through the staggered pipeline, then 4 + 1 on the scalar paths; 8 and 16 bytes
      // are below the vector kernel's minimum page size; 7 pages is a run with no full group.
      for (const ps of [8, 16, 32, 64, 4096, 8192]) {
        for (const n of [7, 8, 16, 45]) {
          const hashes = await a.hashPages(0n, BigInt(n * ps), ps);
          for (let p = 0; p < n; p++) {
            assert.equal(hashes[p], referencePageHash(win.subarray(p * ps, (p + 1) * ps)), `${pageHash}: page ${p} of ${n} × ${ps} B`);
          }
        }
      }
    }
  });

  it('every page-hash kernel agrees with the fallback over a multi-slice range with holes', async () => {
    const { available } = ops.kernels();
    const [a, j] = pair(24n * MiB);
    for (const x of [a, j]) {
      await x.fill(0n, 20n * MiB, 0x3c3c3c3c, { release: false });
      scribble(x, 5n * MiB + 4096n, 3 * 4096 + 2048, 5);
      await x.fill(9n * MiB, 2n * MiB, 0); // released on the addon: a hole run
    }
    const want = await j.hashPages(0n, j.size);
    for (const pageHash of available.pageHash) {
      raw!.setKernels!({ pageHash });
      assert.deepEqual(await a.hashPages(0n, a.size), want, pageHash);
      assert.deepEqual(await a.hashPages(MiB, 8n * MiB, 65536), await j.hashPages(MiB, 8n * MiB, 65536), `${pageHash}, 64 KiB pages`);
    }
  });

  it('every buffer-hash kernel gives the fallback\'s value', () => {
    const { available } = ops.kernels();
    const data = Buffer.alloc(1 << 20);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131 + (i >> 9)) & 0xff;
    const splits = [[data], [data.subarray(0, 5), data.subarray(5, 300_001), data.subarray(300_001)], [data.subarray(0, 77)]];
    for (const bufferHash of available.bufferHash) {
      raw!.setKernels!({ bufferHash });
      for (const parts of splits) assert.equal(ops.hashBuffers(parts), fallbackOps.hashBuffers(parts), `${bufferHash}, ${parts.length} parts`);
    }
  });

  it('the C-library floor fills any 32-bit pattern like the fallback', () => {
    const a = Buffer.alloc(4096 + 12), b = Buffer.alloc(4096 + 12);
    for (const pat of [0, 0xa5a5a5a5, 0x01020304]) {
      ops.fillFloor(a, pat);
      fallbackOps.fillFloor(b, pat);
      assert.ok(a.equals(b), `pattern ${pat.toString(16)}`);
    }
    assert.throws(() => ops.fillFloor(a.subarray(2, 10), 1), (e: unknown) => (e as { code?: string }).code === 'VGPU_EALIGN');
  });
});
