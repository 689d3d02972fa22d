/**
 * Numbers that never repeat across daemon restarts (vGPU ids, RM client handles), handed out synchronously from a
 * block reserved durably in the journal. A block is reserved before its first number is used, and the next one is
 * fetched while a quarter of the current one is left, so `take()` (called where the code must not await, e.g. the
 * synchronous claim of a VF) practically never finds the block empty. A crash wastes the rest of a block; it
 * never hands a number out twice.
 */
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { JournalSequence, VgpuJournal } from '../contracts/vgpu-journal.js';

export class JournalSequenceBlock {
  private next = 0;
  private end = 0;
  private refill: Promise<void> | null = null;
  private pendingBlock: { first: number } | null = null;
  /** Why the last refill failed (a full state dir): what `take()` reports instead of a bare "retry". */
  private refillError: unknown = null;

  private constructor(private readonly journal: VgpuJournal, private readonly seq: JournalSequence, private readonly blockSize: number) {}

  /** `atLeast`: the first number may not be below it (numbers the journal's records show in use). */
  static async create(journal: VgpuJournal, seq: JournalSequence, blockSize: number, atLeast?: number): Promise<JournalSequenceBlock> {
    const b = new JournalSequenceBlock(journal, seq, blockSize);
    const first = await journal.reserve(seq, blockSize, atLeast !== undefined ? { atLeast } : {});
    b.next = first;
    b.end = first + blockSize;
    return b;
  }

  /** The next number, synchronously. Throws VGPU_EBUSY only if the journal could not keep up (retry). */
  take(): number {
    if (this.next >= this.end && this.pendingBlock !== null) {
      this.next = this.pendingBlock.first;
      this.end = this.next + this.blockSize;
      this.pendingBlock = null;
    }
    if (this.next >= this.end) {
      const failed = this.refillError;
      this.prefetch();
      if (failed !== null && failed instanceof VgpuError) throw failed;
      throw new VgpuError(ErrorCode.Busy, `the journal has not reserved more ${this.seq} numbers yet`, { hint: 'retry in a moment' });
    }
    const n = this.next++;
    if (this.end - this.next < this.blockSize / 4) this.prefetch();
    return n;
  }

  /** The next number, waiting for the journal when the block is used up. */
  async takeAsync(): Promise<number> {
    if (this.next >= this.end && this.pendingBlock === null) {
      this.prefetch();
      await this.refill;
    }
    return this.take();
  }

  private prefetch(): void {
    if (this.refill !== null || this.pendingBlock !== null) return;
    this.refill = this.journal.reserve(this.seq, this.blockSize).then((first) => {
      this.pendingBlock = { first };
      this.refillError = null;
    }, (error: unknown) => {
      this.refillError = error;
    }).finally(() => {
      this.refill = null;
    });
    this.refill.catch(() => {}); // a failed refill shows up (with its reason) at the next take()
  }
}
