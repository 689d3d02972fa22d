/**
 * VgpuJournal (core/contracts/vgpu-journal.ts) on files in the state dir, each replaced atomically
 * (atomic-write.ts): `vgpu-<id>.json` per vGPU, `gpu-<bdf>.json` per GPU, `seq-<name>.json` per sequence,
 * `quarantine-<bdf>-vf<N>.json` per quarantined VF.
 *
 * One file per record: a transition rewrites a few hundred bytes, and two vGPUs changing at once never race on one
 * file. Writes to one file are chained, so the last write always wins; the in-memory view changes synchronously
 * at call time, so a reader never sees an older state than the last write asked for — and a write that fails puts
 * the view back, so it never claims what the disk does not hold.
 *
 * Nothing in the dir is trusted: the dir must be ours and closed to others (core/fs/private-dir.ts); files are
 * opened without following links and must be regular files of ours (core/fs/own-file.ts). A file that is not
 * (planted) or does not parse (damaged) is reported by `damaged()` with a reason in our own words — never its
 * bytes — and moved to `damaged/`; a damaged sequence restarts above every number the journal still knows.
 */
import { readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import type {
  JournalDamage, JournalGpu, JournalQuarantine, JournalSequence, JournalVgpu, RebuiltSequence, ReconcileReport, VgpuJournal,
} from '../../core/contracts/vgpu-journal.js';
import { isUnsafeFileError, readOwnFile } from '../../core/fs/own-file.js';
import { ensurePrivateDir } from '../../core/fs/private-dir.js';
import { atomicWriteFile, fsyncDir, TEMP_SUFFIX } from './atomic-write.js';
import {
  GPU_RE, JOURNAL_VERSION, MAX_RECORD_BYTES, QUARANTINE_RE, SEQ_RE, VGPU_RE, gpuSchema, parseRecord, quarantineFile,
  quarantineSchema, seqSchema, stripUndefined, toJson, vgpuSchema,
} from './journal-schemas.js';
import { journalWriteError } from './journal-write-error.js';
import { salvageGpu, salvageVgpu } from './record-salvage.js';

export { JOURNAL_VERSION } from './journal-schemas.js';

/** First value of a sequence nobody reserved yet (1: 0 is never a valid id or handle suffix). */
const SEQ_START = 1;
const SEQUENCES: readonly JournalSequence[] = ['vgpu-id', 'rm-handle'];
/**
 * How far a rebuilt sequence starts above the highest number still on record: a GPU record's copy of the sequence
 * may be one block behind the lost file (the lifecycle reserves 64 at a time), so one block more never repeats one.
 */
export const SEQ_REBUILD_MARGIN = 64;
/** Sub-directory damaged and planted files are moved to. */
export const DAMAGED_DIR = 'damaged';

type Kind = JournalDamage['kind'];

function kindOf(name: string): Kind | undefined {
  if (VGPU_RE.test(name)) return 'vgpu';
  if (GPU_RE.test(name)) return 'gpu';
  if (SEQ_RE.test(name)) return 'sequence';
  if (QUARANTINE_RE.test(name)) return 'quarantine';
  return undefined;
}

export class FileVgpuJournal implements VgpuJournal {
  private readonly vgpuRecs = new Map<string, JournalVgpu>();
  private readonly gpuRecs = new Map<string, JournalGpu>();
  private readonly quarantine = new Map<string, JournalQuarantine>();
  private readonly seqs = new Map<string, number>();
  private readonly chains = new Map<string, Promise<void>>();
  private damage: JournalDamage[] = [];
  private rebuilt: RebuiltSequence[] = [];
  private report: ReconcileReport | undefined;
  private opened = false;

  constructor(readonly dir: string, private logger?: Logger) {}

  setLogger(logger: Logger): void {
    this.logger = logger;
  }

  /** Check (or create) the dir, load every usable record, set aside what is not, rebuild damaged sequences. */
  async open(): Promise<void> {
    await ensurePrivateDir(this.dir, { what: 'state dir', setting: '--state-dir, or api.stateDir in the config' });
    this.vgpuRecs.clear();
    this.gpuRecs.clear();
    this.quarantine.clear();
    this.seqs.clear();
    this.damage = [];
    this.rebuilt = [];
    const seqFloor = new Map<string, number>();
    let anyRecord = false;
    for (const name of (await readdir(this.dir)).sort()) {
      const path = join(this.dir, name);
      if (name.startsWith('.') && name.endsWith(TEMP_SUFFIX)) {
        // A write that never reached its rename: the record it would have replaced is intact. unlink removes a
        // planted link itself, never its target.
        this.logger?.warn('removing a torn journal temp file', { file: name });
        await unlink(path).catch(() => {});
        continue;
      }
      const kind = kindOf(name);
      if (kind === undefined) continue; // not ours (a later journal kind, damaged/, notes of an operator)
      anyRecord = true;
      let text: string;
      try {
        text = (await readOwnFile(path, MAX_RECORD_BYTES)).toString('utf8');
      } catch (e) {
        if (!isUnsafeFileError(e)) throw this.readError(name, e);
        // Never written by this journal (it writes regular files of its own only): refused unread.
        this.noteDamage({ file: name, kind, reason: e.detail, unsafe: true });
        await this.setAsideQuietly(name);
        continue;
      }
      if (kind === 'vgpu') {
        const id = VGPU_RE.exec(name)![1]!;
        const r = parseRecord(vgpuSchema, text);
        if (r.ok && r.value.id === id) {
          const { version: _v, ...rec } = r.value;
          this.vgpuRecs.set(rec.id, stripUndefined(rec) as JournalVgpu);
        } else {
          // Kept in place until the lifecycle has quarantined its VF (it sets the file aside then).
          this.noteDamage({ file: name, kind, reason: r.ok ? `its id is not the one in its file name` : r.reason, unsafe: false, salvaged: salvageVgpu(text, id) });
        }
      } else if (kind === 'gpu') {
        const bdf = GPU_RE.exec(name)![1]!;
        const r = parseRecord(gpuSchema, text);
        if (r.ok) {
          const { version: _v, seqs, ...rec } = r.value;
          this.gpuRecs.set(rec.bdf, rec);
          for (const [s, v] of Object.entries(seqs ?? {})) seqFloor.set(s, Math.max(seqFloor.get(s) ?? 0, v));
        } else {
          // Keep what can be read (stale manager clients to free, selections to restore); the lifecycle rewrites it.
          this.gpuRecs.set(bdf, salvageGpu(text, bdf));
          this.noteDamage({ file: name, kind, reason: r.reason, unsafe: false });
          await this.setAsideQuietly(name);
        }
      } else if (kind === 'sequence') {
        const r = parseRecord(seqSchema, text);
        if (r.ok) this.seqs.set(SEQ_RE.exec(name)![1]!, r.value.next);
        else {
          this.noteDamage({ file: name, kind, reason: r.reason, unsafe: false });
          await this.setAsideQuietly(name);
        }
      } else {
        const m = QUARANTINE_RE.exec(name)!;
        const r = parseRecord(quarantineSchema, text);
        if (r.ok) {
          const { version: _v, ...q } = r.value;
          this.quarantine.set(qKey(q.gpu, q.vf), stripUndefined(q) as JournalQuarantine);
        } else {
          // The file name still says which VF: it stays quarantined, now with nothing known about what it holds.
          const gpu = m[1]!.toLowerCase();
          const vf = Number(m[2]);
          this.quarantine.set(qKey(gpu, vf), {
            gpu, vf, reason: 'its quarantine record was unreadable', since: Date.now(), unknown: ['type', 'guest-fb', 'heap', 'chids', 'rm-client'],
          });
          this.noteDamage({ file: name, kind, reason: r.reason, unsafe: false });
          await this.setAsideQuietly(name);
        }
      }
    }
    this.rebuildSequences(seqFloor, anyRecord);
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

  damaged(): JournalDamage[] {
    return this.damage.map((d) => ({ ...d }));
  }

  rebuiltSequences(): RebuiltSequence[] {
    return this.rebuilt.map((r) => ({ ...r }));
  }

  quarantined(): JournalQuarantine[] {
    return [...this.quarantine.values()].sort((a, b) => a.gpu.localeCompare(b.gpu) || a.vf - b.vf);
  }

  putVgpu(record: JournalVgpu): Promise<void> {
    this.mustBeOpen();
    if (!VGPU_RE.test(`vgpu-${record.id}.json`)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `vGPU id '${record.id}' cannot be a journal file name`, {
        hint: 'ids may contain letters, digits and . _ : -',
      });
    }
    const rec = { ...record };
    const data = toJson({ version: JOURNAL_VERSION, ...rec });
    return this.update(this.vgpuRecs, rec.id, rec, `vgpu-${rec.id}.json`, (file) => atomicWriteFile(join(this.dir, file), data));
  }

  removeVgpu(id: string): Promise<void> {
    this.mustBeOpen();
    return this.update(this.vgpuRecs, id, undefined, `vgpu-${id}.json`, (file) => this.unlinkDurably(file));
  }

  putGpu(record: JournalGpu): Promise<void> {
    this.mustBeOpen();
    if (!GPU_RE.test(`gpu-${record.bdf}.json`)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `GPU '${record.bdf}' cannot be a journal file name`, { hint: 'pass a PCI address' });
    }
    const rec = { ...record, managerClients: [...record.managerClients], selections: record.selections.map((s) => ({ ...s })) };
    // Each GPU record also carries the sequences' high-water marks: a second copy to rebuild a damaged seq file.
    const data = toJson({ version: JOURNAL_VERSION, ...rec, seqs: Object.fromEntries(this.seqs) });
    return this.update(this.gpuRecs, rec.bdf, rec, `gpu-${rec.bdf}.json`, (file) => atomicWriteFile(join(this.dir, file), data));
  }

  putQuarantine(q: JournalQuarantine): Promise<void> {
    this.mustBeOpen();
    const file = quarantineFile(q.gpu, q.vf);
    if (!QUARANTINE_RE.test(file)) {
      throw new VgpuError(ErrorCode.InvalidArgument, `GPU '${q.gpu}' VF ${q.vf} cannot be a journal file name`, { hint: 'pass a PCI address and a VF index' });
    }
    const rec = { ...q, unknown: [...q.unknown] };
    const data = toJson({ version: JOURNAL_VERSION, ...rec });
    return this.update(this.quarantine, qKey(q.gpu, q.vf), rec, file, (f) => atomicWriteFile(join(this.dir, f), data));
  }

  removeQuarantine(gpu: string, vf: number): Promise<void> {
    this.mustBeOpen();
    return this.update(this.quarantine, qKey(gpu, vf), undefined, quarantineFile(gpu, vf), (f) => this.unlinkDurably(f));
  }

  reserve(seq: JournalSequence, count: number, opts: { atLeast?: number } = {}): Promise<number> {
    this.mustBeOpen();
    if (!Number.isInteger(count) || count < 1) {
      throw new VgpuError(ErrorCode.InvalidArgument, `cannot reserve ${count} numbers of ${seq}`, { hint: 'reserve at least one' });
    }
    // The in-memory counter moves at call time, so two reservations never overlap even before either is on disk.
    // A failed write leaves it moved: that wastes numbers, it never repeats one.
    const first = Math.max(this.seqs.get(seq) ?? SEQ_START, opts.atLeast ?? SEQ_START);
    const next = first + count;
    this.seqs.set(seq, next);
    const name = `seq-${seq}.json`;
    return this.chain(name, () => atomicWriteFile(join(this.dir, name), toJson({ version: JOURNAL_VERSION, next }))).then(() => first);
  }

  async setAside(file: string): Promise<void> {
    const aside = join(this.dir, DAMAGED_DIR);
    await ensurePrivateDir(aside, { what: 'dir of damaged journal files', setting: 'the state dir', noLink: true });
    // rename moves a link itself, never its target.
    await rename(join(this.dir, file), join(aside, `${file}.${Date.now()}`));
    await fsyncDir(this.dir);
    this.logger?.warn('moved a journal file out of the way', { file, to: `${DAMAGED_DIR}/` });
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

  // ---------------------------------------------------------------------------------------------------------------

  /**
   * A sequence whose file is damaged, or missing while other records exist, restarts one margin above the highest
   * mark any GPU record carries; a readable one is still moved up to that mark (a file restored from an old backup
   * must not hand out numbers again). The lifecycle raises it further to what its records hold (`atLeast`).
   */
  private rebuildSequences(floor: ReadonlyMap<string, number>, anyRecord: boolean): void {
    for (const seq of SEQUENCES) {
      const have = this.seqs.get(seq);
      const mark = floor.get(seq) ?? SEQ_START;
      const damaged = this.damage.some((d) => d.kind === 'sequence' && d.file === `seq-${seq}.json`);
      if (have !== undefined && !damaged) {
        this.seqs.set(seq, Math.max(have, mark));
        continue;
      }
      if (!damaged && !anyRecord) continue; // a fresh state dir
      const next = mark + SEQ_REBUILD_MARGIN;
      this.seqs.set(seq, next);
      const why = damaged ? 'its file was unreadable' : 'its file was missing';
      this.rebuilt.push({ seq, next, why });
      this.logger?.error('rebuilt a journal sequence', { seq, next, why });
    }
  }

  private noteDamage(d: JournalDamage): void {
    this.damage.push(d);
    // The reason is ours; the file's bytes never reach the log.
    this.logger?.error(d.unsafe ? 'refused a journal file the journal did not write' : 'journal record unreadable', {
      file: d.file, kind: d.kind, reason: d.reason,
    });
  }

  private async setAsideQuietly(file: string): Promise<void> {
    try {
      await this.setAside(file);
    } catch (error) {
      this.logger?.error('could not move a journal file out of the way; it is ignored', { file, error: (error as Error).message });
    }
  }

  /**
   * Change one record in memory now and on disk in order; if the write fails, put back what the record was (unless
   * a later call has changed it since) and reject with the typed write error.
   */
  private update<T>(map: Map<string, T>, key: string, value: T | undefined, file: string, write: (file: string) => Promise<void>): Promise<void> {
    const before = map.get(key);
    if (value === undefined) map.delete(key);
    else map.set(key, value);
    return this.chain(file, () => write(file)).catch((e: unknown) => {
      if (map.get(key) === value) {
        if (before === undefined) map.delete(key);
        else map.set(key, before);
      }
      throw e;
    });
  }

  private async unlinkDurably(name: string): Promise<void> {
    await unlink(join(this.dir, name)).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'ENOENT') throw e; });
    await fsyncDir(this.dir);
  }

  private chain(key: string, fn: () => Promise<void>): Promise<void> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.catch(() => {}).then(fn).catch((e: unknown) => { throw journalWriteError(this.dir, key, e); });
    this.chains.set(key, next);
    void next.finally(() => { if (this.chains.get(key) === next) this.chains.delete(key); }).catch(() => {});
    return next;
  }

  private readError(file: string, cause: unknown): VgpuError {
    return new VgpuError(ErrorCode.Config, `cannot read ${file} in the state dir ${this.dir}: ${(cause as NodeJS.ErrnoException).code ?? (cause as Error).message}`, {
      hint: `check the permissions and filesystem of ${this.dir}`, details: { dir: this.dir, file }, cause,
    });
  }

  private mustBeOpen(): void {
    if (!this.opened) {
      throw new VgpuError(ErrorCode.IllegalState, 'the state journal is not open', { hint: 'call open() first' });
    }
  }
}

const qKey = (gpu: string, vf: number): string => `${gpu.toLowerCase()}#${vf}`;

