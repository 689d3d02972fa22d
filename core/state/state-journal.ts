/**
 * The daemon's state journal: one JSON record per vGPU in the state dir (`vgpu-<id>.json`), each written
 * atomically (atomic-write.ts), so a restart — or a reboot — knows which vGPUs existed, on which VF, with which
 * type and FB slice, and which were half-way through a transition.
 *
 * One file per vGPU instead of one big file: a transition rewrites a few hundred bytes, and two vGPUs changing at
 * once never race on the same file. Writes to one record are serialized, so the last transition always wins.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../contracts/exceptions.js';
import type { VgpuState } from '../contracts/events.js';
import type { Logger } from '../contracts/logger.js';
import type { VgpuInfo } from '../contracts/vgpu-service.js';
import { atomicWriteFile, fsyncDir, TEMP_SUFFIX } from './atomic-write.js';

export const JOURNAL_VERSION = 1;

export interface JournalRecord {
  id: string;
  gpu: string;
  vf: number;
  typeId: number;
  typeName: string;
  state: VgpuState;
  /** FB slice, decimal strings (bigint in memory elsewhere; JSON cannot hold 64-bit integers). */
  fb: { offset: string; size: string };
  chids: { offset: number; count: number };
  createdAt: number;
  updatedAt: number;
}

const recordSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  id: z.string().min(1),
  gpu: z.string().min(1),
  vf: z.number().int().nonnegative(),
  typeId: z.number().int().nonnegative(),
  typeName: z.string(),
  state: z.enum(['creating', 'ready', 'stopping', 'destroyed', 'failed', 'lost']),
  fb: z.object({ offset: z.string().regex(/^\d+$/), size: z.string().regex(/^\d+$/) }),
  chids: z.object({ offset: z.number().int().nonnegative(), count: z.number().int().nonnegative() }),
  createdAt: z.number(),
  updatedAt: z.number(),
});

const FILE_RE = /^vgpu-([A-Za-z0-9._:-]+)\.json$/;

export function recordFromInfo(v: VgpuInfo, now = Date.now()): JournalRecord {
  return {
    id: v.id, gpu: v.gpu, vf: v.vf, typeId: v.typeId, typeName: v.typeName, state: v.state,
    fb: { offset: v.fb.offset.toString(), size: v.fb.size.toString() },
    chids: { offset: v.chids.offset, count: v.chids.count }, createdAt: v.createdAt, updatedAt: now,
  };
}

export class StateJournal {
  private readonly records = new Map<string, JournalRecord>();
  /** Per-record write chain: transitions of one vGPU land in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private opened = false;

  constructor(readonly dir: string, private readonly logger?: Logger) {}

  /** Create the dir if needed, load every valid record, remove torn temp files. */
  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new VgpuError(ErrorCode.Config, `cannot create the state dir ${this.dir}: ${(cause as Error).message}`, {
        hint: 'pass a writable --state-dir (or api.stateDir in the config)', details: { dir: this.dir }, cause,
      });
    }
    this.records.clear();
    for (const name of await readdir(this.dir)) {
      const path = join(this.dir, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        // A temp file is a write that never reached its rename: the record it would have replaced is intact.
        this.logger?.warn('removing a torn journal temp file', { path });
        await unlink(path).catch(() => {});
        continue;
      }
      const m = FILE_RE.exec(name);
      if (m === null) continue;
      try {
        const parsed = recordSchema.parse(JSON.parse(await readFile(path, 'utf8')));
        const { version: _v, ...rec } = parsed;
        this.records.set(rec.id, rec);
      } catch (error) {
        // Only possible if something other than this journal wrote the file; keep it for a human to look at.
        this.logger?.error('ignoring an unreadable journal record', { path, error });
      }
    }
    this.opened = true;
  }

  entries(): JournalRecord[] {
    return [...this.records.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  get(id: string): JournalRecord | undefined {
    return this.records.get(id);
  }

  /** Write (create or replace) a vGPU's record durably. */
  put(record: JournalRecord): Promise<void> {
    this.mustBeOpen();
    if (!FILE_RE.test(`vgpu-${record.id}.json`)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `vGPU id '${record.id}' cannot be a journal file name`, {
        hint: 'ids may contain letters, digits and . _ : -',
      });
    }
    this.records.set(record.id, record);
    const data = `${JSON.stringify({ version: JOURNAL_VERSION, ...record }, null, 2)}\n`;
    return this.chain(record.id, () => atomicWriteFile(this.pathOf(record.id), data));
  }

  /** Record a state change of a known vGPU. */
  transition(id: string, state: VgpuState, now = Date.now()): Promise<void> {
    const rec = this.records.get(id);
    if (rec === undefined) {
      throw new VgpuError(ErrorCode.NotFound, `the journal has no vGPU ${id}`, { hint: 'put() the record first' });
    }
    return this.put({ ...rec, state, updatedAt: now });
  }

  /** Forget a vGPU (after it is destroyed). */
  remove(id: string): Promise<void> {
    this.mustBeOpen();
    this.records.delete(id);
    return this.chain(id, async () => {
      await unlink(this.pathOf(id)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      await fsyncDir(this.dir);
    });
  }

  /** Wait for every pending write. */
  async flush(): Promise<void> {
    await Promise.all([...this.chains.values()]);
  }

  private pathOf(id: string): string {
    return join(this.dir, `vgpu-${id}.json`);
  }

  private chain(id: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(id) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(id, next);
    void next.finally(() => { if (this.chains.get(id) === next) this.chains.delete(id); }).catch(() => {});
    return next;
  }

  private mustBeOpen(): void {
    if (!this.opened) {
      throw new VgpuError(ErrorCode.IllegalState, 'the state journal is not open', { hint: 'call open() first' });
    }
  }
}
