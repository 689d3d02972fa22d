/**
 * The migration data path of one served vGPU. When the daemon named an FbStreamModule (the migration plugin's
 * front-fb-stream, core/contracts/migration-port.ts) and the FB is in a file this process can map, the front moves the
 * FB pages of MIG_DATA_READ/WRITE itself — one socket hop from the FB to the VMM — and only the small device state
 * (stream header, firmware context, trailer) crosses the control channel to the daemon, whose state machine still
 * decides every arc. Otherwise (worker mode, an older daemon) every call goes to the daemon as before.
 *
 * The module is imported by the path the daemon gives, as the HAL's guest port is: plugins never import each other.
 * One FbStream per client session, opened at its first migration call (the slice is read then) and closed when the
 * client leaves or resets the device.
 */
import { pathToFileURL } from 'node:url';
import type { GuestVf } from '../../../core/contracts/guest-port.js';
import type { Logger } from '../../../core/contracts/logger.js';
import type { FbStream, FbStreamModule } from '../../../core/contracts/migration-port.js';
import type { FrontManager } from './front-manager.js';

export class FbStreamLink {
  private stream: Promise<FbStream | null> | null = null;

  constructor(
    private readonly m: FrontManager,
    private readonly vgpuId: string,
    /** The VF's guest side (asked at the session's first migration call). */
    private readonly guest: () => GuestVf,
    private readonly module: () => string | null,
    private readonly log: Logger,
  ) {}

  private open(): Promise<FbStream | null> {
    this.stream ??= (async () => {
      const path = this.module();
      const guest = this.guest();
      const file = guest.fbFile();
      const slice = guest.fbSlice();
      if (path === null || file === null || slice === null) {
        this.log.info('migration data goes through vgpud (the front cannot map this FB or vgpud named no FB stream)', { vgpu: this.vgpuId });
        return null;
      }
      this.log.info('migration: the front moves the FB pages itself, the device state goes through vgpud', { vgpu: this.vgpuId });
      const mod = (await import(pathToFileURL(path).href)) as FbStreamModule;
      const { m, vgpuId: id } = this;
      return mod.openFbStream({ path: file.path, offset: file.offset + slice.offset, size: slice.size }, {
        state: () => m.migrationState(id),
        setState: (s) => m.setMigrationState(id, s, true),
        read: (max) => m.migrationRead(id, max),
        write: (d) => m.migrationWrite(id, d),
        compat: () => m.migrationCompat(id),
      });
    })();
    return this.stream;
  }

  async setState(state: number): Promise<void> {
    const f = await this.open();
    return f !== null ? f.setState(state) : this.m.setMigrationState(this.vgpuId, state);
  }

  async read(max: number, alloc?: (length: number) => Buffer): Promise<Buffer> {
    const f = await this.open();
    return f !== null ? f.read(max, alloc) : this.m.migrationRead(this.vgpuId, max);
  }

  async write(data: Buffer): Promise<void> {
    const f = await this.open();
    return f !== null ? f.write(data) : this.m.migrationWrite(this.vgpuId, data);
  }

  /** The client left or reset the device: drop the session's FB stream (the next call opens a new one). */
  close(): void {
    const s = this.stream;
    this.stream = null;
    void s?.then((f) => f?.close(), () => undefined);
  }
}
