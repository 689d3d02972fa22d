/**
 * Incremental framing of a vfio-user byte stream into messages, with the descriptors each one carried.
 *
 * Bytes come in chunks of any size (one recvmsg each). A message is its 16-byte header plus `size - 16` payload
 * bytes; the payload buffer is allocated once the header is known, so a large message is never re-copied.
 *
 * Which message a descriptor belongs to: a sender attaches a message's descriptors to the sendmsg that starts it,
 * and Linux hands them over with the first bytes of that sendmsg and ends the read right after that sendmsg's
 * data (net/unix/af_unix.c unix_stream_read_generic stops once it has taken descriptors). So the descriptors of a
 * chunk belong to the LAST message that starts in that chunk. Descriptors on a chunk in which no message starts
 * arrived in the middle of one: that message is marked and refused (EINVAL), the descriptors are closed.
 *
 * Limits: a header announcing more than `maxSize` bytes is reported as 'oversize' (the caller replies E2BIG) and
 * its payload is skipped as it arrives, so the stream stays in step. A size below 16 cannot be skipped — nothing
 * says where the next message starts — and is 'fatal': the connection must end (never the process).
 */
import { HEADER_SIZE } from './constants.js';
import { decodeHeader, type MessageHeader } from './header.js';

export interface InboundMessage {
  header: MessageHeader;
  /** The payload (a Buffer of its own; the handler may keep it). */
  payload: Buffer;
  /** Descriptors that came with the message (the handler owns them: consume or close). */
  fds: number[];
  /** Set when descriptors arrived inside the message instead of with its first byte. */
  fdsMisplaced?: boolean;
  /** Set when the message came with more descriptors than the negotiated max_msg_fds (the extra ones are closed). */
  tooManyFds?: boolean;
}

export type ReaderEvent =
  | { kind: 'message'; message: InboundMessage }
  | { kind: 'oversize'; header: MessageHeader; limit: number }
  | { kind: 'fatal'; reason: string };

/** Where a message's descriptors go; shared by reference with the message once it is complete. */
interface FdHolder {
  fds: number[];
  /** The message was oversize (skipped): its descriptors are closed as they come. */
  discard: boolean;
  /** recvmsg had to close descriptors beyond the limit: the message is refused. */
  tooMany: boolean;
}

interface Partial {
  header: MessageHeader;
  payload: Buffer;
  filled: number;
  holder: FdHolder;
  fdsMisplaced: boolean;
}

export class MessageReader {
  private readonly head = Buffer.alloc(HEADER_SIZE);
  private headFilled = 0;
  /** Holder of the message whose header is being read (created with its first byte). */
  private headHolder: FdHolder | null = null;
  private current: Partial | null = null;
  /** Bytes of an oversize message still to skip. */
  private skipping = 0;
  private dead = false;

  constructor(private maxSize: number, private readonly closeFd: (fd: number) => void) {}

  /** At a message boundary: nothing half-read, nothing being skipped (the next byte starts a header). */
  get idle(): boolean {
    return !this.dead && this.current === null && this.headFilled === 0 && this.skipping === 0;
  }

  /** Raise or lower the largest accepted message (after VERSION negotiation). */
  setMaxSize(n: number): void {
    this.maxSize = n;
  }

  /** Feed one chunk and the descriptors that came with it. `chunk` may be reused by the caller afterwards. */
  push(chunk: Uint8Array, fds: readonly number[] = [], fdsTruncated = false): ReaderEvent[] {
    const events: ReaderEvent[] = [];
    if (this.dead) {
      for (const fd of fds) this.closeFd(fd);
      return events;
    }
    /** The last message whose first byte is in this chunk. */
    let lastStarted: FdHolder | null = null;
    let pos = 0;
    while (pos < chunk.length) {
      if (this.skipping > 0) {
        const n = Math.min(this.skipping, chunk.length - pos);
        this.skipping -= n;
        pos += n;
        continue;
      }
      if (this.current === null) {
        if (this.headFilled === 0) {
          this.headHolder = { fds: [], discard: false, tooMany: false };
          lastStarted = this.headHolder;
        }
        const n = Math.min(HEADER_SIZE - this.headFilled, chunk.length - pos);
        this.head.set(chunk.subarray(pos, pos + n), this.headFilled);
        this.headFilled += n;
        pos += n;
        if (this.headFilled < HEADER_SIZE) continue;
        this.headFilled = 0;
        const holder = this.headHolder!;
        this.headHolder = null;
        const header = decodeHeader(this.head);
        if (header.size < HEADER_SIZE) {
          this.dead = true;
          for (const fd of [...fds, ...holder.fds]) this.closeFd(fd);
          events.push({ kind: 'fatal', reason: `message size ${header.size} is smaller than the ${HEADER_SIZE}-byte header` });
          return events;
        }
        if (header.size > this.maxSize) {
          this.skipping = header.size - HEADER_SIZE;
          holder.discard = true;
          for (const fd of holder.fds.splice(0)) this.closeFd(fd);
          events.push({ kind: 'oversize', header, limit: this.maxSize });
          continue;
        }
        const part: Partial = { header, payload: Buffer.allocUnsafe(header.size - HEADER_SIZE), filled: 0, holder, fdsMisplaced: false };
        if (part.payload.length === 0) this.complete(part, events);
        else this.current = part;
        continue;
      }
      const c = this.current;
      const n = Math.min(c.payload.length - c.filled, chunk.length - pos);
      c.payload.set(chunk.subarray(pos, pos + n), c.filled);
      c.filled += n;
      pos += n;
      if (c.filled === c.payload.length) {
        this.current = null;
        this.complete(c, events);
      }
    }
    if (fds.length > 0 || fdsTruncated) {
      if (lastStarted !== null && !lastStarted.discard) {
        lastStarted.fds.push(...fds);
        if (fdsTruncated) lastStarted.tooMany = true;
      } else if (lastStarted === null && this.current !== null) {
        // Descriptors in the middle of a message: it is refused, and they are closed with it.
        this.current.fdsMisplaced = true;
        this.current.holder.fds.push(...fds);
      } else {
        for (const fd of fds) this.closeFd(fd);
      }
    }
    return events;
  }

  /** Close the descriptors of a message still being read (connection closing). */
  discard(): void {
    for (const fd of this.current?.holder.fds ?? []) this.closeFd(fd);
    for (const fd of this.headHolder?.fds ?? []) this.closeFd(fd);
    this.current = null;
    this.headHolder = null;
    this.dead = true;
  }

  private complete(part: Partial, events: ReaderEvent[]): void {
    // The message shares its holder's array, so descriptors attached at the end of this chunk reach it.
    const message: InboundMessage = { header: part.header, payload: part.payload, fds: part.holder.fds };
    if (part.fdsMisplaced) message.fdsMisplaced = true;
    // Read when the message is handled (after this chunk), so a flag set at the end of the chunk still counts.
    Object.defineProperty(message, 'tooManyFds', { get: () => part.holder.tooMany, enumerable: true });
    events.push({ kind: 'message', message });
  }
}
