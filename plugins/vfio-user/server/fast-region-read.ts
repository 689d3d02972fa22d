/**
 * The trapped register read without the general machinery: a REGION_READ of a few bytes — what a guest's MMIO load
 * becomes (QEMU sends one per access, vfio-user.rst "VFIO_USER_REGION_READ") — answered straight from the received
 * bytes into a reply buffer made once per connection. No message object, no payload copy, no promise, no BigInt:
 * the round trip a guest pays on every register access costs the front little more than the two socket calls.
 *
 * It answers only what it can answer exactly as the general path would (region-handlers.ts handleRegionRead):
 * a plain command (flags 0) of exactly one 16-byte access header, count 1..MAX_COUNT within max_data_xfer_size,
 * an offset below 2^32, and a read the device serves this way (VfioUserDevice.readRegisterInto: in range,
 * readable, no allocation). Anything else — every error case included — is declined and takes the general path,
 * which gives the same answer and errno it always did.
 */
import { Command, Flags, HEADER_SIZE } from '../protocol/constants.js';
import type { VfioUserDevice } from './vfio-user-device.js';

/** Largest access served here: a 64-bit register is the widest a CPU load makes. */
const MAX_COUNT = 8;
const ACCESS_HEADER = 16;
const REQUEST_SIZE = HEADER_SIZE + ACCESS_HEADER;

export interface FastReadCounters {
  messages: number;
  regionReads: number[];
}

export class FastRegionRead {
  private readonly reply = Buffer.alloc(REQUEST_SIZE + MAX_COUNT);
  /** One view per reply length (1..MAX_COUNT data bytes), made once. */
  private readonly views: Buffer[] = [];

  constructor(private readonly device: VfioUserDevice, private readonly counters: FastReadCounters) {
    for (let n = 0; n <= MAX_COUNT; n++) this.views.push(this.reply.subarray(0, REQUEST_SIZE + n));
  }

  /**
   * The reply to the message at `b[at, at + size)` (valid until the next call), or null when the general path must
   * take it. `maxXfer` is the negotiated max_data_xfer_size of the client's messages.
   */
  answer(b: Buffer, at: number, size: number, maxXfer: number): Buffer | null {
    if (size !== REQUEST_SIZE || b.readUInt16LE(at + 2) !== Command.REGION_READ || b.readUInt32LE(at + 8) !== Flags.TYPE_COMMAND) return null;
    const count = b.readUInt32LE(at + 28);
    if (count === 0 || count > MAX_COUNT || count > maxXfer || b.readUInt32LE(at + 20) !== 0) return null;
    const index = b.readUInt32LE(at + 24);
    const read = this.device.readRegisterInto;
    if (read === undefined || !read.call(this.device, index, b.readUInt32LE(at + 16), count, this.reply, REQUEST_SIZE)) return null;
    this.counters.messages++;
    this.counters.regionReads[index] = (this.counters.regionReads[index] ?? 0) + 1;
    const out = this.views[count]!;
    // Header: the command's msg_id and command, the reply's size, type REPLY, error 0; then the access header back.
    b.copy(out, 0, at, at + 4);
    out.writeUInt32LE(REQUEST_SIZE + count, 4);
    out.writeUInt32LE(Flags.TYPE_REPLY, 8);
    out.writeUInt32LE(0, 12);
    b.copy(out, HEADER_SIZE, at + HEADER_SIZE, at + REQUEST_SIZE);
    return out;
  }
}
