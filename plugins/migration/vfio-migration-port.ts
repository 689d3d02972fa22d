/**
 * MigrationPort (core/contracts/migration-port.ts) over MigrationService: the VFIO migration of a vGPU driven by its
 * VMM through vfio-user (DEVICE_FEATURE MIG_DEVICE_STATE, MIG_DATA_READ/WRITE) — the same state machine
 * (device-migration.ts, fsm.ts) and stream format (stream/) as `vgpuctl migrate`, with the VMM moving the bytes.
 *
 * Reads (saving states): passes, short answers and the STOP_COPY arc's completion are save-reader.ts's.
 * Writes (RESUMING) feed the destination's stream; leaving RESUMING ends it (the trailer must have arrived, or the
 * arc fails as the kernel's RESUMING→STOP does).
 *
 * With `fbByCaller` (the vfio-user device front maps the FB and moves the pages itself: front-fb-stream.ts) the
 * sessions carry only the device state — header, firmware context, trailer — and the caller splices its FB frames in.
 */
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { MigrationPort, MigrationStateOptions } from '../../core/contracts/migration-port.js';
import type { DataHandle, ResumeHandle, SaveHandle } from './device-migration.js';
import { ALL_MIGRATION_FLAGS, MigState, migStateName } from './fsm.js';
import type { MigrationService } from './migration-service.js';
import { SaveReader, SavingSink } from './save-reader.js';
import { compatToJson } from './stream/compat.js';

/** The FB half of the stream for a process that maps the FB (the vfio-user device front): .ts under tsx, .js built. */
const FB_STREAM_MODULE = fileURLToPath(new URL(`./front-fb-stream${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

interface SaveSide {
  kind: 'save';
  handle: SaveHandle;
  reader: SaveReader;
}

interface ResumeSide {
  kind: 'resume';
  handle: ResumeHandle;
  stream: Writable;
}

function refused(message: string, hint: string, errno = 22): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, message, { hint, details: { errno } });
}

export class VfioMigrationPort implements MigrationPort {
  private readonly sides = new Map<string, SaveSide | ResumeSide>();

  constructor(private readonly svc: MigrationService) {}

  flags(): number {
    return ALL_MIGRATION_FLAGS;
  }

  state(vgpuId: string): number {
    return this.svc.getState(vgpuId);
  }

  compat(vgpuId: string): string {
    return compatToJson(this.svc.device(vgpuId).device.compat());
  }

  fbStreamModule(): string {
    return FB_STREAM_MODULE;
  }

  async setState(vgpuId: string, target: number, opts: MigrationStateOptions = {}): Promise<void> {
    const side = this.sides.get(vgpuId);
    if (side?.kind === 'resume' && target !== MigState.RESUMING) side.stream.end(); // leaving RESUMING: no more data
    const sink = side?.kind === 'save' ? side.reader.sink : new SavingSink();
    const saving = target === MigState.PRE_COPY || target === MigState.PRE_COPY_P2P || target === MigState.STOP_COPY;
    const deviceStateOnly = opts.fbByCaller === true ? { deviceStateOnly: true } : {};
    let stopped!: () => void;
    const isStopped = new Promise<void>((r) => { stopped = r; });
    const arcOpts = side?.kind === 'save' && target === MigState.STOP_COPY ? { ...deviceStateOnly, onStopped: () => stopped() } : deviceStateOnly;
    const run = this.svc.setState(vgpuId, target as MigState, saving && side?.kind !== 'save' ? { sink, ...deviceStateOnly } : arcOpts);
    let handle: DataHandle | null;
    if (side?.kind === 'save' && target === MigState.STOP_COPY) {
      // The arc writes the rest of the stream as the VMM reads it (a pass still producing may even wait for the
      // VMM): complete for the VMM once the device is stopped and in STOP_COPY (VFIO: the state is the new one when
      // the SET returns), or when it failed before that.
      const raced = await Promise.race([run.then((h) => ({ h })), isStopped.then(() => null)]);
      if (raced === null) {
        run.catch((error: unknown) => { side.reader.error = error; sink.destroy(error as Error); });
        return;
      }
      handle = raced.h;
    } else {
      handle = await run;
    }
    if (handle?.kind === 'save') {
      const h = handle;
      const reader = new SaveReader(sink, () => h.pass(), (error) => new VgpuError(ErrorCode.Migration, `the saving stream of ${vgpuId} failed: ${(error as Error).message}`, {
        hint: 'the device is in ERROR or back in its last state: reset it or move it back to RUNNING', details: { errno: 5 }, cause: error,
      }));
      reader.track(h.done);
      this.sides.set(vgpuId, { kind: 'save', handle: h, reader });
      return;
    }
    if (handle?.kind === 'resume') {
      this.sides.set(vgpuId, { kind: 'resume', handle, stream: handle.stream! });
      return;
    }
    const now = this.svc.getState(vgpuId);
    if (now === MigState.RUNNING || now === MigState.STOP || now === MigState.RUNNING_P2P || now === MigState.ERROR) {
      this.sides.delete(vgpuId);
    }
  }

  async read(vgpuId: string, max: number): Promise<Buffer> {
    const s = this.sides.get(vgpuId);
    const st = this.svc.getState(vgpuId);
    if (s?.kind !== 'save' || (st !== MigState.PRE_COPY && st !== MigState.PRE_COPY_P2P && st !== MigState.STOP_COPY)) {
      throw refused(`MIG_DATA_READ of ${vgpuId} in ${migStateName(st)}`, 'read migration data only in PRE_COPY or STOP_COPY');
    }
    return s.reader.read(max, st === MigState.STOP_COPY);
  }

  async write(vgpuId: string, data: Buffer): Promise<void> {
    const s = this.sides.get(vgpuId);
    if (s?.kind !== 'resume' || this.svc.getState(vgpuId) !== MigState.RESUMING) {
      throw refused(`MIG_DATA_WRITE of ${vgpuId} in ${migStateName(this.svc.getState(vgpuId))}`, 'write migration data only in RESUMING');
    }
    if (!s.stream.write(data)) await new Promise<void>((r) => s.stream.once('drain', () => r()));
  }

  async reset(vgpuId: string): Promise<void> {
    const s = this.sides.get(vgpuId);
    this.sides.delete(vgpuId);
    if (s?.kind === 'save') s.reader.sink.destroy();
    if (s?.kind === 'resume') s.stream.end();
    await this.svc.reset(vgpuId);
  }
}
