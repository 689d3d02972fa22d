/**
 * Keeps the NFD feature file in step with the node: recomputed after GPU and vGPU events (one pass per turn of the
 * event loop however many came), written only when its text changes, and atomically — a temp file whose name starts
 * with "." (NFD's local source skips hidden files) renamed over the target, so NFD never reads half a file.
 */
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { nfdFeatureLines } from './nfd-features.js';

export class NfdFeatureFile {
  private written: string | undefined;
  private scheduled = false;
  private chain: Promise<void> = Promise.resolve();
  private detach: (() => void) | undefined;
  private failing = false;
  /** Writes done (tests check that unchanged content is not rewritten). */
  writes = 0;

  constructor(private readonly path: string, private readonly service: VgpuService, private readonly log: Logger) {}

  async start(bus: EventBus): Promise<void> {
    this.written = await readFile(this.path, 'utf8').catch(() => undefined);
    const dirty = (): void => this.schedule();
    const offs = [bus.on('vgpu:state', dirty), bus.on('gpu:ready', dirty), bus.on('gpu:lost', dirty), bus.on('gpu:probed', dirty)];
    this.detach = () => { for (const off of offs) off(); };
    this.schedule();
    await this.settled();
  }

  async stop(): Promise<void> {
    this.detach?.();
    this.detach = undefined;
    await this.chain;
  }

  /** Resolves when every update asked for so far is on disk (or failed and was logged). */
  async settled(): Promise<void> {
    while (this.scheduled) await new Promise((r) => setImmediate(r));
    await this.chain;
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.chain = this.chain.then(() => this.update());
    });
  }

  private async update(): Promise<void> {
    const text = `${nfdFeatureLines(this.service).join('\n')}\n`;
    if (text === this.written) return;
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.tmp`);
    try {
      await mkdir(dirname(this.path), { recursive: true });
      await writeFile(tmp, text, { mode: 0o644 });
      await rename(tmp, this.path);
      this.written = text;
      this.writes++;
      if (this.failing) this.log.info('the NFD feature file is written again', { path: this.path });
      this.failing = false;
      this.log.debug('NFD feature file updated', { path: this.path });
    } catch (error) {
      await unlink(tmp).catch(() => {});
      if (!this.failing) this.log.warn('cannot write the NFD feature file; node labels from it stay stale', { path: this.path, error });
      this.failing = true;
    }
  }
}
