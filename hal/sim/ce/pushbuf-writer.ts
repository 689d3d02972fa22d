/**
 * The host's side of a channel's pushbuffer (docs/reference/core-driver-interface.md ops 25–26): `begin(n)` reserves
 * room for n method dwords, `emit` appends within the reservation, `take` hands the dwords to a submit and starts
 * over. Shared by every simulated copy channel (the mock's and the simulator's), so both refuse the same misuse the
 * same way.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';

export class PushbufWriter {
  private pending: number[] = [];
  private reserved = 0;

  constructor(private readonly chid: number, private readonly capacity: number) {}

  get length(): number {
    return this.pending.length;
  }

  begin(dwords: number): void {
    if (!Number.isInteger(dwords) || dwords <= 0) {
      throw new VgpuError(ErrorCode.InvalidArgument, `begin(${dwords}): need a positive dword count`, { hint: 'reserve room for the methods you emit' });
    }
    if (this.reserved + dwords > this.capacity) {
      throw new VgpuError(ErrorCode.NoSpace, `pushbuffer of channel ${this.chid} holds ${this.capacity} dwords; ${this.reserved} reserved, ${dwords} more asked`, {
        hint: 'submit what is pending first, or emit fewer methods',
      });
    }
    this.reserved += dwords;
  }

  emit(dword: number): void {
    if (this.pending.length >= this.reserved) {
      throw new VgpuError(ErrorCode.IllegalState, `emit beyond the ${this.reserved} dwords reserved with begin() on channel ${this.chid}`, {
        hint: 'call begin(n) with the number of dwords you will emit',
      });
    }
    this.pending.push(dword >>> 0);
  }

  /** The dwords emitted since the last take, and a fresh reservation. */
  take(): Uint32Array {
    const dwords = Uint32Array.from(this.pending);
    this.reset();
    return dwords;
  }

  reset(): void {
    this.pending = [];
    this.reserved = 0;
  }
}
