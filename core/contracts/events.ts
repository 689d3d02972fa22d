/**
 * Events contract: one typed bus for host events, vGPU lifecycle events and firmware events.
 *
 * Listeners are isolated: a listener that throws is logged and the remaining listeners still run (eventemitter3
 * would otherwise stop the emit at the first throw and propagate into the emitter, i.e. into the hardware path).
 */
import type { GpuException } from './exceptions.js';
import type { ScrubRecord } from './vgpu-service.js';

/** vGPU states (issue: creating → ready → stopping → destroyed, plus failed and lost). */
export type VgpuState = 'creating' | 'ready' | 'stopping' | 'destroyed' | 'failed' | 'lost';

/** A firmware → host event after decoding, as the HAL delivers it. */
export interface FirmwareEventRecord {
  gpu: string;
  /** GSP event function number, e.g. 0x1004 RC_TRIGGERED. */
  eventId: number;
  name: string;
  /** GFID the event is tagged with, when it names one. */
  gfid?: number;
  payload: Uint8Array;
  at: number;
}

/** Host-side events of the physical function (docs/reference/core-driver-interface.md), plus suspend/resume. */
export type HostEventKind = 'suspend' | 'resume' | 'unbind' | 'sriov-configure';

export interface BusEvents {
  'host:event': (e: { gpu: string; kind: HostEventKind; numVfs?: number }) => void;
  'gpu:probed': (e: { gpu: string; name: string }) => void;
  'gpu:ready': (e: { gpu: string }) => void;
  'gpu:lost': (e: { gpu: string; reason: string }) => void;
  /**
   * The GPU reset that follows a loss: 'begin', 'waiting' (for a device that is gone to come back), then 'done'
   * (ready again; `lostVgpus` did not survive) or 'failed' (it stays lost).
   */
  'gpu:reset': (e: { gpu: string; phase: 'begin' | 'waiting' | 'done' | 'failed'; reason?: string; lostVgpus?: string[] }) => void;
  'vgpu:state': (e: { gpu: string; vgpuId: string; vf: number; from: VgpuState | null; to: VgpuState; reason?: string }) => void;
  /** A VF's selected type changed through the VF ABI (current_vgpu_type); 0 = deselected. */
  'vf:type': (e: { gpu: string; vf: number; vfBdf: string; typeId: number }) => void;
  'vgpu:step': (e: { gpu: string; vgpuId: string; step: string; phase: 'begin' | 'done' | 'undo' | 'failed' }) => void;
  'firmware:event': (e: FirmwareEventRecord) => void;
  /** FIFO non-stall interrupt of a channel (docs/reference/core-driver-interface.md id 5): wakes copy-engine waiters. */
  'channel:nonstall': (e: { gpu: string; chid: number }) => void;
  'exception': (e: GpuException) => void;
  'scrub:progress': (e: { gpu: string; vgpuId: string; done: number; total: number }) => void;
  /** A finished scrub (also one whose verify pass failed: then `record.verified` is false and the scrub threw). */
  'scrub:done': (e: { gpu: string; vgpuId: string; record: ScrubRecord }) => void;
  'log:line': (e: { gpu: string; vgpuId?: string; area: string; line: string }) => void;
  /** One finished GSP RPC (for the latency histogram); `error` is the VgpuError code when it failed. */
  'rpc:latency': (e: { gpu: string; fn: string; ms: number; error?: string }) => void;
  /**
   * A re-layout is about to change the node's vGPUs (the Kubernetes node agent applying the config its Node label
   * names). Whoever hands vGPUs out (the kubelet device plugin) stops doing so until the matching 'layout:end' —
   * what NVIDIA's vgpu-device-manager does by pausing the device plugin's operand label.
   */
  'layout:begin': (e: { source: string; config: string }) => void;
  /** The re-layout of the matching 'layout:begin' ended (also when it failed: `ok` false and the reason). */
  'layout:end': (e: { source: string; config: string; ok: boolean; error?: string }) => void;
  /** The kubelet device plugin handed vGPUs to a container (Allocate): who holds them is about to change. */
  'device:allocated': (e: { resource: string; vgpus: string[] }) => void;
}

export type BusEventName = keyof BusEvents;
export type BusListener<K extends BusEventName> = BusEvents[K];

export interface EventBus {
  /** Subscribe; returns a function that unsubscribes exactly this listener. */
  on<K extends BusEventName>(event: K, listener: BusListener<K>): () => void;
  once<K extends BusEventName>(event: K, listener: BusListener<K>): () => void;
  /** Deliver to every listener; returns how many listeners threw (each is logged, none stops the others). */
  emit<K extends BusEventName>(event: K, ...args: Parameters<BusListener<K>>): number;
  listenerCount(event: BusEventName): number;
}
