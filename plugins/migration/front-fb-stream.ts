/**
 * The FB half of a vGPU's VFIO migration stream, run by the process that maps the vGPU's FB — the vfio-user device
 * front — so that FB pages go from the source's FB to its VMM, and from the destination's VMM into its FB, in one
 * socket hop each, instead of through the daemon (VMM → front → daemon and back, with the daemon re-encoding).
 * The front imports this module by the path MigrationPort.fbStreamModule() names (FbStreamModule,
 * core/contracts/migration-port.ts), as it imports the HAL's guest port: plugins do not import each other.
 *
 * The daemon's state machine (fsm.ts, device-migration.ts) stays the authority on arcs and errnos: every
 * MIG_DEVICE_STATE goes to it first, with `fbByCaller`, and its sessions then carry only the device state — the
 * stream header (compatibility data), the GSP plugin's saved context (FW_CONTEXT) and a trailer. This module splices:
 *
 *  Source: the daemon's header, then the FB passes (precopy-engine.ts SaveSession over this process's own mapping
 *    of the slice, page hashes for dirty tracking — BAR1 is mapped by the VMM, nothing traps its writes), then after
 *    STOP_COPY the daemon's firmware context chunks (its small stream read, every frame and its trailer checked),
 *    and a trailer over the whole. The VMM reads one ordinary stream (format version 2, frame-format.ts): the same
 *    bytes `vgpuctl migrate` and the daemon's own vfio-user path produce, so either end may be either kind.
 *  Destination: the VMM's bytes are applied by stream-applier.ts straight into this process's mapping (compat
 *    checked against the daemon's before anything is written; scrubbed on any failure); on leaving RESUMING the
 *    firmware context is handed to the daemon as a device-state stream of its own (header, FW_CONTEXT, trailer),
 *    and the daemon's RESUMING→STOP restores it. A stream that failed here gives the daemon no trailer, so its arc
 *    fails as the kernel's RESUMING→STOP does, and the VMM gets this side's error.
 */
import { PassThrough } from 'node:stream';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { DeviceStateLink, FbSliceFile, FbStream } from '../../core/contracts/migration-port.js';
import { loadNativeOps } from '../../native/index.js';
import type { SharedArena } from '../../native/native-ops.js';
import { HashDirtyTracker } from './dirty-tracker.js';
import { arenaRegion, type FbRegion } from './fb-region.js';
import { ALL_MIGRATION_FLAGS, MigState, migStateName, migrationPath } from './fsm.js';
import { SaveSession, type FirmwareContextSource } from './precopy-engine.js';
import { SaveReader, SavingSink } from './save-reader.js';
import { compatFromJson, type MigrationCompat } from './stream/compat.js';
import { applyStream, type ApplyResult } from './stream/stream-applier.js';
import { decodeFrames, type DecodedFrame } from './stream/stream-decoder.js';
import { StreamEncoder } from './stream/stream-encoder.js';

/** Reads of the daemon's device-state stream (it is a few KiB: header, firmware context, trailer). */
const DEVICE_STATE_READ = 1 << 20;
/** Bytes of the VMM's stream buffered ahead of the applier. */
const RESUME_BUFFER = 8 << 20;

const EINVAL = 22;
const EIO = 5;

function migError(message: string, errno: number, hint: string, cause?: unknown): VgpuError {
  return new VgpuError(errno === EINVAL ? ErrorCode.InvalidArgument : ErrorCode.Migration, message, { hint, details: { errno }, cause });
}

const isSaving = (s: number): boolean => s === MigState.PRE_COPY || s === MigState.PRE_COPY_P2P || s === MigState.STOP_COPY;

/** The daemon's device-state stream on the source: its header first, the rest (firmware context) after STOP_COPY. */
class DeviceStateIn {
  private readonly chunks: Buffer[] = [];

  constructor(private readonly link: DeviceStateLink) {}

  /** The stream header's compatibility data (the daemon wrote it when it opened the session). */
  async header(): Promise<MigrationCompat> {
    for (;;) {
      const b = await this.link.read(DEVICE_STATE_READ);
      if (b.length > 0) this.chunks.push(b);
      const frames = this.decode();
      const first = await frames.next().catch(() => null); // a header not complete yet: read on
      await frames.return(undefined);
      if (first?.done === false && first.value.type === 'header') return first.value.compat;
      if (b.length === 0) throw migError('the daemon\'s device-state stream has no header', EIO, 'reset the device and migrate again');
    }
  }

  /** The firmware context, once the daemon's STOP_COPY arc wrote it: read to the end, every frame checked. */
  firmware(): FirmwareContextSource {
    const self = this;
    return {
      async *save() {
        for (;;) {
          const b = await self.link.read(DEVICE_STATE_READ);
          if (b.length > 0) self.chunks.push(b);
          if (b.length < DEVICE_STATE_READ) break; // a short answer in STOP_COPY is the end
        }
        for await (const f of self.decode()) {
          if (f.type === 'fw-context') yield Buffer.from(f.data);
          else if (f.type !== 'header' && f.type !== 'trailer') {
            throw migError(`the daemon's device-state stream carries a ${f.type} frame`, EIO, 'the daemon and the device front disagree on who moves the FB: restart the front');
          }
        }
      },
    };
  }

  private decode(): AsyncGenerator<DecodedFrame> {
    const chunks = this.chunks.slice();
    return decodeFrames((async function* () { yield* chunks; })());
  }
}

interface SaveSide {
  kind: 'save';
  /** Unmaps the session's view of the FB (once nothing of the session runs any more). */
  unmap: () => void;
  session: SaveSession;
  reader: SaveReader;
  deviceState: DeviceStateIn;
  /** The STOP_COPY arc's work (the rest of the FB, the firmware context, the trailer), once it began. */
  stopping: Promise<unknown> | null;
}

interface ResumeSide {
  kind: 'resume';
  unmap: () => void;
  input: PassThrough;
  applying: Promise<ApplyResult>;
  failure: unknown;
}

class FrontFbStream implements FbStream {
  private side: SaveSide | ResumeSide | null = null;

  constructor(private readonly fb: FbSliceFile, private readonly link: DeviceStateLink) {}

  /**
   * This process's mapping of the slice: the FB file, mapped per session (the front holds nothing at rest), and
   * unmapped only once the session's last job settled — a pass or an applier may still be in the addon's threads
   * (a scan, a zero fill) when the session is dropped.
   */
  private mapFb(): { region: FbRegion; unmap: () => void } {
    const arena: SharedArena = loadNativeOps().openArena(this.fb.path);
    let open = true;
    return { region: arenaRegion(arena, this.fb.offset, this.fb.size), unmap: () => { if (open) { open = false; arena.close(); } } };
  }

  async setState(target: number): Promise<void> {
    const side = this.side;
    // An arc the state machine refuses changes nothing here either: the daemon answers it (and its errno).
    if (migrationPath(await this.link.state(), target, ALL_MIGRATION_FLAGS) === null) return this.link.setState(target);
    if (side?.kind === 'save') {
      if (target === MigState.STOP_COPY && side.stopping === null) return this.stopCopy(side);
      return this.arc(target);
    }
    if (side?.kind === 'resume' && target !== MigState.RESUMING) return this.finishResume(side, target);
    if (side === null && isSaving(target)) return this.openSave(target);
    if (side === null && target === MigState.RESUMING) return this.openResume();
    return this.arc(target);
  }

  async read(max: number, alloc?: (length: number) => Buffer): Promise<Buffer> {
    const s = this.side;
    if (s?.kind !== 'save') {
      const st = await this.link.state();
      throw migError(`MIG_DATA_READ in ${migStateName(st)}`, EINVAL, 'read migration data only in PRE_COPY or STOP_COPY');
    }
    return s.reader.read(max, s.stopping !== null, alloc);
  }

  async write(data: Buffer): Promise<void> {
    const s = this.side;
    if (s?.kind !== 'resume') {
      const st = await this.link.state();
      throw migError(`MIG_DATA_WRITE in ${migStateName(st)}`, EINVAL, 'write migration data only in RESUMING');
    }
    if (s.failure !== null) throw this.resumeFailed(s.failure);
    if (!s.input.write(data)) {
      // The applier takes the bytes as it writes them into the FB; if it failed meanwhile it takes no more.
      await Promise.race([new Promise<void>((r) => s.input.once('drain', () => r())), s.applying.then(() => undefined, () => undefined)]);
    }
    if (s.failure !== null) throw this.resumeFailed(s.failure);
  }

  close(): void {
    this.drop(new VgpuError(ErrorCode.Cancelled, 'the VMM left or reset the device', { hint: 'migrate again' }));
  }

  /** An arc with nothing of ours to do (or after ours): the daemon's; a session it ended ends here too. */
  private async arc(target: number): Promise<void> {
    let st = target; // where a successful request leaves the device; after a failure, ask (ERROR or where it was)
    try {
      await this.link.setState(target);
    } catch (err) {
      st = await this.link.state().catch(() => MigState.ERROR);
      throw err;
    } finally {
      if (!(this.side?.kind === 'save' && isSaving(st)) && !(this.side?.kind === 'resume' && st === MigState.RESUMING)) {
        this.drop(new VgpuError(ErrorCode.Cancelled, `the device left the session's state (now ${migStateName(st)})`, { hint: 'migrate again' }));
      }
    }
  }

  private drop(reason: Error): void {
    const s = this.side;
    this.side = null;
    if (s?.kind === 'save') {
      s.session.abort(reason);
      void Promise.allSettled([s.reader.running, s.stopping]).then(() => s.unmap());
    }
    if (s?.kind === 'resume') {
      s.input.destroy();
      void s.applying.then(s.unmap, s.unmap);
    }
  }

  // ---- source ----

  private async openSave(target: number): Promise<void> {
    await this.link.setState(target); // the daemon's session: device state only
    let fb: { region: FbRegion; unmap: () => void } | null = null;
    try {
      const deviceState = new DeviceStateIn(this.link);
      const compat = await deviceState.header();
      fb = this.mapFb();
      const region = fb.region;
      if (region.size !== compat.fbBytes) {
        throw migError(`the FB slice is ${region.size} bytes but the vGPU type has ${compat.fbBytes}`, EIO, 'the vGPU changed under the front: reset it');
      }
      const sink = new SavingSink();
      const session = new SaveSession({ region, dirty: new HashDirtyTracker(region, compat.pageSize), sink, compat });
      let passes = 0;
      const reader = new SaveReader(sink, () => (passes++ === 0 ? session.fullPass() : session.dirtyPass()), (e) => this.saveFailed(e));
      const side: SaveSide = { kind: 'save', unmap: fb.unmap, session, reader, deviceState, stopping: null };
      await session.begin();
      this.side = side;
      if (target === MigState.STOP_COPY) {
        // Entered from STOP: the device is already stopped; the whole stream goes as the VMM reads it.
        side.stopping = (async () => {
          await session.fullPass();
          await session.stopCopy({ stop: async () => undefined, resume: async () => undefined }, deviceState.firmware());
        })();
        reader.track(side.stopping);
      }
    } catch (err) {
      // Our half could not start: the daemon's session ends too (back to where the VMM came from is not known
      // here; ERROR would need a reset, so RUNNING/STOP as the arc's origin allows).
      if (this.side === null) fb?.unmap(); // nothing of the session ran
      this.drop(err as Error);
      await this.link.setState(target === MigState.STOP_COPY ? MigState.STOP : MigState.RUNNING).catch(() => undefined);
      throw err;
    }
  }

  /**
   * PRE_COPY→STOP_COPY: the daemon stops the device and writes the firmware context, and the reply follows that —
   * VFIO's rule: when the SET returns, the device is in the new state (a GET then says STOP_COPY). Only then are the
   * last dirty pages, the context and the trailer produced, as the VMM reads them. A pass the VMM did not read to its
   * end may still be producing, and waiting for the VMM, which reads only after this reply: the stop does not wait
   * for it; the stop-copy's frames follow that pass's once it is out (one session, one stream), and the collect
   * after the stop catches every page written before it.
   */
  private async stopCopy(side: SaveSide): Promise<void> {
    const pass = side.reader.running ?? Promise.resolve();
    let decided!: (stopped: boolean) => void;
    const stopped = new Promise<boolean>((r) => { decided = r; });
    // Set before the arc's await: a read meanwhile drains (no new pass), and drop() waits for this to settle.
    const run = stopped.then(async (ok) => {
      if (!ok) return;
      await pass;
      await side.session.stopCopy({ stop: async () => undefined, resume: async () => undefined }, side.deviceState.firmware());
    });
    side.stopping = run;
    try {
      await this.link.setState(MigState.STOP_COPY);
    } catch (err) {
      // The daemon refused or failed the arc: it is in ERROR or back in PRE_COPY; our session is over either way.
      decided(false);
      this.drop(err as Error);
      throw err;
    }
    decided(true);
    side.reader.track(run);
  }

  private saveFailed(error: unknown): Error {
    return migError(`the saving stream failed: ${(error as Error).message}`, EIO,
      'the device is in ERROR or back in its last state: reset it or move it back to RUNNING', error);
  }

  // ---- destination ----

  private async openResume(): Promise<void> {
    await this.link.setState(MigState.RESUMING);
    try {
      const expect = compatFromJson(await this.link.compat());
      const fb = this.mapFb();
      const input = new PassThrough({ highWaterMark: RESUME_BUFFER });
      const side: ResumeSide = { kind: 'resume', unmap: fb.unmap, input, applying: applyStream(input, { region: fb.region, expect }), failure: null };
      input.on('error', () => undefined); // writes after the applier gave up: refused in write(), not an 'error' crash
      side.applying.catch((e: unknown) => { side.failure = e; });
      this.side = side;
    } catch (err) {
      this.drop(err as Error);
      await this.link.setState(MigState.STOP).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Leaving RESUMING: the VMM's stream must be complete (its trailer validated, the FB written); then the firmware
   * context goes to the daemon as a device-state stream, and the daemon's arc restores it. Any failure here: the FB
   * was scrubbed by the applier, the daemon gets no trailer and fails its arc (ERROR), the VMM gets our error.
   */
  private async finishResume(side: ResumeSide, target: number): Promise<void> {
    side.input.end();
    let result: ApplyResult | null = null;
    try {
      result = await side.applying;
      await this.link.write(await encodeDeviceState(result));
    } catch (err) {
      side.failure ??= err;
    }
    this.side = null;
    side.unmap(); // the applier settled above
    try {
      await this.link.setState(target);
    } catch (err) {
      throw side.failure !== null ? this.resumeFailed(side.failure) : err;
    }
    if (side.failure !== null) throw this.resumeFailed(side.failure); // cannot happen: the daemon had no trailer
  }

  private resumeFailed(error: unknown): Error {
    return migError(`the migration stream was refused: ${(error as Error).message}`, EIO,
      'the destination FB was scrubbed; reset the device and migrate again from the source', error);
  }
}

/** The device state of a received stream (its header, firmware context and a trailer of its own), for the daemon. */
async function encodeDeviceState(r: ApplyResult): Promise<Buffer> {
  const out: Buffer[] = [];
  const sink = new PassThrough({ highWaterMark: 64 << 20 });
  sink.on('data', (b: Buffer) => out.push(b));
  const enc = new StreamEncoder(sink, r.compat.pageSize);
  await enc.writeHeader(r.compat);
  for (const c of r.firmwareContext) await enc.writeFirmwareContext(c);
  await enc.finish();
  return Buffer.concat(out);
}

export function openFbStream(fb: FbSliceFile, link: DeviceStateLink): FbStream {
  return new FrontFbStream(fb, link);
}
