/**
 * Layouts chosen by Node label, as NVIDIA's vgpu-device-manager does it (NVIDIA/vgpu-device-manager
 * cmd/nvidia-k8s-vgpu-dm/main.go; docs/reference/vgpu-device-manager-layouts.md): the Node's `nvidia.com/vgpu.config`
 * label names a config of the layout file (`defaultConfig` when there is no label); vgpud applies it and reports
 * in `nvidia.com/vgpu.config.state`: pending while it changes vGPUs, then success or failed — the reason in a Warning
 * Event on the Node. A config that is already in place goes to success without pending, like NVIDIA's.
 *
 * Where vgpud differs, on purpose:
 *  - the apply is the control API's (core/requests, core/layout): a diff, journalled all-or-none, rolled back on a
 *    failed step — NVIDIA's deletes every vGPU of a GPU first and stops half-way on an error;
 *  - a vGPU a VM has open or a pod holds (PodResources) is never destroyed unless `force` — NVIDIA's does not look;
 *  - while vGPUs change, the device plugin's resources are out of service ('layout:begin'/'layout:end' on the bus),
 *    in-process, instead of pausing the sandbox device plugin's DaemonSet through its operand label.
 *
 * The Node is watched (no polling): a changed label while an apply runs is applied right after it. The watch is
 * re-opened when the API server ends it, and after a failure with backoff. The layout file's directory is watched
 * too: an edited file (a ConfigMap update swaps its `..data` link) is planned again against the label's config, so a
 * fixed file heals a failed state without relabelling.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { Backoff } from '../../core/backoff.js';
import type { EventBus } from '../../core/contracts/events.js';
import { isVgpuError } from '../../core/contracts/exceptions.js';
import type { Logger } from '../../core/contracts/logger.js';
import type { RequestService } from '../../core/contracts/requests.js';
import type { VgpuHolders } from '../../core/contracts/vgpu-holders.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { parseLayoutText, type LayoutFile } from '../../core/layout/layout-file.js';
import { planLayoutRequest } from '../../core/layout/plan-layout-request.js';
import { LABELS, type ConfigState } from './k8s-config.js';
import type { NodeApi, NodeObject, WatchEvent } from './node-api.js';
import { NodeReporter } from './node-reporter.js';

/** A watch that ends sooner than this after it opened counts as a failure (no tight reconnect loop). */
const SHORT_WATCH_MS = 1000;

export interface LabelAgentOptions {
  /** Made at the first connect, in the background (loading @kubernetes/client-node takes seconds on a busy host). */
  api: () => Promise<NodeApi>;
  nodeName: string;
  layoutFile: string;
  defaultConfig: string;
  force: boolean;
  service: VgpuService;
  requests: RequestService;
  holders: VgpuHolders | undefined;
  bus: EventBus;
  log: Logger;
  backoff: { initialMs: number; maxMs: number };
}

export interface LabelAgentStatus {
  node: string;
  connected: boolean;
  /** The config the Node asks for now (label or default). */
  desired?: string;
  /** The last outcome: which config, and how it ended. */
  last?: { config: string; state: ConfigState; reason?: string; at: number };
}

export class NodeLabelAgent {
  private reporter: NodeReporter | undefined;
  private api: NodeApi | undefined;
  private readonly watchBackoff: Backoff;
  private desired: string | undefined;
  private last: LabelAgentStatus['last'];
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private connected = false;
  private stopWatch: (() => void) | undefined;
  private retry: NodeJS.Timeout | undefined;
  private resourceVersion = '';
  private fileWatch: FSWatcher | undefined;

  constructor(private readonly o: LabelAgentOptions) {
    this.watchBackoff = new Backoff(o.backoff);
  }

  /** Connects in the background: an unreachable API server never holds up the daemon's start. */
  start(): void {
    this.stopped = false;
    this.watchLayoutFile();
    void this.connect();
  }

  private watchLayoutFile(): void {
    const file = basename(this.o.layoutFile);
    try {
      this.fileWatch = watch(dirname(this.o.layoutFile), { persistent: false }, (_t, name) => {
        if (name !== null && String(name) !== file && String(name) !== '..data') return;
        if (this.desired === undefined || this.stopped) return;
        this.o.log.info('the layout file changed; checking the Node\'s config against it', { file: this.o.layoutFile });
        this.kick();
      });
      this.fileWatch.on('error', () => { this.fileWatch?.close(); this.fileWatch = undefined; });
    } catch (error) {
      this.o.log.warn('cannot watch the layout file\'s directory; an edited file takes effect at the next label change', { file: this.o.layoutFile, error });
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.fileWatch?.close();
    this.fileWatch = undefined;
    clearTimeout(this.retry);
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.reporter?.stop();
    await this.running;
  }

  status(): LabelAgentStatus {
    return {
      node: this.o.nodeName, connected: this.connected,
      ...(this.desired !== undefined ? { desired: this.desired } : {}), ...(this.last !== undefined ? { last: this.last } : {}),
    };
  }

  /** Resolves when no apply is running or queued. */
  async idle(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    let node: NodeObject;
    try {
      if (this.api === undefined) {
        this.api = await this.o.api();
        this.reporter = new NodeReporter(this.api, this.o.log, this.o.backoff);
        if (this.stopped) this.reporter.stop();
      }
      node = await this.api.getNode();
    } catch (error) {
      this.connected = false;
      this.reconnectLater('could not read the Node', error);
      return;
    }
    if (this.stopped) return;
    this.onNode(node);
    await this.watch(node.resourceVersion);
  }

  private async watch(resourceVersion: string): Promise<void> {
    this.resourceVersion = resourceVersion;
    const opened = performance.now();
    try {
      this.stopWatch = await this.api!.watchNode(resourceVersion, (e) => this.onWatchEvent(e), (error) => {
        this.stopWatch = undefined;
        if (this.stopped) return;
        if (error !== undefined || performance.now() - opened < SHORT_WATCH_MS) {
          this.connected = false;
          this.reconnectLater('the Node watch ended', error ?? new Error('closed right after it opened'));
        } else {
          // API servers end every watch after a while; carry on from where it stopped.
          void this.watch(this.resourceVersion);
        }
      });
      this.connected = true;
      this.watchBackoff.reset();
    } catch (error) {
      this.connected = false;
      this.reconnectLater('could not watch the Node', error);
    }
  }

  private reconnectLater(what: string, error: unknown): void {
    if (this.stopped) return;
    const delay = this.watchBackoff.next();
    const n = this.watchBackoff.failures;
    if ((n & (n - 1)) === 0) this.o.log.warn(`${what}; trying again`, { node: this.o.nodeName, attempt: n, retryInMs: delay, error });
    this.retry = setTimeout(() => { void this.connect(); }, delay);
    this.retry.unref();
  }

  private onWatchEvent(e: WatchEvent): void {
    if (e.type === 'ERROR') {
      // 410 Gone: the resourceVersion is too old to watch from; read the Node again (what an informer's re-list does).
      this.o.log.debug('the Node watch reported an error; reading the Node again', { code: e.code, message: e.message });
      this.stopWatch?.();
      this.stopWatch = undefined;
      void this.connect();
      return;
    }
    if (e.node.resourceVersion !== '') this.resourceVersion = e.node.resourceVersion;
    if (e.type === 'BOOKMARK') return;
    if (e.type === 'DELETED') {
      this.o.log.warn('the Node was deleted; keeping the vGPUs as they are', { node: this.o.nodeName });
      return;
    }
    this.onNode(e.node);
  }

  private onNode(node: NodeObject): void {
    this.reporter!.node = node;
    const label = node.labels[LABELS.config];
    const desired = label !== undefined && label !== '' ? label : this.o.defaultConfig;
    if (desired === this.desired) return;
    this.o.log.info('the Node asks for a vGPU config', { node: node.name, config: desired, from: label !== undefined && label !== '' ? 'label' : 'default' });
    this.desired = desired;
    this.kick();
  }

  private kick(): void {
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        const config = this.desired;
        if (config !== undefined && config !== '' && !this.stopped) await this.reconcile(config);
      } while (this.again && !this.stopped);
    })().finally(() => { this.running = undefined; });
  }

  private async reconcile(config: string): Promise<void> {
    let layout: LayoutFile;
    let plan;
    try {
      layout = parseLayoutText(await readFile(this.o.layoutFile, 'utf8'));
      plan = planLayoutRequest(this.o.service, layout, config).plan;
    } catch (error) {
      await this.fail(config, error, `check plugins.k8s.layoutFile (${this.o.layoutFile}) and the Node's ${LABELS.config} label`);
      return;
    }
    if (plan.changes === 0) {
      await this.succeed(config, undefined);
      return;
    }
    // Refused before anything is marked pending: vGPUs a VM has open, or a pod holds, stay (unless force).
    const held = [
      ...plan.blocked.map((b) => `${b.id} (open by a VM)`),
      ...await this.heldDestroys(plan.gpus.flatMap((g) => g.destroy.filter((d) => !d.inUse).map((d) => d.id))),
    ];
    if (held.length > 0 && !this.o.force) {
      await this.fail(config, new Error(`the layout would destroy vGPU(s) in use: ${held.join(', ')}`),
        'stop those VMs or delete those pods first, or set plugins.k8s.force: true to destroy the vGPUs anyway');
      return;
    }
    await this.reporter!.setState('pending');
    this.o.bus.emit('layout:begin', { source: 'k8s', config });
    try {
      const out = await this.o.requests.apply({ layout, config, force: this.o.force });
      this.o.bus.emit('layout:end', { source: 'k8s', config, ok: true });
      await this.succeed(config, out.result !== undefined
        ? `created ${out.result.created.length} and destroyed ${out.result.destroyed.length} vGPU(s)${out.request ? ` (request ${out.request.id})` : ''}` : undefined);
    } catch (error) {
      this.o.bus.emit('layout:end', { source: 'k8s', config, ok: false, error: (error as Error).message });
      await this.fail(config, error, undefined);
    }
  }

  /** "vgpu-3 (pod ns/name)" for each vGPU in `ids` a pod holds. */
  private async heldDestroys(ids: string[]): Promise<string[]> {
    if (this.o.holders === undefined || ids.length === 0) return [];
    const holders = await this.o.holders.current();
    return ids.flatMap((id) => {
      const h = holders.get(id);
      return h === undefined ? [] : [`${id} (pod ${h.namespace}/${h.pod})`];
    });
  }

  private async succeed(config: string, what: string | undefined): Promise<void> {
    const was = this.last;
    this.last = { config, state: 'success', at: Date.now() };
    if (what !== undefined) this.o.log.info('applied the vGPU config the Node asks for', { config, what });
    await this.reporter!.setState('success');
    if (what !== undefined || was?.config !== config || was.state !== 'success') {
      void this.reporter!.event({ type: 'Normal', reason: 'VgpuConfigApplied', message: `vGPU config "${config}" is in place${what !== undefined ? `: ${what}` : ''}` });
    }
  }

  private async fail(config: string, error: unknown, hint: string | undefined): Promise<void> {
    const message = error instanceof Error ? error.message : String(error);
    const why = (isVgpuError(error) ? error.hint : undefined) ?? hint;
    const reason = `vGPU config "${config}" not applied: ${message}${why !== undefined ? ` (${why})` : ''}`;
    this.last = { config, state: 'failed', reason, at: Date.now() };
    this.o.log.error('could not apply the vGPU config the Node asks for', { config, error });
    await this.reporter!.setState('failed');
    void this.reporter!.event({ type: 'Warning', reason: 'VgpuConfigFailed', message: reason });
  }
}
