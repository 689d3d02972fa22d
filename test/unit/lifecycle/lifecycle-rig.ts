/**
 * Set-up of the lifecycle tests on the mock HAL: a booted mock GPU whose firmware answers the manager's RM
 * controls, a PgpuManager over metadata built with the real writer, a fake plugin task answering the mailbox, and
 * a GpuLifecycle with short timeouts. `baseline` is the books right after the manager came up (only its client):
 * after any failed create or destroy the books must equal it again.
 */
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { EventBusImpl } from '../../../core/event-bus.js';
import { ExceptionRelayImpl } from '../../../core/exception-relay.js';
import type { BusEvents } from '../../../core/contracts/events.js';
import type { LogLevel } from '../../../core/contracts/logger.js';
import type { FbScrubber, ScrubRequest } from '../../../core/contracts/scrubber.js';
import type { ScrubRecord } from '../../../core/contracts/vgpu-service.js';
import type { VgpuJournal } from '../../../core/contracts/vgpu-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import type { VgpuTypeRecord } from '../../../core/metadata/metadata-file.js';
import { buildMetadata } from '../../../core/metadata/metadata-writer.js';
import { RmControl } from '../../../core/firmware-abi/rm-controls.js';
import { PgpuManager } from '../../../core/manager/pgpu-manager.js';
import type { VgpuPolicy } from '../../../core/manager/type-policy.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import { answerManagerControls } from '../../../hal/mock/mock-manager-controls.js';
import { ALL_MOCK_CAPS } from '../../../hal/mock/mock-pci-bus.js';
import type { MockBooks, MockGpu } from '../../../hal/mock/mock-gpu.js';
import { GpuLifecycle } from '../../../plugins/lifecycle/gpu-lifecycle.js';
import type { LifecycleTimeouts } from '../../../plugins/lifecycle/create-steps.js';
import { FakePluginTasks, type FakePluginTaskOptions } from '../../helpers/fake-plugin-task.js';

export const GiB = 1n << 30n;
export const MiB = 1n << 20n;
export const BDF = '0000:41:00.0';

export function vtype(id: number, name: string, fbGiB: number, maxInstance: number, extra: Partial<VgpuTypeRecord> = {}): VgpuTypeRecord {
  return {
    id, name, vdevId: (0x26b1 << 16) | (id & 0xffff), pdevId: 0x26b1, fbLength: BigInt(fbGiB) * GiB,
    gspHeapSize: 32n * MiB, bar1LengthMiB: 256, maxInstance, eccSupported: true, fbReservation: 0n, ...extra,
  };
}

/** 48 GiB board: -1Q … -24Q. */
export const TYPES: VgpuTypeRecord[] = [
  vtype(941, 'NVIDIA RTX6000-Ada-1Q', 1, 32),
  vtype(944, 'NVIDIA RTX6000-Ada-4Q', 4, 12),
  vtype(946, 'NVIDIA RTX6000-Ada-8Q', 8, 6, { gspHeapSize: 64n * MiB }),
  // 23 GiB, as the real catalogue shrinks FB-limited types: 2 × 24 GiB + heaps would not fit 48 GiB.
  vtype(949, 'NVIDIA RTX6000-Ada-24Q', 23, 2, { gspHeapSize: 128n * MiB }),
];

export function metadata(types: readonly VgpuTypeRecord[] = TYPES): Uint8Array {
  return buildMetadata({
    vgpuMajor: 18, vgpuMinor: 1, gspVersion: '570.144',
    blobs: [{ deviceId: 0x26b1, rmctrlCmd: RmControl.VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, rmctrlPayload: new Uint8Array(16), types }],
  });
}

/** Make a mock GPU answer the manager's bring-up controls (VMMU segment, ECC, features, type upload). */
export { answerManagerControls };

export const readMeta = (bytes: Uint8Array) => async (path: string): Promise<Uint8Array> => {
  if (!path.endsWith('vgpu-570.144.bin')) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return bytes;
};

/** A scrubber that fills the range with zeros on the host and records each request; `fail` makes it reject. */
export class RecordingScrubber implements FbScrubber {
  readonly calls: ScrubRequest[] = [];
  fail: ((req: ScrubRequest) => boolean) | undefined;
  async scrub(req: ScrubRequest): Promise<ScrubRecord> {
    this.calls.push(req);
    if (this.fail?.(req) === true) throw new VgpuError(ErrorCode.Scrub, `injected scrub failure (${req.reason})`, { hint: 'test' });
    return { at: Date.now(), bytes: req.range.size, durationMs: 0, pattern: 0, verified: null, reason: req.reason };
  }
}

export interface RigOptions {
  types?: VgpuTypeRecord[];
  policy?: VgpuPolicy;
  task?: FakePluginTaskOptions;
  /** null: no scrubber (then create is refused unless allowUnscrubbedFb). */
  scrubber?: FbScrubber | null;
  allowUnscrubbedFb?: boolean;
  timeouts?: Partial<LifecycleTimeouts>;
  totalVfs?: number;
  /** Write-ahead journal for the lifecycle (none by default). */
  journal?: VgpuJournal;
  /** A mock without the 'gpu-reset' capability: a lost GPU stays lost. */
  noReset?: boolean;
  /** ECC enabled on the GPU (default off). */
  ecc?: boolean;
  /** Lines below this level are not kept (default debug: tests assert on debug lines; the bench runs at warn). */
  logLevel?: LogLevel;
}

export interface Rig {
  mock: MockHal;
  gpu: MockGpu;
  mgr: PgpuManager;
  lc: GpuLifecycle;
  bus: EventBusImpl;
  relay: ExceptionRelayImpl;
  logger: MemoryLogger;
  tasks: FakePluginTasks;
  scrubber: RecordingScrubber | undefined;
  baseline: MockBooks;
  /** Every bus event of these kinds, in order. */
  events: Array<{ name: keyof BusEvents; e: unknown }>;
  states(vgpuId: string): string[];
}

export async function rig(opts: RigOptions = {}): Promise<Rig> {
  const mock = new MockHal({
    devices: [{ bdf: BDF, totalVfs: opts.totalVfs ?? 8, ...(opts.noReset === true ? { caps: ALL_MOCK_CAPS.filter((c) => c !== 'gpu-reset') } : {}) }],
    rpcTimeoutMs: 2000,
  });
  const logger = new MemoryLogger({ level: opts.logLevel ?? 'debug' });
  const gpu = await mock.openDevice(undefined, { logger });
  await gpu.firmware.boot({ version: '570.144' });
  answerManagerControls(gpu, 512n * MiB, opts.ecc === true);
  const mgr = await PgpuManager.create({
    gpu, logger, metadataDir: '/meta', readFile: readMeta(metadata(opts.types)), ...(opts.policy ? { policy: opts.policy } : {}),
  });
  const bus = new EventBusImpl(logger);
  const relay = new ExceptionRelayImpl(bus, logger);
  const events: Rig['events'] = [];
  for (const name of ['vgpu:state', 'vgpu:step', 'gpu:lost', 'exception'] as const) {
    bus.on(name, ((e: unknown) => { events.push({ name, e }); }) as never);
  }
  const tasks = FakePluginTasks.install(gpu, opts.task);
  const scrubber = opts.scrubber === null ? undefined : (opts.scrubber as RecordingScrubber | undefined) ?? new RecordingScrubber();
  let n = 0;
  const lc = new GpuLifecycle({
    gpu, mgr, bus, relay, logger, scrubber, ...(opts.allowUnscrubbedFb !== undefined ? { allowUnscrubbedFb: opts.allowUnscrubbedFb } : {}),
    timeouts: { rpcMs: 2000, bootloadMs: 300, mailboxMs: 300, scrubMs: 1000, pollIntervalMs: 1, ...opts.timeouts },
    newId: () => `vgpu-${++n}`,
    ...(opts.journal !== undefined ? { journal: opts.journal } : {}),
  });
  lc.start();
  return {
    mock, gpu, mgr, lc, bus, relay, logger, tasks, scrubber: scrubber as RecordingScrubber | undefined,
    baseline: mock.books(), events,
    states: (id) => events.filter((x) => x.name === 'vgpu:state' && (x.e as { vgpuId: string }).vgpuId === id).map((x) => (x.e as { to: string }).to),
  };
}
