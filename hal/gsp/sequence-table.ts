/**
 * Calls in flight by RPC sequence, for the reply path: looked up once per reply, added and removed once per call.
 *
 * Sequences are handed out in increasing order and live briefly, so `sequence & MASK` spreads the calls in flight
 * over a fixed array with no hashing and no allocation; a slot still taken by an older call (only when more than
 * SIZE calls are outstanding, or one call outlives SIZE newer ones) sends the newcomer to an overflow map. A Map
 * keyed by sequence did the same job but grew, shrank and rehashed as calls came and went: about a tenth of the
 * client's allocations under load.
 */
const SIZE = 1024;
const MASK = SIZE - 1;

export interface Sequenced {
  readonly sequence: number;
}

export class SequenceTable<T extends Sequenced> {
  private readonly slots: (T | null)[] = new Array<T | null>(SIZE).fill(null);
  private readonly overflow = new Map<number, T>();
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(sequence: number): T | undefined {
    const p = this.slots[sequence & MASK];
    if (p != null && p.sequence === sequence) return p;
    return this.overflow.size > 0 ? this.overflow.get(sequence) : undefined;
  }

  /** Add an entry whose sequence is not in the table. */
  add(p: T): void {
    const i = p.sequence & MASK;
    if (this.slots[i] === null) this.slots[i] = p;
    else this.overflow.set(p.sequence, p);
    this.count++;
  }

  /** Remove `p` if it is in the table; returns whether it was. */
  remove(p: T): boolean {
    const i = p.sequence & MASK;
    if (this.slots[i] === p) {
      this.slots[i] = null;
    } else if (this.overflow.get(p.sequence) === p) {
      this.overflow.delete(p.sequence);
    } else {
      return false;
    }
    this.count--;
    return true;
  }

  /** A snapshot of the sequences in the table (for failing every call). */
  sequences(): number[] {
    const out: number[] = [];
    if (this.count === 0) return out;
    for (const p of this.slots) if (p !== null) out.push(p.sequence);
    for (const s of this.overflow.keys()) out.push(s);
    return out;
  }
}
