/**
 * The verify pass: read the scrubbed range back and find the first 32-bit word that is not the pattern. Uses the
 * FramebufferMemory's own `verify` when the HAL has one (the native arena scans off the event loop); otherwise a
 * host mapping read in 64 MiB windows (a mapping hands out at most 1 GiB), yielding between windows.
 */
import type { FbRange, FramebufferMemory } from '../../core/contracts/memory.js';

const WINDOW = 64 << 20;

/** Offset inside `range` of the first word != pattern, or null when the whole range matches. */
export async function verifyRange(memory: FramebufferMemory, range: FbRange, pattern: number): Promise<bigint | null> {
  if (typeof memory.verify === 'function') return memory.verify(range, pattern);
  const map = memory.map(range);
  try {
    const want = Buffer.alloc(Number(range.size < BigInt(WINDOW) ? range.size : BigInt(WINDOW)));
    const pat = Buffer.alloc(4);
    pat.writeUInt32LE(pattern >>> 0);
    want.fill(pat);
    for (let at = 0n; at < range.size; at += BigInt(WINDOW)) {
      const n = Number(range.size - at < BigInt(WINDOW) ? range.size - at : BigInt(WINDOW));
      // read() copies; on a sparse store it also does not commit memory that was never written
      const got = map.read(Number(at), n);
      if (!got.equals(want.subarray(0, n))) {
        for (let i = 0; i + 4 <= n; i += 4) if (got.readUInt32LE(i) !== pattern >>> 0) return at + BigInt(i);
      }
      await new Promise<void>((r) => setImmediate(r));
    }
    return null;
  } finally {
    map.unmap();
  }
}
