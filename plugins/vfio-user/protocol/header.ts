/**
 * The 16-byte vfio-user message header (vfio-user.rst "Header"): u16 msg_id, u16 command, u32 message_size (the
 * whole message, header included), u32 flags (bits 0–3 type, 4 no-reply, 5 error), u32 error_no. Little-endian:
 * the protocol uses host endianness, and every host this runs on is little-endian.
 */
import { Flags, HEADER_SIZE } from './constants.js';

export interface MessageHeader {
  msgId: number;
  command: number;
  size: number;
  flags: number;
  errorNo: number;
}

export function decodeHeader(b: Uint8Array, at = 0): MessageHeader {
  const v = new DataView(b.buffer, b.byteOffset + at, HEADER_SIZE);
  return {
    msgId: v.getUint16(0, true),
    command: v.getUint16(2, true),
    size: v.getUint32(4, true),
    flags: v.getUint32(8, true),
    errorNo: v.getUint32(12, true),
  };
}

export function encodeHeader(h: MessageHeader, into: Buffer, at = 0): void {
  into.writeUInt16LE(h.msgId & 0xffff, at);
  into.writeUInt16LE(h.command & 0xffff, at + 2);
  into.writeUInt32LE(h.size >>> 0, at + 4);
  into.writeUInt32LE(h.flags >>> 0, at + 8);
  into.writeUInt32LE(h.errorNo >>> 0, at + 12);
}

/** A whole message: header + payload in one Buffer, ready for sendMsg. */
export function buildMessage(msgId: number, command: number, flags: number, payload?: Uint8Array, errorNo = 0): Buffer {
  const size = HEADER_SIZE + (payload?.byteLength ?? 0);
  const out = Buffer.allocUnsafe(size);
  encodeHeader({ msgId, command, size, flags, errorNo }, out);
  if (payload !== undefined && payload.byteLength > 0) out.set(payload, HEADER_SIZE);
  return out;
}

export function isReply(flags: number): boolean {
  return (flags & Flags.TYPE_MASK) === Flags.TYPE_REPLY;
}

export function isCommand(flags: number): boolean {
  return (flags & Flags.TYPE_MASK) === Flags.TYPE_COMMAND;
}
