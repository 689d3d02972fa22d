import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { VfAbiError } from '../../../core/manager/vf-abi-error.js';
import { creatableLine, parseTypeId } from '../../../core/manager/vf-type-abi.js';
import { rig } from './fixture.js';

const errno = (want: string) => (e: unknown): boolean => e instanceof VfAbiError && e.errno === want;

const FULL_LIST =
  'ID    : vGPU Name\n' +
  '100   : NVIDIA T-1Q\n' +
  '101   : NVIDIA T-2Q\n' +
  '102   : NVIDIA T-4Q\n' +
  '103   : NVIDIA T-8Q\n' +
  '104   : NVIDIA T-16Q\n' +
  '105   : NVIDIA T-1B\n';

test('line format is C "%-5d : %s\\n" (wide ids are not cut)', () => {
  assert.equal(creatableLine({ id: 941, name: 'NVIDIA RTX6000-Ada-1Q' }), '941   : NVIDIA RTX6000-Ada-1Q\n');
  assert.equal(creatableLine({ id: 123456, name: 'X' }), '123456 : X\n');
});

test('kstrtoul(buf, 10) parsing, as lib/kstrtox.c does it', () => {
  assert.equal(parseTypeId('941'), 941n);
  assert.equal(parseTypeId('941\n'), 941n);
  assert.equal(parseTypeId('+7'), 7n);
  assert.equal(parseTypeId('0'), 0n);
  assert.equal(parseTypeId('007'), 7n, 'leading zeros are digits, not an octal prefix: the base is 10');
  assert.equal(parseTypeId('941\0junk'), 941n, 'sysfs hands the store a NUL-terminated string');
  for (const bad of ['', '\n', '+', '++1', ' 941', '941 ', '-1', '0x10', '9 4', '941\n\n', '\n941', '12a']) {
    assert.throws(() => parseTypeId(bad), errno('EINVAL'), JSON.stringify(bad));
  }
  // An unsigned long, not a u32: 2^32 parses; only past ULONG_MAX is ERANGE, and overflow wins over trailing junk.
  assert.equal(parseTypeId('4294967296'), 4294967296n);
  assert.equal(parseTypeId('18446744073709551615'), 0xffff_ffff_ffff_ffffn);
  assert.throws(() => parseTypeId('18446744073709551616'), errno('ERANGE'));
  assert.throws(() => parseTypeId('99999999999999999999x'), errno('ERANGE'));
});

test('a type id above 2^32 - 1 parses and then matches no type: ENODEV, as upstream compares it with u32 ids', async () => {
  const r = await rig();
  const mgr = await r.create();
  assert.throws(() => mgr.abi.writeCurrent(0, String(2n ** 32n + 100n)), errno('ENODEV'));
  assert.equal(mgr.abi.readCurrent(0), '0\n');
  await mgr.close();
});

test('homogeneous: byte-exact reads through a select / fill / deselect cycle', async () => {
  const r = await rig();
  const mgr = await r.create();
  const abi = mgr.abi;
  assert.equal(abi.readCreatable(0), FULL_LIST);
  assert.equal(abi.readCurrent(0), '0\n');

  assert.equal(abi.writeCurrent(0, '101\n'), 4);
  assert.equal(abi.readCurrent(0), '101\n');
  assert.equal(abi.readCreatable(0), '');
  assert.equal(abi.readCreatable(1), '101   : NVIDIA T-2Q\n');

  assert.throws(() => abi.writeCurrent(1, '100'), errno('EINVAL'));
  assert.throws(() => abi.writeCurrent(1, '999'), errno('ENODEV'));
  assert.throws(() => abi.writeCurrent(1, 'abc'), errno('EINVAL'));
  assert.throws(() => abi.writeCurrent(0, '100'), errno('EINVAL'), 'a VF with a type cannot take another');

  // re-writing the same type does not count twice (upstream quirk): 16 VFs still fit 2Q's max_instance of 16
  abi.writeCurrent(0, '101');
  for (let vf = 1; vf < 16; vf++) abi.writeCurrent(vf, '101');
  assert.equal(abi.readCreatable(16), '');
  assert.throws(() => abi.writeCurrent(16, '101'), errno('ENOSPC'));

  abi.writeCurrent(5, '0');
  assert.equal(abi.readCreatable(16), '101   : NVIDIA T-2Q\n');
  abi.writeCurrent(16, '0'); // no type: a no-op, the count does not go negative
  for (let vf = 0; vf < 16; vf++) abi.writeCurrent(vf, '0');
  assert.equal(abi.readCreatable(16), FULL_LIST, 'the active type clears with the last deselect');
  await mgr.close();
});

test('EBUSY while the VF is open; ENOENT for a VF that does not exist', async () => {
  const r = await rig({ device: { totalVfs: 4 } });
  const mgr = await r.create();
  mgr.abi.writeCurrent(2, '100');
  mgr.setVfOpen(2, true);
  assert.throws(() => mgr.abi.writeCurrent(2, '0'), errno('EBUSY'));
  assert.equal(mgr.abi.readCurrent(2), '100\n');
  mgr.setVfOpen(2, false);
  mgr.abi.writeCurrent(2, '0');
  assert.throws(() => mgr.abi.readCreatable(4), errno('ENOENT'));
  assert.throws(() => mgr.abi.writeCurrent(-1, '0'), errno('ENOENT'));
  await mgr.close();
});

test('with ECC on, a type without ECC support is listed and selectable as upstream (its create fails, not its listing)', async () => {
  const r = await rig({ ecc: true });
  const mgr = await r.create();
  assert.equal(mgr.abi.readCreatable(0), FULL_LIST, 'every type of the metadata on an empty GPU, as vfio_sysfs.c prints them');
  assert.equal(mgr.abi.writeCurrent(0, '105\n'), 4);
  assert.equal(mgr.abi.readCurrent(0), '105\n');
  const sel = mgr.selectionOf(0)!;
  assert.equal(sel.fbBytes, 0n, 'it holds no FB: it cannot run');
  assert.equal(mgr.policy.isUsable(sel.type), false);
  assert.equal(mgr.abi.readCreatable(1), '105   : NVIDIA T-1B\n', 'homogeneous: the active type only');
  assert.deepEqual(mgr.policy.creatable(1).map((t) => t.id), [], 'the service counts none available');
  mgr.abi.writeCurrent(0, '0');
  assert.equal(mgr.abi.readCreatable(0), FULL_LIST);
  // Heterogeneous mode (this project's extension) places FB at selection: there the type is refused up front.
  mgr.setPolicy('heterogeneous');
  assert.equal(mgr.abi.readCreatable(0), FULL_LIST.replace('105   : NVIDIA T-1B\n', ''));
  assert.throws(() => mgr.abi.writeCurrent(0, '105'), errno('ENODEV'));
  await mgr.close();
});

test('heterogeneous: mixed types, header kept, placement ids distinct, full GPU lists nothing', async () => {
  const r = await rig({ segmentSize: 512n * MiBn() });
  const mgr = await r.create({ policy: 'heterogeneous' });
  const abi = mgr.abi;
  abi.writeCurrent(0, '104'); // 16 GiB = 32 segments
  abi.writeCurrent(1, '100'); // 1 GiB = 2 segments
  assert.equal(abi.readCreatable(2), FULL_LIST.replace('104   : NVIDIA T-16Q\n', ''), '16Q no longer fits next to 1Q');
  const a = mgr.selectionOf(0)!.placement;
  const b = mgr.selectionOf(1)!.placement;
  assert.notEqual(a.id, b.id);
  assert.ok(a.id + a.slots <= b.id || b.id + b.slots <= a.id, 'placements do not overlap');
  assert.throws(() => mgr.setPolicy('homogeneous'), (e) => isVgpuError(e, 'VGPU_EBUSY'));
  abi.writeCurrent(1, '0');
  abi.writeCurrent(1, '104');
  assert.equal(abi.readCreatable(2), '', 'two 16Q fill the 64-segment region');
  assert.throws(() => abi.writeCurrent(2, '100'), errno('ENOSPC'));
  abi.writeCurrent(0, '0');
  abi.writeCurrent(1, '0');
  mgr.setPolicy('homogeneous');
  assert.equal(abi.readCreatable(2), FULL_LIST);
  await mgr.close();
});

function MiBn(): bigint { return 1n << 20n; }
