/**
 * VgpuJournal (core/contracts/vgpu-journal.ts) on files in the state dir, each replaced atomically
 * (atomic-write.ts): `vgpu-<id>.json` per vGPU, `gpu-<bdf>.json` per GPU, `seq-<name>.json` per sequence.
 *
 * One file per record: a transition rewrites a few hundred bytes, and two vGPUs changing at once never race on one
 * file. Writes to one file are chained, so the last write always wins; the in-memory view changes synchronously
 * at call time, so a reader never sees an older state than the last write asked for.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import type {
  JournalGpu, JournalSequence, JournalVgpu, ReconcileReport, VgpuJournal,
} from '../../core/contracts/vgpu-journal.js';
import { atomicWriteFile, fsyncDir, TEMP_SUFFIX } from './atomic-write.js';

export const JOURNAL_VERSION = 2;

const u64 = z.string().regex(/^\d+$/).transform((s) => BigInt(s));
const span = z.object({ offset: u64, size: u64 });
const handle = z.number().int().min(1).max(0xffffffff);
const rmClient = z.object({ hClient: handle, hDevice: handle, hSubdevice: handle });

const vgpuSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  id: z.string().min(1),
  gpu: z.string().min(1),
  vf: z.number().int().nonnegative(),
  typeId: z.number().int().nonnegative(),
  typeName: z.string(),
  state: z.enum(['creating', 'ready', 'stopping']),
  placementId: z.number().int().nonnegative(),
  autoSelected: z.boolean(),
  uuid: z.string().regex(/^[0-9a-f]{32}$/),
  chids: z.object({ offset: z.number().int().nonnegative(), count: z.number().int().positive() }).optional(),
  guestFb: span.optional(),
  heap: span.optional(),
  clientHandle: handle.optional(),
  client: rmClient.optional(),
  pluginTask: z.boolean().optional(),
  requestId: z.string().min(1).max(64).optional(),
  createdAt: z.number(),
  updatedAt: z.number(),
});

const gpuSchema = z.object({
  version: z.literal(JOURNAL_VERSION),
  bdf: z.string().min(1),
  managerClients: z.array(handle),
  selections: z.array(z.object({ vf: z.number().int().nonnegative(), typeId: z.number().int().positive(), placementId: z.number().int().nonnegative() })),
  updatedAt: z.number(),
});

const seqSchema = z.object({ version: z.literal(JOURNAL_VERSION), next: z.number().int().nonnegative() });

const VGPU_RE = /^vgpu-([A-Za-z0-9._:-]+)\.json$/;
const GPU_RE = /^gpu-([0-9a-fA-F:.]+)\.json$/;
const SEQ_RE = /^seq-([a-z-]+)\.json$/;
/** First value of a sequence nobody reserved yet (1: 0 is never a valid id or handle suffix). */
const SEQ_START = 1;

function toJson(v: unknown): string {
  return `${JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`;
}

export class FileVgpuJournal implements VgpuJournal {
  private readonly vgpuRecs = new Map<string, JournalVgpu>();
  private readonly gpuRecs = new Map<string, JournalGpu>();
  private readonly seqs = new Map<string, number>();
  private readonly chains = new Map<string, Promise<void>>();
  private report: ReconcileReport | undefined;
  private opened = false;

  constructor(readonly dir: string, private logger?: Logger) {}

  setLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** Create the dir if needed, load every valid record, remove torn temp files. */
  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new VgpuError(ErrorCode.Config, `cannot create the state dir ${this.dir}: ${(cause as Error).message}`, {
        hint: 'pass a writable --state-dir (or api.stateDir in the config)', details: { dir: this.dir }, cause,
      });
    }
    this.vgpuRecs.clear();
    this.gpuRecs.clear();
    this.seqs.clear();
    for (const name of (await readdir(this.dir)).sort()) {
      const path = join(this.dir, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        // A write that never reached its rename: the record it would have replaced is intact.
        this.logger?.warn('removing a torn journal temp file', { path });
        await unlink(path).catch(() => {});
        continue;
      }
      try {
        if (VGPU_RE.test(name)) {
          const { version: _v, ...r } = vgpuSchema.parse(JSON.parse(await readFile(path, 'utf8')));
          this.vgpuRecs.set(r.id, stripUndefined(r) as JournalVgpu);
        } else if (GPU_RE.test(name)) {
          const { version: _v, ...r } = gpuSchema.parse(JSON.parse(await readFile(path, 'utf8')));
          this.gpuRecs.set(r.bdf, stripUndefined(r) as JournalGpu);
        } else {
          const m = SEQ_RE.exec(name);
          if (m !== null) this.seqs.set(m[1]!, seqSchema.parse(JSON.parse(await readFile(path, 'utf8'))).next);
        }
      } catch (error) {
        // Only possible if something other than this journal wrote the file (or an older layout): keep it for a
        // human to look at, and say so.
        this.logger?.error('ignoring an unreadable journal record', { path, error });
      }
    }
    this.opened = true;
  }

  vgpus(): JournalVgpu[] {
    return [...this.vgpuRecs.values()].sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id));
  }

  vgpu(id: string): JournalVgpu | undefined {
    return this.vgpuRecs.get(id);
  }

  gpu(bdf: string): JournalGpu | undefined {
    return this.gpuRecs.get(bdf);
  }

  putVgpu(record: JournalVgpu): Promise<void> {
    this.mustBeOpen();
    if (!VGPU_RE.test(`vgpu-${record.id}.json`)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `vGPU id '${record.id}' cannot be a journal file name`, {
        hint: 'ids may contain letters, digits and . _ : -',
      });
    }
    const rec = { ...record };
    this.vgpuRecs.set(rec.id, rec);
    const data = toJson({ version: JOURNAL_VERSION, ...rec });
    return this.chain(`vgpu-${rec.id}.json`, () => atomicWriteFile(join(this.dir, `vgpu-${rec.id}.json`), data));
  }

  removeVgpu(id: string): Promise<void> {
    this.mustBeOpen();
    this.vgpuRecs.delete(id);
    return this.chain(`vgpu-${id}.json`, () => this.unlinkDurably(`vgpu-${id}.json`));
  }

  putGpu(record: JournalGpu): Promise<void> {
    this.mustBeOpen();
    if (!GPU_RE.test(`gpu-${record.bdf}.json`)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `GPU '${record.bdf}' cannot be a journal file name`, { hint: 'pass a PCI address' });
    }
    const rec = { ...record, managerClients: [...record.managerClients], selections: record.selections.map((s) => ({ ...s })) };
    this.gpuRecs.set(rec.bdf, rec);
    const data = toJson({ version: JOURNAL_VERSION, ...rec });
    return this.chain(`gpu-${rec.bdf}.json`, () => atomicWriteFile(join(this.dir, `gpu-${rec.bdf}.json`), data));
  }

  reserve(seq: JournalSequence, count: number): Promise<number> {
    this.mustBeOpen();
    if (!Number.isInteger(count) || count < 1) {
      throw new VgpuError(ErrorCode.InvalidArgument, `cannot reserve ${count} numbers of ${seq}`, { hint: 'reserve at least one' });
    }
    // The in-memory counter moves at call time, so two reservations never overlap even before either is on disk.
    const first = this.seqs.get(seq) ?? SEQ_START;
    const next = first + count;
    this.seqs.set(seq, next);
    const name = `seq-${seq}.json`;
    return this.chain(name, () => atomicWriteFile(join(this.dir, name), toJson({ version: JOURNAL_VERSION, next }))).then(() => first);
  }

  noteReconcile(report: ReconcileReport): void {
    this.report = report;
  }

  lastReconcile(): ReconcileReport | undefined {
    return this.report;
  }

  /** Wait for every pending write. */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.chains.values()]);
  }

  private async unlinkDurably(name: string): Promise<void> {
    await unlink(join(this.dir, name)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    await fsyncDir(this.dir);
  }

  private chain(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn);
    this.chains.set(key, next);
    void next.finally(() => { if (this.chains.get(key) === next) this.chains.delete(key); }).catch(() => {});
    return next;
  }

  private mustBeOpen(): void {
    if (!this.opened) {
      throw new VgpuError(ErrorCode.IllegalState, 'the state journal is not open', { hint: 'call open() first' });
    }
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
