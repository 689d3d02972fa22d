/**
 * The register file of one simulated VF as its guest sees it in BAR0 (docs/vfio-user.md "BAR0 register map"): the
 * `NV_VIRTUAL_FUNCTION_PRIV_*` interrupt tree, scratch registers and doorbell at their dev_vm.h offsets
 * (open-gpu-kernel-modules src/common/inc/swref/published/ampere/ga102/dev_vm.h), and NV_PMC_BOOT_0 at 0.
 *
 * Two sides use this file. The front (serving the VF to a VMM) calls guestRead32/guestWrite32 for every trapped BAR0
 * access; the device (the GSP thread's plugin task) calls raise() to set an interrupt bit. The words live in the VF
 * state page (vf-layout.ts) with one writer each, so both processes can work on them at once without locks:
 * a leaf bit is pending while (device raises + guest triggers) ≠ (the sum when the guest last cleared it).
 */
import type { SharedArena } from '../../../../native/native-ops.js';
import { Bar0, Region } from '../device-layout.js';
import { VF_BUS, VfBus, VfPage, vfPage } from './vf-layout.js';

/** Guest-visible BAR0 offsets. */
export const VfReg = {
  PMC_BOOT_0: 0x000000,
  CPU_INTR_LEAF: 0x001000,
  CPU_INTR_LEAF_EN_SET: 0x001200,
  CPU_INTR_LEAF_EN_CLEAR: 0x001400,
  CPU_INTR_TOP: 0x001600,
  CPU_INTR_TOP_EN_SET: 0x001608,
  CPU_INTR_TOP_EN_CLEAR: 0x001610,
  CPU_INTR_LEAF_TRIGGER: 0x001640,
  MAILBOX_SCRATCH: 0x002100,
  DOORBELL: 0x002200,
  /** NV_CPU_INTR_LEAF__SIZE_1 = 8 leaves. */
  LEAVES: 8,
} as const;

/** Doorbell tokens a guest may ring (nv_sriov_defines.h NV_DOORBELL_NOTIFY_LEAF_VF_RPC_*_HANDLE). */
export const GuestDoorbell = { RPC_SETUP: 0, RPC_MESSAGE: 1 } as const;
export const SCRATCH_GUEST_RPC_LO = 2;
export const SCRATCH_GUEST_RPC_HI = 3;

export interface GuestWriteEffect {
  /** The guest rang the doorbell: the firmware must look (the caller rings the device). */
  doorbell?: number;
  /** The guest triggered an interrupt bit itself: deliver it like a device one. */
  triggered?: boolean;
}

export class VfRegisterFile {
  private readonly base: bigint;

  constructor(private readonly arena: SharedArena, readonly vf: number, private readonly boot0: number) {
    this.base = BigInt(vfPage(vf));
  }

  private load(off: number): number {
    return this.arena.load32(this.base + BigInt(off));
  }

  private store(off: number, v: number): void {
    this.arena.store32(this.base + BigInt(off), v >>> 0);
  }

  /** Total raises of leaf-0 bit b (device + guest triggers), mod 2^32. */
  total(bit: number): number {
    return (this.load(VfPage.RAISED + 4 * bit) + this.load(VfPage.SW_RAISED + 4 * bit)) >>> 0;
  }

  /** Pending bits of leaf 0. */
  pending(): number {
    let p = 0;
    for (let b = 0; b < 32; b++) if (this.total(b) !== this.load(VfPage.ACKED + 4 * b)) p |= 1 << b;
    return p >>> 0;
  }

  leafEnable(leaf: number): number {
    return this.load(VfPage.LEAF_EN + 4 * leaf);
  }

  topEnable(): number {
    return this.load(VfPage.TOP_EN);
  }

  /** Would a raise of leaf-0 bit b reach the CPU (enabled at both levels)? */
  delivers(bit: number): boolean {
    return ((this.leafEnable(0) >>> bit) & 1) === 1 && (this.topEnable() & 1) === 1;
  }

  /** A 32-bit guest read at a BAR0 offset (4-byte aligned). */
  guestRead32(off: number): number {
    if (off === VfReg.PMC_BOOT_0) return this.boot0;
    if (off >= VfReg.CPU_INTR_LEAF && off < VfReg.CPU_INTR_LEAF + 4 * VfReg.LEAVES) {
      return ((off - VfReg.CPU_INTR_LEAF) >> 2) === 0 ? this.pending() : 0;
    }
    for (const reg of [VfReg.CPU_INTR_LEAF_EN_SET, VfReg.CPU_INTR_LEAF_EN_CLEAR]) {
      if (off >= reg && off < reg + 4 * VfReg.LEAVES) return this.leafEnable((off - reg) >> 2);
    }
    if (off === VfReg.CPU_INTR_TOP) {
      // Subtree s covers leaves 2s and 2s+1; only leaf 0 is ever pending.
      return (this.pending() & this.leafEnable(0)) !== 0 && (this.topEnable() & 1) === 1 ? 1 : 0;
    }
    if (off === VfReg.CPU_INTR_TOP_EN_SET || off === VfReg.CPU_INTR_TOP_EN_CLEAR) return this.topEnable();
    if (off >= VfReg.MAILBOX_SCRATCH && off < VfReg.MAILBOX_SCRATCH + 4 * VfPage.SCRATCH_COUNT) {
      return this.load(VfPage.SCRATCH + (off - VfReg.MAILBOX_SCRATCH));
    }
    // The doorbell and the trigger are write-only; everything else is unbacked [simulator choice: reads 0].
    return 0;
  }

  /**
   * A guest write at a BAR0 offset (4-byte aligned); `mask` = the bytes written (byte enables). Bytes not written
   * are zero for "write 1s" registers (clear, enable-set/clear: zeros do nothing) and kept for plain registers; the
   * doorbell and the trigger act on whole-register writes only.
   */
  guestWrite32(off: number, v: number, mask = 0xffffffff): GuestWriteEffect {
    mask >>>= 0;
    const full = mask === 0xffffffff;
    v = (v & mask) >>> 0;
    if (off >= VfReg.CPU_INTR_LEAF && off < VfReg.CPU_INTR_LEAF + 4 * VfReg.LEAVES) {
      if (((off - VfReg.CPU_INTR_LEAF) >> 2) === 0) {
        for (let b = 0; b < 32; b++) if (((v >>> b) & 1) === 1) this.store(VfPage.ACKED + 4 * b, this.total(b));
      }
      return {};
    }
    if (off >= VfReg.CPU_INTR_LEAF_EN_SET && off < VfReg.CPU_INTR_LEAF_EN_SET + 4 * VfReg.LEAVES) {
      const leaf = (off - VfReg.CPU_INTR_LEAF_EN_SET) >> 2;
      this.store(VfPage.LEAF_EN + 4 * leaf, this.leafEnable(leaf) | v);
      return {};
    }
    if (off >= VfReg.CPU_INTR_LEAF_EN_CLEAR && off < VfReg.CPU_INTR_LEAF_EN_CLEAR + 4 * VfReg.LEAVES) {
      const leaf = (off - VfReg.CPU_INTR_LEAF_EN_CLEAR) >> 2;
      this.store(VfPage.LEAF_EN + 4 * leaf, this.leafEnable(leaf) & ~v);
      return {};
    }
    if (off === VfReg.CPU_INTR_TOP_EN_SET) {
      this.store(VfPage.TOP_EN, this.topEnable() | v);
      return {};
    }
    if (off === VfReg.CPU_INTR_TOP_EN_CLEAR) {
      this.store(VfPage.TOP_EN, this.topEnable() & ~v);
      return {};
    }
    if (off === VfReg.CPU_INTR_LEAF_TRIGGER) {
      if (!full) return {};
      const vector = v & 0xfff;
      if (vector >= 32) return {}; // leaves 1–7 carry nothing on this device
      this.store(VfPage.SW_RAISED + 4 * vector, this.load(VfPage.SW_RAISED + 4 * vector) + 1);
      return { triggered: true };
    }
    if (off >= VfReg.MAILBOX_SCRATCH && off < VfReg.MAILBOX_SCRATCH + 4 * VfPage.SCRATCH_COUNT) {
      const at = VfPage.SCRATCH + (off - VfReg.MAILBOX_SCRATCH);
      this.store(at, (this.load(at) & ~mask) | v);
      return {};
    }
    if (off === VfReg.DOORBELL) {
      if (!full) return {};
      if (v === GuestDoorbell.RPC_SETUP || v === GuestDoorbell.RPC_MESSAGE) {
        this.store(VfPage.RINGS + 4 * v, this.load(VfPage.RINGS + 4 * v) + 1);
        return { doorbell: v };
      }
      return {}; // other handles are not the guest's to ring
    }
    return {};
  }

  /** Front: what a reset clears on the register side (pending bits, enables, scratch). */
  resetGuestSide(): void {
    for (let b = 0; b < 32; b++) this.store(VfPage.ACKED + 4 * b, this.total(b));
    for (let l = 0; l < VfReg.LEAVES; l++) this.store(VfPage.LEAF_EN + 4 * l, 0);
    this.store(VfPage.TOP_EN, 0);
    for (let i = 0; i < VfPage.SCRATCH_COUNT; i++) this.store(VfPage.SCRATCH + 4 * i, 0);
  }

  /** Device (GSP thread): raise leaf-0 bit `bit` and let the front know. */
  raise(bit: number): void {
    this.store(VfPage.RAISED + 4 * bit, this.load(VfPage.RAISED + 4 * bit) + 1);
    this.store(VfPage.IRQ_SEQ, this.load(VfPage.IRQ_SEQ) + 1);
    kickFront(this.arena);
  }
}

/** Device side: wake the front process (interrupt raised, DMA requested). The device is the word's only writer. */
export function kickFront(arena: SharedArena): void {
  const at = BigInt(VF_BUS + VfBus.FRONT_KICK);
  arena.store32(at, arena.load32(at) + 1);
  arena.wake32(at);
}

/**
 * Front side: ring the GPU's doorbell for VF `vf` with a guest token. The guest's write reaches the same doorbell
 * unit the host rings at PF BAR0 0xB82200 (the register the VF sees at 0x2200), tagged with its gfid: gfid·32 +
 * token. The firmware consumes the register and scans every task, so a value another writer overwrote is not lost.
 */
export function ringFirmware(arena: SharedArena, vf: number, token: number): void {
  const at = BigInt(Region.BAR0 + Bar0.VF_PRIV_DOORBELL);
  arena.store32(at, ((vf + 1) * 32 + token) >>> 0);
  arena.wake32(at);
}
