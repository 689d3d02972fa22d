/**
 * The VF's guest-visible state in a migration (hal/ada-lovelace/sim/vf/vf-guest-state.ts): it travels in the
 * firmware context image (version 2), an image of the older version 1 is refused with a message saying why, and the
 * registers a restore stages reach the live registers only through the front (their one writer), before the guest's
 * next access — or not at all when a reset comes first.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { loadNativeOps } from '../../../../native/index.js';
import { CONTEXT_HEADER_BYTES, CONTEXT_VF_SECTION, decodeContextImage, encodeContextImage, newContext } from '../../../../hal/ada-lovelace/sim/plugin-task-context.js';
import { VF_REGION_END } from '../../../../hal/ada-lovelace/sim/vf/vf-layout.js';
import { VfRegisterFile, VfReg } from '../../../../hal/ada-lovelace/sim/vf/vf-registers.js';
import { adoptRestoredRegisters, restorePending, snapshotRegisters, stageRegisters, type VfGuestState } from '../../../../hal/ada-lovelace/sim/vf/vf-guest-state.js';

const state: VfGuestState = {
  regs: { leafEnable: [3, 0, 0, 0, 0, 0, 0, 0x80], topEnable: 1, pending: 0b10, scratch: Array.from({ length: 16 }, (_, i) => 0x1000 + i) },
  rpc: { ctrl: 0x1_0000_0000n, resp: 0x1_0000_1000n, msg: 0x1_0000_2000n, msgSize: 16384 },
  ringsPending: [false, true],
  exceptions: [{ eventId: 0x1004, at: 1234 }, { eventId: 0x1005, at: 5678 }],
};

function vf(): { arena: ReturnType<ReturnType<typeof loadNativeOps>['attachSab']>; regs: VfRegisterFile } {
  const arena = loadNativeOps().attachSab(new SharedArrayBuffer(VF_REGION_END));
  return { arena, regs: new VfRegisterFile(arena, 2, 0x192000a1) };
}

describe('VF guest state in the firmware context image', () => {
  it('round-trips the registers, the RPC channel, unanswered doorbells and exception records', () => {
    const img = encodeContextImage(newContext(3, 7), 3, 7, state);
    const back = decodeContextImage(img);
    assert.deepEqual(back.vf, state);
    assert.equal(decodeContextImage(encodeContextImage(newContext(3, 7), 3, 7)).vf, null, 'a task with no guest side saves none');
  });

  it('refuses a version-1 image (an older simulator) with a message that says what is missing and what to do', () => {
    const img = Buffer.from(encodeContextImage(newContext(3, 7), 3, 7, state));
    img.writeUInt32LE(1, 4);
    assert.throws(() => decodeContextImage(img), /version 1 .*older simulator.*RPC channel.*upgrade the source/);
    img.writeUInt32LE(9, 4);
    assert.throws(() => decodeContextImage(img), /version 9 is not 2/);
  });

  it('refuses a VF section with unknown flags even under a valid CRC', () => {
    const img = Buffer.from(encodeContextImage(newContext(3, 7), 3, 7, state));
    const body = img.subarray(CONTEXT_HEADER_BYTES);
    body.writeUInt32LE(0x80, CONTEXT_VF_SECTION);
    img.writeUInt32LE(crc32(body) >>> 0, 20);
    assert.throws(() => decodeContextImage(img), /flags 0x80/);
  });
});

describe('restored registers: staged by the device, adopted by the front', () => {
  it('the front adopts the staged enables, scratch and pending bits; the device reads them staged or live alike', () => {
    const { arena, regs } = vf();
    regs.raise(0); // a raise the destination saw before the restore, already acknowledged by nobody
    regs.guestWrite32(VfReg.CPU_INTR_LEAF, 1); // cleared
    stageRegisters(arena, 2, state.regs);
    assert.ok(restorePending(arena, 2));
    assert.deepEqual(snapshotRegisters(arena, 2, () => regs.pending()), state.regs, 'a save before adoption carries the staged block');
    assert.equal(regs.guestRead32(VfReg.MAILBOX_SCRATCH), 0, 'live registers untouched until the front adopts');

    assert.equal(adoptRestoredRegisters(arena, 2, (b) => regs.total(b)), true);
    assert.ok(!restorePending(arena, 2));
    assert.equal(regs.guestRead32(VfReg.CPU_INTR_LEAF_EN_SET), 3);
    assert.equal(regs.guestRead32(VfReg.CPU_INTR_LEAF_EN_SET + 4 * 7), 0x80);
    assert.equal(regs.guestRead32(VfReg.CPU_INTR_TOP_EN_SET), 1);
    assert.equal(regs.guestRead32(VfReg.MAILBOX_SCRATCH + 4 * 3), 0x1003);
    assert.equal(regs.guestRead32(VfReg.CPU_INTR_LEAF), 0b10, 'the bit pending at the source is pending here, the other is not');
    assert.deepEqual(snapshotRegisters(arena, 2, () => regs.pending()), state.regs, 'and a save after adoption reads the same');
    // The guest clears the pending bit: it goes, and a later device raise shows again.
    regs.guestWrite32(VfReg.CPU_INTR_LEAF, 0b10);
    assert.equal(regs.pending(), 0);
    regs.raise(1);
    assert.equal(regs.pending(), 0b10);
    assert.equal(adoptRestoredRegisters(arena, 2, (b) => regs.total(b)), false, 'a block is adopted once');
  });

  it('a reset before adoption drops the block; a voided block (what the task of a new tenant stages) changes nothing', () => {
    const { arena, regs } = vf();
    stageRegisters(arena, 2, state.regs);
    assert.equal(adoptRestoredRegisters(arena, 2, (b) => regs.total(b), true), false);
    assert.ok(!restorePending(arena, 2));
    assert.equal(regs.guestRead32(VfReg.MAILBOX_SCRATCH + 4 * 3), 0, 'the reset won');

    stageRegisters(arena, 2, state.regs);
    stageRegisters(arena, 2, null);
    assert.equal(adoptRestoredRegisters(arena, 2, (b) => regs.total(b)), false, 'a void block changes nothing');
    assert.equal(regs.guestRead32(VfReg.CPU_INTR_TOP_EN_SET), 0);
  });
});
