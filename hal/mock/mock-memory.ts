/**
 * The mock GPU's framebuffer: the generic FramebufferMemoryImpl over a SparseByteStore, with every operation
 * recorded and open to fault injection.
 */
import { FramebufferMemoryImpl, type MappingInfo } from '../../core/alloc/framebuffer-memory.js';
import type { FbRange, FbReserveRequest, FbStats, FramebufferMemory, HostMapping } from '../../core/contracts/memory.js';
import type { MockControls, RunContext } from './mock-controls.js';
import { SparseByteStore } from './sparse-byte-store.js';

export { SparseByteStore } from './sparse-byte-store.js';

export class MockMemory implements FramebufferMemory {
  readonly totalBytes: bigint;
  /** The bytes (test access: `store.read(offset, n)`, `store.committedBytes()`). */
  readonly store: SparseByteStore;
  private readonly impl: FramebufferMemoryImpl;

  constructor(
    private readonly controls: MockControls,
    private readonly ctx: () => RunContext,
    opts: { totalBytes: bigint; maxCommitBytes?: bigint; name: string },
  ) {
    this.totalBytes = opts.totalBytes;
    this.store = new SparseByteStore(opts.totalBytes, opts.maxCommitBytes === undefined ? {} : { maxCommitBytes: opts.maxCommitBytes });
    this.impl = new FramebufferMemoryImpl({ totalBytes: opts.totalBytes, store: this.store, name: opts.name });
  }

  reserve(req: FbReserveRequest): FbRange {
    return this.controls.runSync('memory.reserve', this.ctx().gpu, { ...req }, () => this.impl.reserve(req));
  }

  free(range: FbRange): void {
    this.controls.runSync('memory.free', this.ctx().gpu, { id: range?.id, offset: range?.offset, size: range?.size }, () => this.impl.free(range));
  }

  map(range: FbRange, opts?: { offset?: bigint; size?: bigint }): HostMapping {
    return this.controls.runSync('memory.map', this.ctx().gpu, { id: range?.id, ...opts }, () => this.impl.map(range, opts));
  }

  stats(): FbStats {
    return this.impl.stats();
  }

  list(): FbRange[] {
    return this.impl.list();
  }

  fill(range: FbRange, pattern: number, opts?: { offset?: bigint; size?: bigint }): Promise<void> {
    return this.controls.run('memory.fill', { id: range?.id, pattern, ...opts }, this.ctx(), () => this.impl.fill(range, pattern, opts));
  }

  has(range: FbRange): boolean {
    return this.impl.has(range);
  }

  mappings(): MappingInfo[] {
    return this.impl.mappings();
  }

  /** Free everything (GPU close). */
  freeAll(): void {
    for (const r of this.impl.list()) this.impl.free(r);
  }
}
