/**
 * MigrationPort (core/contracts/migration-port.ts) over MigrationService: the VFIO migration of a vGPU driven by its
 * VMM through vfio-user (DEVICE_FEATURE MIG_DEVICE_STATE, MIG_DATA_READ/WRITE) — the same state machine
 * (device-migration.ts, fsm.ts) and stream format (stream/) as `vgpuctl migrate`, with the VMM moving the bytes.
 *
 * Reads (saving states): in PRE_COPY the first read after a short answer starts the next pass (the first the whole
 * FB, then the pages dirtied since); reads return what the pass produced, `max` bytes at a time, and the last one of
 * the pass is short (possibly empty): "no more for now", as vfio-user.rst MIG_DATA_READ says. In STOP_COPY reads
 * drain the rest; a short answer is the end.
 * Writes (RESUMING) feed the destination's stream; leaving RESUMING ends it (the trailer must have arrived, or the
 * arc fails as the kernel's RESUMING→STOP does).
 *
 * One care the protocol imposes: "the state transition must fully complete before the reply is sent", but the stream
 * of PRE_COPY→STOP_COPY is only read after that reply. The saving sink therefore buffers up to SINK_BUFFER; the arc is
 * taken as complete once the device is stopped and either the arc finished or its output waits for the reader.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { MigrationPort } from '../../core/contracts/migration-port.js';
import type { DataHandle, ResumeHandle, SaveHandle } from './device-migration.js';
import { ALL_MIGRATION_FLAGS, MigState, migStateName } from './fsm.js';
import type { MigrationService } from './migration-service.js';

const SINK_BUFFER = 64 << 20;

/** A PassThrough that says when its writer wrote, and when it had to wait for a reader. */
class SavingSink extends PassThrough {
  private waiters: Array<() => void> = [];
  private writeWaiters: Array<() => void> = [];
  blocked = false;

  constructor() {
    super({ highWaterMark: SINK_BUFFER });
    this.once('finish', () => this.wake());
    this.once('close', () => this.wake());
  }

  private wake(): void {
    for (const w of this.writeWaiters.splice(0)) w();
  }

  override write(chunk: unknown, encodingOrCb?: unknown, cb?: unknown): boolean {
    const ok = (super.write as (...a: unknown[]) => boolean)(chunk, encodingOrCb, cb);
    if (!ok) {
      this.blocked = true;
      for (const w of this.waiters.splice(0)) w();
    }
    this.wake();
    return ok;
  }

  /** Resolves when a write had to wait for the reader. */
  whenBlocked(): Promise<void> {
    if (this.blocked) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }

  /** Resolves at the next write, or when the writer ended. (Not 'readable': it fires again and again while data sits unread.) */
  nextWrite(): Promise<void> {
    return new Promise((r) => this.writeWaiters.push(r));
  }
}

interface SaveSide {
  kind: 'save';
  handle: SaveHandle;
  sink: SavingSink;
  pass: Promise<void> | null;
  /** A pass finished and no short answer has ended its output yet. */
  passRan: boolean;
  ended: boolean;
  error: unknown;
  /** Resolves when the arc's output ended (done or failed). */
  settled: Promise<void>;
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

  async setState(vgpuId: string, target: number): Promise<void> {
    const side = this.sides.get(vgpuId);
    if (side?.kind === 'resume' && target !== MigState.RESUMING) side.stream.end(); // leaving RESUMING: no more data
    const sink = side?.kind === 'save' ? side.sink : new SavingSink();
    const saving = target === MigState.PRE_COPY || target === MigState.PRE_COPY_P2P || target === MigState.STOP_COPY;
    const run = this.svc.setState(vgpuId, target as MigState, saving && side?.kind !== 'save' ? { sink } : {});
    let handle: DataHandle | null;
    if (side?.kind === 'save' && target === MigState.STOP_COPY) {
      // The arc writes the rest of the stream: complete for the VMM once it finished or waits for a reader.
      const raced = await Promise.race([run.then((h) => ({ h })), sink.whenBlocked().then(() => null)]);
      if (raced === null) {
        run.catch((error: unknown) => { side.error = error; sink.destroy(error as Error); });
        return;
      }
      handle = raced.h;
    } else {
      handle = await run;
    }
    if (handle?.kind === 'save') {
      const s: SaveSide = { kind: 'save', handle, sink, pass: null, passRan: false, ended: false, error: null, settled: Promise.resolve() };
      s.settled = handle.done.then(() => { s.ended = true; sink.end(); }, (error: unknown) => { s.error = error; s.ended = true; sink.end(); });
      this.sides.set(vgpuId, s);
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
    const stream = s.sink as Readable;
    for (;;) {
      if (s.error !== null && stream.readableLength === 0) {
        throw new VgpuError(ErrorCode.Migration, `the saving stream of ${vgpuId} failed: ${(s.error as Error).message}`, {
          hint: 'the device is in ERROR or back in its last state: reset it or move it back to RUNNING', details: { errno: 5 }, cause: s.error,
        });
      }
      const buffered = stream.readableLength;
      if (buffered >= max) return (stream.read(max) as Buffer | null) ?? Buffer.alloc(0);
      if (s.ended) return buffered > 0 ? ((stream.read(buffered) as Buffer | null) ?? Buffer.alloc(0)) : Buffer.alloc(0);
      if (st !== MigState.STOP_COPY && s.pass === null) {
        if (s.passRan) {
          // The pass finished: the rest of its output, short (possibly empty) — "no more for now". The next read
          // starts the next pass.
          s.passRan = false;
          return buffered > 0 ? ((stream.read(buffered) as Buffer | null) ?? Buffer.alloc(0)) : Buffer.alloc(0);
        }
        s.pass = s.handle.pass().then(() => undefined, (error: unknown) => { s.error = error; }).finally(() => {
          s.pass = null;
          s.passRan = true;
        });
      }
      await Promise.race([s.sink.nextWrite(), s.pass ?? new Promise<never>(() => undefined), s.settled]);
    }
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
    if (s?.kind === 'save') s.sink.destroy();
    if (s?.kind === 'resume') s.stream.end();
    await this.svc.reset(vgpuId);
  }
}
