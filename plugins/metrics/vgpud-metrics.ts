/**
 * The daemon's Prometheus metrics, on their own Registry (never prom-client's global one: a second daemon in the
 * same process — every test file — would throw "metric already registered").
 *
 * State gauges are computed at scrape time from the VgpuService, so /metrics can never drift from `vgpuctl list`.
 * Counters and the RPC histogram are fed by bus events between scrapes.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { EventBus } from '../../core/contracts/events.js';
import type { VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import type { VgpuAttachments } from '../../core/contracts/vgpu-attachments.js';

export interface VgpudMetrics {
  registry: Registry;
  /** Subscribe the counters to the bus; returns unsubscribe. */
  attach(bus: EventBus): () => void;
}

export interface VgpudMetricsOptions {
  processMetrics?: boolean;
  /** The vfio-user face's per-vGPU view, when that plugin runs (read at scrape time). */
  attachments?: () => VgpuAttachments | undefined;
  /** Who holds each vGPU (a Kubernetes node's pods), when the k8s plugin runs. */
  holders?: () => VgpuHolders | undefined;
}

export function createVgpudMetrics(service: () => VgpuService, opts: VgpudMetricsOptions = {}): VgpudMetrics {
  const registry = new Registry();
  // prom-client samples event-loop delay with a libuv timer at this period (its default, 10 ms, wakes an idle daemon
  // 100 times a second — most of what "idle" cost with no vGPUs at all). Once a second is plenty for a gauge scraped
  // every 15 s or more.
  if (opts.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'vgpud_', eventLoopMonitoringPrecision: 1000 });
  const registers = [registry];

  new Gauge({
    name: 'vgpud_gpu_fb_bytes', help: 'Framebuffer of a physical GPU by kind (total, used, free, stranded, largest_free)',
    labelNames: ['gpu', 'kind'] as const, registers,
    collect() {
      this.reset();
      for (const g of service().gpus()) {
        // A GPU whose FB the kernel accounts (sysfs backend) has no series here rather than made-up numbers.
        if (g.fb === undefined) continue;
        this.set({ gpu: g.bdf, kind: 'total' }, Number(g.fb.total));
        this.set({ gpu: g.bdf, kind: 'used' }, Number(g.fb.used));
        this.set({ gpu: g.bdf, kind: 'free' }, Number(g.fb.free));
        this.set({ gpu: g.bdf, kind: 'stranded' }, Number(g.fb.stranded));
        this.set({ gpu: g.bdf, kind: 'largest_free' }, Number(g.fb.largestFree));
      }
    },
  });
  new Gauge({
    name: 'vgpud_gpu_vgpus', help: 'vGPUs on a physical GPU by state and type',
    labelNames: ['gpu', 'state', 'type'] as const, registers,
    collect() {
      this.reset();
      const counts = new Map<string, { gpu: string; state: string; type: string; n: number }>();
      for (const v of service().list()) {
        const key = `${v.gpu}|${v.state}|${v.typeName}`;
        const c = counts.get(key) ?? { gpu: v.gpu, state: v.state, type: v.typeName, n: 0 };
        c.n += 1;
        counts.set(key, c);
      }
      for (const c of counts.values()) this.set({ gpu: c.gpu, state: c.state, type: c.type }, c.n);
    },
  });
  new Gauge({
    name: 'vgpud_gpu_info', help: 'A managed physical GPU (value 1); labels carry its name, state and type policy',
    labelNames: ['gpu', 'name', 'state', 'policy', 'firmware'] as const, registers,
    collect() {
      this.reset();
      for (const g of service().gpus()) {
        this.set({ gpu: g.bdf, name: g.name, state: g.state, policy: g.policy, firmware: g.firmwareVersion }, 1);
      }
    },
  });
  new Gauge({
    name: 'vgpud_vgpu_info',
    help: 'A vGPU (value 1); labels carry its GPU, VF, type, state and, on a Kubernetes node, the pod and namespace holding it',
    // `pod`/`namespace` as the Kubernetes instrumentation guidelines name them, so a join with the pod's own metrics works.
    labelNames: ['vgpu', 'gpu', 'vf', 'type', 'state', 'in_use', 'namespace', 'pod'] as const, registers,
    async collect() {
      const held = await opts.holders?.()?.current();
      this.reset();
      for (const v of service().list()) {
        const h = held?.get(v.id);
        this.set({
          // in_use "" where the backend cannot tell (sysfs: the kernel answers EBUSY instead).
          vgpu: v.id, gpu: v.gpu, vf: String(v.vf), type: v.typeName, state: v.state,
          in_use: v.inUse === undefined ? '' : v.inUse ? '1' : '0',
          namespace: h?.namespace ?? '', pod: h?.pod ?? '',
        }, 1);
      }
    },
  });
  new Gauge({
    name: 'vgpud_vgpu_fb_bytes', help: 'Framebuffer slice of a vGPU in bytes', labelNames: ['vgpu', 'gpu'] as const, registers,
    collect() {
      this.reset();
      for (const v of service().list()) if (v.fb !== undefined) this.set({ vgpu: v.id, gpu: v.gpu }, Number(v.fb.size));
    },
  });
  new Gauge({
    name: 'vgpud_vgpu_last_scrub_timestamp_seconds', help: 'When the vGPU FB slice was last scrubbed',
    labelNames: ['vgpu', 'gpu', 'reason'] as const, registers,
    collect() {
      this.reset();
      for (const v of service().list()) {
        if (v.lastScrub) this.set({ vgpu: v.id, gpu: v.gpu, reason: v.lastScrub.reason }, v.lastScrub.at / 1000);
      }
    },
  });
  new Gauge({
    name: 'vgpud_vgpu_last_scrub_verified',
    help: 'Result of the verify pass of the last scrub: 1 verified, 0 verify FAILED, -1 no verify pass was run',
    labelNames: ['vgpu', 'gpu'] as const, registers,
    collect() {
      this.reset();
      for (const v of service().list()) {
        if (v.lastScrub) this.set({ vgpu: v.id, gpu: v.gpu }, v.lastScrub.verified === null ? -1 : v.lastScrub.verified ? 1 : 0);
      }
    },
  });

  new Gauge({
    name: 'vgpud_unmanaged_vfs',
    help: 'VFs holding a vGPU type vgpud did not set (reason not-adopted) or that changed behind its back (reason changed); vgpud leaves them alone',
    labelNames: ['gpu', 'reason'] as const, registers,
    collect() {
      this.reset();
      const counts = new Map<string, { gpu: string; reason: string; n: number }>();
      for (const u of service().unmanagedVfs?.() ?? []) {
        const key = `${u.gpu}|${u.reason}`;
        const c = counts.get(key) ?? { gpu: u.gpu, reason: u.reason, n: 0 };
        c.n += 1;
        counts.set(key, c);
      }
      for (const c of counts.values()) this.set({ gpu: c.gpu, reason: c.reason }, c.n);
    },
  });
  new Gauge({
    name: 'vgpud_vf_type_changed',
    help: 'A VF whose vGPU type is not the one vgpud set (value 1): the vGPU it made, the type it set, the type found (0: cleared)',
    labelNames: ['gpu', 'vf', 'vgpu', 'expected_type', 'found_type'] as const, registers,
    collect() {
      this.reset();
      for (const u of service().unmanagedVfs?.() ?? []) {
        if (u.reason !== 'changed') continue;
        this.set({ gpu: u.gpu, vf: u.vfBdf, vgpu: u.vgpuId ?? '', expected_type: String(u.expectedTypeId ?? ''), found_type: String(u.typeId) }, 1);
      }
    },
  });

  // vfio-user: one snapshot of the fronts per scrape, shared by the four families below (each collect() asks
  // for it; the first one of a scrape fetches it).
  let snap: ReturnType<VgpuAttachments['snapshot']> | null = null;
  const attachments = (): ReturnType<VgpuAttachments['snapshot']> => {
    if (snap === null) {
      snap = opts.attachments?.()?.snapshot().catch(() => []) ?? Promise.resolve([]);
      const taken = snap;
      void taken.finally(() => setImmediate(() => { if (snap === taken) snap = null; }));
    }
    return snap;
  };
  new Gauge({
    name: 'vgpud_vgpu_vfio_user_attached', help: 'A VMM is attached to the vGPU\'s vfio-user socket (1) or not (0)',
    labelNames: ['vgpu', 'gpu', 'vf'] as const, registers,
    async collect() {
      this.reset();
      for (const a of await attachments()) this.set({ vgpu: a.vgpuId, gpu: a.gpu, vf: String(a.vf) }, a.attached ? 1 : 0);
    },
  });
  // Totals kept by the device front (since the vGPU was first served by it); per second: rate() in PromQL.
  new Counter({
    name: 'vgpud_vgpu_vfio_user_mmio_accesses_total', help: 'Trapped BAR0 accesses of the VMM (REGION_READ / REGION_WRITE)',
    labelNames: ['vgpu', 'gpu', 'op'] as const, registers,
    async collect() {
      this.reset();
      for (const a of await attachments()) {
        this.inc({ vgpu: a.vgpuId, gpu: a.gpu, op: 'read' }, a.mmioReads);
        this.inc({ vgpu: a.vgpuId, gpu: a.gpu, op: 'write' }, a.mmioWrites);
      }
    },
  });
  new Counter({
    name: 'vgpud_vgpu_vfio_user_interrupts_total', help: 'Interrupts delivered to the VMM (eventfd signals)',
    labelNames: ['vgpu', 'gpu'] as const, registers,
    async collect() {
      this.reset();
      for (const a of await attachments()) this.inc({ vgpu: a.vgpuId, gpu: a.gpu }, a.interrupts);
    },
  });
  new Counter({
    name: 'vgpud_vgpu_vfio_user_dma_bytes_total', help: 'Bytes the device moved to or from the VMM\'s memory',
    labelNames: ['vgpu', 'gpu'] as const, registers,
    async collect() {
      this.reset();
      for (const a of await attachments()) this.inc({ vgpu: a.vgpuId, gpu: a.gpu }, a.dmaBytes);
    },
  });

  const rpcLatency = new Histogram({
    name: 'vgpud_rpc_latency_seconds', help: 'GSP RPC round-trip time (bus event rpc:latency)',
    labelNames: ['gpu', 'fn'] as const, registers,
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
  });
  const rpcErrors = new Counter({
    name: 'vgpud_rpc_errors_total', help: 'Failed GSP RPCs by error code', labelNames: ['gpu', 'code'] as const, registers,
  });
  const transitions = new Counter({
    name: 'vgpud_vgpu_transitions_total', help: 'vGPU state transitions by target state',
    labelNames: ['gpu', 'to'] as const, registers,
  });
  const exceptions = new Counter({
    name: 'vgpud_exceptions_total', help: 'Hardware/firmware exceptions by source and kind',
    labelNames: ['gpu', 'source', 'kind'] as const, registers,
  });

  return {
    registry,
    attach(bus) {
      const offs = [
        bus.on('rpc:latency', (e) => {
          rpcLatency.observe({ gpu: e.gpu, fn: e.fn }, e.ms / 1000);
          if (e.error !== undefined) rpcErrors.inc({ gpu: e.gpu, code: e.error });
        }),
        bus.on('vgpu:state', (e) => transitions.inc({ gpu: e.gpu, to: e.to })),
        bus.on('exception', (e) => exceptions.inc({ gpu: e.gpu, source: e.source, kind: e.kind })),
      ];
      return () => { for (const off of offs) off(); };
    },
  };
}
