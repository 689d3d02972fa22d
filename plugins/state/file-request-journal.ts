/**
 * RequestJournal (core/contracts/request-journal.ts) on files: `requests/req-<id>.json` in the state dir, one per
 * request, each replaced atomically (atomic-write.ts), so after a crash a record is its old or its new version.
 * Writes to one record are chained (the last one wins); the in-memory view (MemoryRequestJournal's) changes at call
 * time. Finished records beyond the newest KEEP_FINISHED_REQUESTS are deleted; running ones are never dropped.
 */
import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import { REQUEST_ID_PATTERN, type RequestRecord } from '../../core/contracts/request-journal.js';
import { KEEP_FINISHED_REQUESTS, MemoryRequestJournal } from '../../core/requests/memory-request-journal.js';
import { readOwnFile } from '../../core/fs/own-file.js';
import { ensurePrivateDir } from '../../core/fs/private-dir.js';
import { atomicWriteFile, fsyncDir, TEMP_SUFFIX } from './atomic-write.js';
import { journalWriteError } from './journal-write-error.js';
import { WriteChains } from './write-chain.js';

export const REQUEST_JOURNAL_VERSION = 1;
const FILE_RE = /^req-(.+)\.json$/;

const stepSchema = z.object({
  kind: z.enum(['create', 'destroy']), gpu: z.string(), typeId: z.number().int().optional(), vgpu: z.string().optional(),
  vf: z.number().int().optional(), done: z.boolean(),
});
const errSchema = z.object({ code: z.string(), message: z.string(), hint: z.string().optional() });
const recordSchema = z.object({
  version: z.literal(REQUEST_JOURNAL_VERSION),
  id: z.string().regex(REQUEST_ID_PATTERN),
  state: z.enum(['running', 'rolling-back', 'done', 'rolled-back', 'failed']),
  intent: z.discriminatedUnion('kind', [
    z.object({ kind: z.literal('create'), gpu: z.string(), type: z.union([z.string(), z.number()]), count: z.number().int().positive(), vf: z.number().int().optional() }),
    z.object({
      kind: z.literal('apply'), config: z.string(), force: z.boolean(),
      desired: z.array(z.object({ gpu: z.string(), counts: z.array(z.object({ typeId: z.number().int(), count: z.number().int().nonnegative() })) })),
    }),
  ]),
  steps: z.array(stepSchema),
  createdAt: z.number(),
  updatedAt: z.number(),
  result: z.object({ created: z.array(z.string()), destroyed: z.array(z.string()) }).optional(),
  error: errSchema.optional(),
  recovered: z.object({ at: z.number(), action: z.enum(['finished', 'rolled-back', 'failed']), note: z.string() }).optional(),
});

export class FileRequestJournal extends MemoryRequestJournal {
  private readonly chains = new WriteChains();
  private opened = false;

  constructor(readonly dir: string, private logger?: Logger, keepFinished = KEEP_FINISHED_REQUESTS) {
    super(keepFinished);
  }

  setLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** Create the dir if needed and load every record; a torn temp file is removed, an unreadable record kept aside. */
  async open(): Promise<void> {
    // Like the vGPU journal's dir: ours, closed to others, and not a link planted to move it elsewhere.
    await ensurePrivateDir(this.dir, { what: 'request journal dir', setting: '--state-dir, or api.stateDir in the config', noLink: true });
    this.recs.clear();
    for (const name of (await readdir(this.dir)).sort()) {
      const path = join(this.dir, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        await unlink(path).catch(() => {});
        continue;
      }
      if (!FILE_RE.test(name)) continue;
      try {
        // Never through a planted link, FIFO or another user's file (core/fs/own-file.ts).
        const { version: _v, ...r } = recordSchema.parse(JSON.parse((await readOwnFile(path, 1 << 20)).toString('utf8')));
        this.recs.set(r.id, r as RequestRecord);
      } catch (error) {
        // Not this journal's writing (its writes are atomic): leave it for a human, never echo its content.
        this.logger?.error('ignoring an unreadable request record', { path, error: (error as Error).name });
      }
    }
    this.opened = true;
  }

  override put(record: RequestRecord): Promise<void> {
    if (!this.opened) throw new VgpuError(ErrorCode.IllegalState, 'the request journal is not open', { hint: 'call open() first' });
    if (!REQUEST_ID_PATTERN.test(record.id)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `request id '${record.id.slice(0, 64)}' cannot be a journal file name`, { hint: 'use letters, digits, . _ -' });
    }
    const data = `${JSON.stringify({ version: REQUEST_JOURNAL_VERSION, ...record }, null, 2)}\n`;
    const id = record.id;
    // A full state dir is VGPU_ESTATEFULL naming what to free, like the vGPU journal's writes.
    const write = this.chains.run(id, () => atomicWriteFile(join(this.dir, `req-${id}.json`), data))
      .catch((e: unknown) => { throw journalWriteError(this.dir, `req-${id}.json`, e); });
    for (const old of this.remember(record)) {
      void this.chains.run(old, () => this.unlinkDurably(`req-${old}.json`)).catch((error: unknown) => this.logger?.warn('could not delete an old request record', { request: old, error }));
    }
    return write;
  }

  /** Wait for every pending write. */
  flush(): Promise<void> {
    return this.chains.flush();
  }

  private async unlinkDurably(name: string): Promise<void> {
    await unlink(join(this.dir, name)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    await fsyncDir(this.dir);
  }
}
