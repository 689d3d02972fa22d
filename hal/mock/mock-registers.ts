/**
 * A sparse 32-bit register window (PF BAR0): unwritten registers read as their preset value or 0. Tests preset
 * identification registers and watch doorbell writes with `onWrite`.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { RegisterWindow } from '../../core/contracts/hal.js';
import type { MockControls, RunContext } from './mock-controls.js';

export class MockRegisters implements RegisterWindow {
  private readonly regs = new Map<number, number>();
  private readonly watchers = new Map<number, Set<(value: number) => void>>();

  constructor(
    private readonly controls: MockControls,
    private readonly ctx: () => RunContext,
    private readonly size: number,
    presets: Record<number, number> = {},
  ) {
    for (const [k, v] of Object.entries(presets)) this.regs.set(Number(k), v >>> 0);
  }

  read32(offset: number): number {
    return this.controls.runSync('registers.read32', this.ctx().gpu, { offset }, () => {
      this.check(offset);
      return this.regs.get(offset) ?? 0;
    });
  }

  write32(offset: number, value: number): void {
    this.controls.runSync('registers.write32', this.ctx().gpu, { offset, value }, () => {
      this.check(offset);
      this.regs.set(offset, value >>> 0);
      for (const w of this.watchers.get(offset) ?? []) w(value >>> 0);
    });
  }

  /** Test control: call `fn` on every write to `offset`; returns unsubscribe. */
  onWrite(offset: number, fn: (value: number) => void): () => void {
    const set = this.watchers.get(offset) ?? new Set();
    set.add(fn);
    this.watchers.set(offset, set);
    return () => set.delete(fn);
  }

  /** Test control: set a register without recording or watchers (hardware-side change). */
  poke(offset: number, value: number): void {
    this.check(offset);
    this.regs.set(offset, value >>> 0);
  }

  private check(offset: number): void {
    if (!Number.isInteger(offset) || offset < 0 || offset % 4 !== 0 || offset + 4 > this.size) {
      throw new VgpuError(ErrorCode.NativeRange, `register offset 0x${offset.toString(16)} is unaligned or outside the ${this.size}-byte BAR0`, {
        hint: 'use a 4-byte aligned offset inside BAR0',
        details: { offset },
      });
    }
  }
}
