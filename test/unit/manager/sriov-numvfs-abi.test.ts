// sriov_numvfs as the kernel parses and checks it (drivers/pci/iov.c: kstrtou16 base 0, then the count rules), and
// the kstrtoull both it and current_vgpu_type use: every accepted and refused form an `echo` can produce.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { kstrtoull } from '../../../core/manager/kstrtox.js';
import { parseNumVfs, planNumVfs } from '../../../core/manager/sriov-numvfs-abi.js';
import { VfAbiError } from '../../../core/manager/vf-abi-error.js';

const errno = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof VfAbiError ? e.errno : `not a VfAbiError: ${String(e)}`;
  }
  return undefined;
};

describe('kstrtoull', () => {
  it('base 0 picks the radix from the text as the kernel does; base 10 looks for no prefix', () => {
    const ok = (s: string, base: 0 | 10): bigint | string => { const r = kstrtoull(s, base); return r.ok ? r.value : r.errno; };
    assert.deepEqual(['32', '32\n', '+32', '0x20', '0X20\n', '040', '0', '00'].map((s) => ok(s, 0)), [32n, 32n, 32n, 32n, 32n, 32n, 0n, 0n]);
    assert.deepEqual(['08', '0x', '0xg', '-1', ' 1', '1 ', '1\n\n', '', '\n', 'x'].map((s) => ok(s, 0)), Array(10).fill('EINVAL'));
    assert.deepEqual([ok('0x20', 10), ok('007', 10), ok('18446744073709551615', 10), ok('18446744073709551616', 10), ok('99999999999999999999x', 10)],
      ['EINVAL', 7n, 18446744073709551615n, 'ERANGE', 'ERANGE']);
    assert.equal(ok('12\0garbage', 10), 12n, 'the store sees the text up to its first NUL');
  });
});

describe('sriov_numvfs', () => {
  it('parses like kstrtou16(buf, 0): above 65535 is ERANGE, garbage EINVAL', () => {
    assert.deepEqual([parseNumVfs('4\n'), parseNumVfs('0x10'), parseNumVfs('65535')], [4, 16, 65535]);
    assert.equal(errno(() => parseNumVfs('65536')), 'ERANGE');
    assert.equal(errno(() => parseNumVfs('four')), 'EINVAL');
    assert.equal(errno(() => parseNumVfs('')), 'EINVAL');
  });

  it('applies the kernel\'s rules in its order: range, no-op, driver callback, disable, EBUSY for a change through non-zero', () => {
    const plan = (requested: number, current: number, driverCanConfigure = true): string | undefined => {
      try {
        return planNumVfs({ gpu: 'g', requested, current, total: 32, driverCanConfigure });
      } catch (e) {
        return (e as VfAbiError).errno;
      }
    };
    assert.deepEqual([plan(33, 0), plan(32, 32), plan(8, 8, false), plan(0, 8), plan(8, 0), plan(8, 4), plan(0, 0), plan(4, 0, false)],
      ['ERANGE', 'none', 'none', 'disable', 'enable', 'EBUSY', 'none', 'ENOENT']);
  });
});
