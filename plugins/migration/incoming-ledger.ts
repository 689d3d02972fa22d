/**
 * Incoming migrations in flight, on disk (`<state dir>/migration-incoming.json`). A destination daemon killed
 * mid-stream must not come back with the half-received vGPU: the lifecycle journals a vGPU 'ready' as soon as its
 * create completes, long before the stream has arrived, so a restart would re-attach a vGPU whose FB and firmware
 * state are half of another. Each incoming migration is written here BEFORE its vGPU is created, keyed by the UUID
 * the vGPU is created with (exact: no guessing which vGPU it was), and removed once the migration moved in or its
 * vGPU was destroyed. At start the migration plugin destroys every vGPU still listed (recover()).
 *
 * Writes are atomic and durable (temp file created exclusively, fsync, rename, fsync of the directory): after a
 * crash the file is the old or the new list. The state plugin's journal has the same discipline; plugins do not
 * share code, so the few lines are here again.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';

export const INCOMING_LEDGER_FILE = 'migration-incoming.json';

export interface IncomingEntry {
  /** UUID the destination vGPU is (being) created with. */
  uuid: string;
  gpu: string;
  typeId: number;
  since: number;
}

export class IncomingLedger {
  private entries: IncomingEntry[] = [];
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly path: string, private readonly log: Logger) {}

  static inStateDir(stateDir: string, log: Logger): IncomingLedger {
    return new IncomingLedger(join(stateDir, INCOMING_LEDGER_FILE), log);
  }

  /** A new entry, on disk before this resolves; returns its UUID (for the create). */
  async add(e: Omit<IncomingEntry, 'uuid' | 'since'>): Promise<string> {
    const uuid = randomUUID();
    await this.update((l) => [...l, { ...e, uuid, since: Date.now() }]);
    return uuid;
  }

  async remove(uuid: string): Promise<void> {
    await this.update((l) => l.filter((x) => x.uuid !== uuid));
  }

  list(): readonly IncomingEntry[] {
    return this.entries;
  }

  /**
   * After a restart: destroy every vGPU an interrupted incoming migration left (found by its UUID), drop the
   * entries whose vGPU the lifecycle already rolled back, keep those of GPUs this run does not manage.
   */
  async recover(svc: VgpuService): Promise<{ destroyed: string[]; kept: number }> {
    this.entries = await this.load();
    const destroyed: string[] = [];
    const keep: IncomingEntry[] = [];
    const managed = new Set(svc.gpus().map((g) => g.bdf));
    for (const e of this.entries) {
      if (!managed.has(e.gpu)) { keep.push(e); continue; }
      const v = svc.list({ gpu: e.gpu }).find((x) => x.uuid === e.uuid);
      if (v === undefined) continue; // its create never completed: the lifecycle rolled it back already
      try {
        await svc.destroy(v.id, { force: true });
        destroyed.push(v.id);
        this.log.warn('destroyed a vGPU an interrupted incoming migration left behind', { vgpu: v.id, gpu: e.gpu, uuid: e.uuid });
      } catch (error) {
        keep.push(e); // tried again at the next start
        this.log.error('could not destroy the vGPU of an interrupted incoming migration', { vgpu: v.id, gpu: e.gpu, uuid: e.uuid, error });
      }
    }
    if (keep.length !== this.entries.length) await this.update(() => keep);
    return { destroyed, kept: keep.length };
  }

  private async load(): Promise<IncomingEntry[]> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw e;
    }
    try {
      const v = JSON.parse(text) as { incoming?: unknown };
      if (!Array.isArray(v.incoming)) throw new Error('no "incoming" list');
      return v.incoming.filter((x): x is IncomingEntry => typeof (x as IncomingEntry)?.uuid === 'string' && typeof (x as IncomingEntry).gpu === 'string');
    } catch (error) {
      // Only this plugin writes it, atomically: damage means someone else did. Set it aside, do not guess.
      const aside = `${this.path}.damaged-${Date.now()}`;
      await rename(this.path, aside).catch(() => undefined);
      this.log.error('the incoming-migration ledger is damaged; set aside, vGPUs it may have named are kept', { path: aside, error });
      return [];
    }
  }

  /** Apply `f` to the list and write it, one write at a time. */
  private update(f: (l: IncomingEntry[]) => IncomingEntry[]): Promise<void> {
    const next = this.chain.then(async () => {
      const list = f(this.entries);
      await writeAtomic(this.path, `${JSON.stringify({ incoming: list }, null, 2)}\n`);
      this.entries = list;
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}

async function writeAtomic(path: string, data: string): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${process.pid}.tmp`);
  await unlink(tmp).catch(() => undefined);
  // 'wx': created here or refused, never a file (or a link) someone planted.
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dh = await open(dir, 'r');
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}
