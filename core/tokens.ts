/**
 * Service identifiers of the one inversify container. Every injection names its token explicitly
 * (`@inject(TOKENS.X)`): tsx/esbuild emits no decorator metadata, so type-based injection would fail at run time.
 *
 * `Symbol.for` keeps tokens identical across module copies (an out-of-tree plugin with its own import path).
 */
export const TOKENS = {
  /** Root Logger. */
  Logger: Symbol.for('vgpud.Logger'),
  /** Validated daemon configuration (frozen object). */
  Config: Symbol.for('vgpud.Config'),
  EventBus: Symbol.for('vgpud.EventBus'),
  ExceptionRelay: Symbol.for('vgpud.ExceptionRelay'),
  /** Multi-binding: every HAL a plugin provides. */
  Hal: Symbol.for('vgpud.Hal'),
  /** Multi-binding: every PCI bus (simulator, mock, sysfs) a plugin provides. */
  PciBus: Symbol.for('vgpud.PciBus'),
  /** Chooses the HAL for a device from the bound HALs. */
  HalRegistry: Symbol.for('vgpud.HalRegistry'),
  PluginHost: Symbol.for('vgpud.PluginHost'),
  /**
   * The one VgpuService everything above the backends uses (the router of the 'vgpu-router' plugin, or a test's
   * fake).
   */
  VgpuManager: Symbol.for('vgpud.VgpuManager'),
  /**
   * Multi-binding: every VgpuBackend (core/contracts/vgpu-backend.ts): the userspace manager (lifecycle plugin) and
   * the Linux sysfs backend; the router presents them as TOKENS.VgpuManager.
   */
  VgpuBackend: Symbol.for('vgpud.VgpuBackend'),
  /** Host VF journal (`HostVfJournal`, core/contracts/host-vf-journal.ts) of the sysfs backend, bound by 'state'. */
  HostVfJournal: Symbol.for('vgpud.HostVfJournal'),
  /** Native hot paths (addon or pure-TS fallback). */
  NativeOps: Symbol.for('vgpud.NativeOps'),
  /** Monotonic clock in ms; tests bind a fake. */
  Clock: Symbol.for('vgpud.Clock'),
  /** Physical GPUs opened by the probe, by BDF. */
  GpuRegistry: Symbol.for('vgpud.GpuRegistry'),
  /** FB scrubber (scrub plugin). */
  FbScrubber: Symbol.for('vgpud.FbScrubber'),
  /** The control API's HTTP server (`HttpServer` in plugins/api), bound by the 'api' plugin (capability 'http'). */
  HttpServer: Symbol.for('vgpud.HttpServer'),
  /**
   * Multi-binding: route contributions `(app) => void` other plugins bind in their ContainerModule (e.g. /metrics).
   * Bound at load time because fastify refuses new routes once it listens; the api plugin mounts them before listen.
   */
  HttpRoutes: Symbol.for('vgpud.HttpRoutes'),
  /** Write-ahead vGPU journal (`VgpuJournal`, core/contracts/vgpu-journal.ts), bound by the 'state' plugin; may be unbound. */
  VgpuJournal: Symbol.for('vgpud.VgpuJournal'),
  /**
   * Durable record of multi-step control requests (`RequestJournal`, core/contracts/request-journal.ts), bound by
   * the 'state' plugin; may be unbound (requests are then tracked in memory).
   */
  RequestJournal: Symbol.for('vgpud.RequestJournal'),
  /** All-or-none multi-step requests (`RequestService`, core/contracts/requests.ts), bound by the core. */
  Requests: Symbol.for('vgpud.Requests'),
  /** Per-vGPU firmware log lines kept by the 'logging' plugin (`VgpuLogStore` in plugins/logging); may be unbound. */
  VgpuLogStore: Symbol.for('vgpud.VgpuLogStore'),
  /** Live migration of vGPUs (`MigrationService` in plugins/migration), bound by the 'migration' plugin; may be unbound. */
  Migration: Symbol.for('vgpud.Migration'),
  /**
   * Per-vGPU device access (`VgpuDeviceAccess`, core/contracts/vgpu-device-access.ts) for VFIO-variant-driver code
   * (migration, later vfio-user), bound by the 'lifecycle' plugin (capability 'vgpu-device-access').
   */
  VgpuDeviceAccess: Symbol.for('vgpud.VgpuDeviceAccess'),
  /** Releases a vGPU from its VMM before a forced destroy (`VgpuReleaser`), bound by the vfio-user plugin; may be unbound. */
  VgpuReleaser: Symbol.for('vgpud.VgpuReleaser'),
  /** A vGPU's migration state machine as a VMM drives it (`MigrationPort`), bound by the migration plugin; may be unbound. */
  MigrationPort: Symbol.for('vgpud.MigrationPort'),
  /** Sockets, attached VMMs and traffic of served vGPUs (`VgpuAttachments`), bound by the vfio-user plugin; may be unbound. */
  VgpuAttachments: Symbol.for('vgpud.VgpuAttachments'),
  /**
   * Who holds each vGPU outside the daemon (`VgpuHolders`, core/contracts/vgpu-holders.ts): on a Kubernetes node the
   * pod, from the kubelet's PodResources API. Bound by the 'k8s' plugin (capability 'vgpu-holders'); may be unbound.
   */
  VgpuHolders: Symbol.for('vgpud.VgpuHolders'),
} as const;

export type TokenName = keyof typeof TOKENS;
