/**
 * HostVfJournal (core/contracts/host-vf-journal.ts) on files: `host-vfs/vf-<id>.json` per vGPU and
 * `host-vfs/types-<gpu>.json` per GPU catalogue, in the state dir, each replaced atomically (atomic-write.ts) and
 * written in order per file (write-chain.ts). The in-memory view (MemoryHostVfJournal's) changes at call time.
 */
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { HostTypeCatalogue, HostVfRecord } from '../../core/contracts/host-vf-journal.js';
import type { Logger } from '../../core/contracts/logger.js';
import { MemoryHostVfJournal } from '../../core/journal/memory-host-vf-journal.js';
import { atomicWriteFile, fsyncDir, TEMP_SUFFIX } from './atomic-write.js';
import { WriteChains } from './write-chain.js';

export const HOST_VF_JOURNAL_VERSION = 1;
const ID = /^[A-Za-z0-9._:-]{1,100}$/;
const VF_RE = /^vf-(.+)\.json$/;
const TYPES_RE = /^types-([0-9a-f:.]+)\.json$/;
const bdf = z.string().regex(/^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$/);

const recordSchema = z.object({
  version: z.literal(HOST_VF_JOURNAL_VERSION),
  id: z.string().regex(ID), gpu: bdf, vf: z.number().int().nonnegative(), vfBdf: bdf,
  typeId: z.number().int().nonnegative(), typeName: z.string().max(200),
  state: z.enum(['setting', 'set', 'clearing']),
  adopted: z.boolean().optional(), requestId: z.string().min(1).max(64).optional(),
  createdAt: z.number(), updatedAt: z.number(),
});
const catalogueSchema = z.object({
  version: z.literal(HOST_VF_JOURNAL_VERSION),
  gpu: bdf,
  types: z.array(z.object({ id: z.number().int().positive(), name: z.string().min(1).max(200) })).max(4096),
  updatedAt: z.number(),
});

export class FileHostVfJournal extends MemoryHostVfJournal {
  private readonly chains = new WriteChains();
  private opened = false;

  constructor(readonly dir: string, private logger?: Logger) {
    super();
  }

  setLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** Create the dir if needed and load every record; a torn temp file is removed, an unreadable record kept aside. */
  async open(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new VgpuError(ErrorCode.Config, `cannot create the host VF journal dir ${this.dir}: ${(cause as Error).message}`, {
        hint: 'pass a writable --state-dir (or api.stateDir in the config)', details: { dir: this.dir }, cause,
      });
    }
    this.recs.clear();
    this.cats.clear();
    for (const name of (await readdir(this.dir)).sort()) {
      const path = join(this.dir, name);
      if (name.endsWith(TEMP_SUFFIX)) {
        await unlink(path).catch(() => {});
        continue;
      }
      try {
        if (VF_RE.test(name)) {
          const { version: _v, ...r } = recordSchema.parse(JSON.parse(await readFile(path, 'utf8')));
          this.recs.set(r.id, stripUndefined(r) as HostVfRecord);
        } else if (TYPES_RE.test(name)) {
          const { version: _v, ...c } = catalogueSchema.parse(JSON.parse(await readFile(path, 'utf8')));
          this.cats.set(c.gpu, c);
        }
      } catch (error) {
        // Not this journal's writing (its writes are atomic): leave it for a human, never echo its content.
        this.logger?.error('ignoring an unreadable host VF record', { path, error: (error as Error).name });
      }
    }
    this.opened = true;
  }

  override put(record: HostVfRecord): Promise<void> {
    this.mustBeOpen();
    if (!ID.test(record.id)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `vGPU id '${record.id.slice(0, 100)}' cannot be a journal file name`, { hint: 'ids may contain letters, digits and . _ : -' });
    }
    void super.put(record);
    const data = `${JSON.stringify({ version: HOST_VF_JOURNAL_VERSION, ...record }, null, 2)}\n`;
    return this.chains.run(`vf-${record.id}`, () => atomicWriteFile(join(this.dir, `vf-${record.id}.json`), data));
  }

  override remove(id: string): Promise<void> {
    this.mustBeOpen();
    void super.remove(id);
    return this.chains.run(`vf-${id}`, async () => {
      await unlink(join(this.dir, `vf-${id}.json`)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
      await fsyncDir(this.dir);
    });
  }

  override putCatalogue(catalogue: HostTypeCatalogue): Promise<void> {
    this.mustBeOpen();
    const gpu = catalogue.gpu.toLowerCase();
    void super.putCatalogue({ ...catalogue, gpu });
    const data = `${JSON.stringify({ version: HOST_VF_JOURNAL_VERSION, ...catalogue, gpu }, null, 2)}\n`;
    return this.chains.run(`types-${gpu}`, () => atomicWriteFile(join(this.dir, `types-${gpu}.json`), data));
  }

  /** Wait for every pending write. */
  flush(): Promise<void> {
    return this.chains.flush();
  }

  private mustBeOpen(): void {
    if (!this.opened) throw new VgpuError(ErrorCode.IllegalState, 'the host VF journal is not open', { hint: 'call open() first' });
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
