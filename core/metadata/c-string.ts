/**
 * Fixed-size, NUL-padded ASCII fields (C `char name[N]`). Strict on read: the string must end with a NUL inside
 * the field, hold printable ASCII only, and be followed by zero bytes only — so every accepted field has exactly
 * one encoding and re-serialising a parsed file gives the same bytes.
 */
import { metadataError } from './metadata-error.js';

const PRINTABLE_MIN = 0x20;
const PRINTABLE_MAX = 0x7e;

/** Read the field at `bytes[pos, pos+len)`; `fileOffset` is where `pos` sits in the file, for error messages. */
export function readCString(bytes: Uint8Array, pos: number, len: number, field: string, fileOffset: number, allowEmpty = false): string {
  let end = -1;
  for (let i = 0; i < len; i++) {
    if (bytes[pos + i] === 0) { end = i; break; }
  }
  if (end < 0) throw metadataError(fileOffset, field, `string is not NUL-terminated within ${len} bytes`);
  if (end === 0 && !allowEmpty) throw metadataError(fileOffset, field, 'string is empty');
  let s = '';
  for (let i = 0; i < end; i++) {
    const c = bytes[pos + i]!;
    if (c < PRINTABLE_MIN || c > PRINTABLE_MAX) {
      throw metadataError(fileOffset + i, field, `byte ${c} is not printable ASCII`);
    }
    s += String.fromCharCode(c);
  }
  for (let i = end + 1; i < len; i++) {
    if (bytes[pos + i] !== 0) throw metadataError(fileOffset + i, field, 'non-zero byte after the terminating NUL');
  }
  return s;
}

/** Why `s` cannot be stored in a `len`-byte field, or undefined when it can. */
export function cStringProblem(s: string, len: number, allowEmpty = false): string | undefined {
  if (s.length === 0 && !allowEmpty) return 'is empty';
  if (s.length > len - 1) return `is ${s.length} characters; at most ${len - 1} fit (plus the NUL)`;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < PRINTABLE_MIN || c > PRINTABLE_MAX) return `has a non-printable or non-ASCII character at index ${i}`;
  }
  return undefined;
}

/** Write `s` NUL-padded into `bytes[pos, pos+len)`; the caller has checked it with `cStringProblem`. */
export function writeCString(bytes: Uint8Array, pos: number, len: number, s: string): void {
  bytes.fill(0, pos, pos + len);
  for (let i = 0; i < s.length; i++) bytes[pos + i] = s.charCodeAt(i);
}
