/**
 * A simulated copy engine that EXECUTES a decoded pushbuffer: memset through the remap unit (the scrub), pitch
 * copies, the one-word semaphore release, and the non-blocking (FIFO non-stall) interrupt. It knows the DMA-copy
 * class methods (ce-methods.ts) and nothing of any chip, so the mock HAL and every simulated generation share it.
 *
 * It works on GPU VAs through a CeTarget; `vaTarget` builds one from a channel's VA space and an FB byte store
 * whose `fill` is the SharedArena's (native: multi-threaded, off the event loop; zero fills give pages back).
 */
import type { FbBackingStore } from '../../../core/alloc/framebuffer-memory.js';
import {
  CE, INTERRUPT_NON_BLOCKING, LaunchDma, RemapComponents, SEMAPHORE_RELEASE_ONE_WORD, joinVa,
} from './ce-methods.js';
import type { ChannelVaSpace } from './channel-va-space.js';
import type { MethodWrite } from './pushbuf-decoder.js';

/** What the engine needs from a channel: VA-addressed bytes. */
export interface CeTarget {
  fill(va: bigint, length: bigint, pattern: number): Promise<void>;
  copy(srcVa: bigint, dstVa: bigint, length: number): void | Promise<void>;
  write32(va: bigint, value: number): void;
}

export interface CeRunResult {
  launches: number;
  semaphoreReleases: number;
  bytesWritten: bigint;
  nonstallInterrupts: number;
}

export interface CeRunOptions {
  /** The FIFO non-stall interrupt, raised where the pushbuffer asks for it (after the semaphore of that launch). */
  onNonstall?: () => void;
  /** The channel's CE object: a SET_OBJECT naming another handle is a channel error, as on hardware. */
  objectHandle?: number;
}

/** Something the engine refuses to run (the channel reports it as a channel error, RC). */
export class CeExecError extends Error {
  override readonly name = 'CeExecError';
}

/** Copies move through windows of at most this much, so no single Buffer grows past what a store hands out. */
const COPY_PIECE = 64 << 20;

export async function runCopyEngine(writes: readonly MethodWrite[], target: CeTarget, opts: CeRunOptions = {}): Promise<CeRunResult> {
  // All subchannels of a copy channel lead to its one CE object (upstream binds on subchannel 0 and sends the
  // class methods on subchannel 4), so the method state is per channel, not per subchannel.
  const reg = new Map<number, number>();
  const r = (m: number): number => reg.get(m) ?? 0;
  const res: CeRunResult = { launches: 0, semaphoreReleases: 0, bytesWritten: 0n, nonstallInterrupts: 0 };
  for (const w of writes) {
    if (w.method === CE.SET_OBJECT) {
      if (opts.objectHandle !== undefined && w.value !== opts.objectHandle) {
        throw new CeExecError(`SET_OBJECT 0x${w.value.toString(16)} is not this channel's CE object 0x${opts.objectHandle.toString(16)}`);
      }
      continue;
    }
    if (w.method !== CE.LAUNCH_DMA) { reg.set(w.method, w.value); continue; }
    res.launches++;
    const v = w.value;
    if (LaunchDma.transferType(v) !== 0) res.bytesWritten += await transfer(v, r, target);
    const sem = LaunchDma.semaphoreType(v);
    if (sem === SEMAPHORE_RELEASE_ONE_WORD) {
      target.write32(joinVa(r(CE.SEMAPHORE_A), r(CE.SEMAPHORE_B)), r(CE.SEMAPHORE_PAYLOAD));
      res.semaphoreReleases++;
    } else if (sem !== 0) {
      throw new CeExecError(`semaphore type ${sem} is not emulated (only the one-word release)`);
    }
    const irq = LaunchDma.interruptType(v);
    if (irq === INTERRUPT_NON_BLOCKING) {
      res.nonstallInterrupts++;
      opts.onNonstall?.();
    } else if (irq !== 0) {
      throw new CeExecError(`interrupt type ${irq} (blocking) is not emulated`);
    }
  }
  return res;
}

async function transfer(v: number, r: (m: number) => number, target: CeTarget): Promise<bigint> {
  const lines = LaunchDma.multiLine(v) ? r(CE.LINE_COUNT) : 1;
  const dst = joinVa(r(CE.OFFSET_OUT_UPPER), r(CE.OFFSET_OUT_LOWER));
  const pitchOut = BigInt(r(CE.PITCH_OUT));
  if (LaunchDma.remap(v)) {
    const comps = r(CE.SET_REMAP_COMPONENTS);
    if (RemapComponents.dstX(comps) !== 4 || RemapComponents.componentBytes(comps) !== 4 || RemapComponents.dstComponents(comps) !== 1) {
      throw new CeExecError(`remap 0x${comps.toString(16)} is not a 32-bit constant memset (the only remap emulated)`);
    }
    const lineBytes = BigInt(r(CE.LINE_LENGTH_IN)) * 4n;
    const pattern = r(CE.SET_REMAP_CONST_A);
    if (pitchOut === lineBytes) {
      // Back-to-back lines are one run: one fill instead of `lines` (the scrub's 2 GiB lines of a 48 GB FB).
      await target.fill(dst, lineBytes * BigInt(lines), pattern);
    } else {
      for (let l = 0; l < lines; l++) await target.fill(dst + BigInt(l) * pitchOut, lineBytes, pattern);
    }
    return lineBytes * BigInt(lines);
  }
  const src = joinVa(r(CE.OFFSET_IN_UPPER), r(CE.OFFSET_IN_LOWER));
  const pitchIn = BigInt(r(CE.PITCH_IN));
  const lineBytes = r(CE.LINE_LENGTH_IN);
  for (let l = 0; l < lines; l++) {
    for (let at = 0; at < lineBytes; at += COPY_PIECE) {
      const n = Math.min(COPY_PIECE, lineBytes - at);
      await target.copy(src + BigInt(l) * pitchIn + BigInt(at), dst + BigInt(l) * pitchOut + BigInt(at), n);
    }
  }
  return BigInt(lineBytes) * BigInt(lines);
}

/** A CeTarget over a channel's VA space and the FB bytes (offset 0 = FB offset 0). */
export function vaTarget(space: ChannelVaSpace, store: FbBackingStore): CeTarget {
  return {
    fill: (va, length, pattern) => store.fill(space.translate(va, length), length, pattern),
    copy: (src, dst, length) => {
      const from = space.translate(src, BigInt(length));
      const to = space.translate(dst, BigInt(length));
      const bytes = store.read !== undefined ? store.read(from, length) : Buffer.from(store.window(from, length));
      store.window(to, length).set(bytes);
    },
    write32: (va, value) => store.window(space.translate(va, 4n), 4).writeUInt32LE(value >>> 0),
  };
}
