/**
 * Test controls across processes: the messages a parent sends to a vgpu-sim child over its IPC channel, the
 * child's dispatcher, and the parent's proxy that implements SimTestControls by sending them. The same control
 * surface therefore works for worker-mode devices (direct calls) and process-mode devices (IPC).
 */
import type { ChildProcess } from 'node:child_process';
import { ErrorCode, VgpuError, type ErrorCode as ErrorCodeT } from '../../../core/contracts/exceptions.js';
import type { SimTestControls } from './sim-device.js';

type ControlName = 'inject' | 'crash' | 'raiseEvent' | 'uploadedTypes' | 'pluginTask' | 'rmClients' | 'gspStats' | 'gspRunning' | 'hostEvent'
  | 'guestWorkload' | 'unplug' | 'replug' | 'irqListeners' | 'hangGsp';
const CONTROLS: readonly ControlName[] = [
  'inject', 'crash', 'raiseEvent', 'uploadedTypes', 'pluginTask', 'rmClients', 'gspStats', 'gspRunning', 'hostEvent', 'guestWorkload', 'unplug',
  'replug', 'irqListeners', 'hangGsp',
];

export interface SimIpcRequest {
  id: number;
  op: ControlName;
  args: unknown[];
}

export interface SimIpcReply {
  id: number;
  op: 'reply';
  value?: unknown;
  error?: { message: string; code?: string; hint?: string };
}

/** bigint does not survive the IPC channel's JSON; tag it. `undefined` (a control with no result) stays undefined:
 *  JSON has no text for it. */
function encode(v: unknown): unknown {
  if (v === undefined) return undefined;
  return JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? { $bigint: x.toString() } : x)));
}
function decode(v: unknown): unknown {
  if (v === undefined) return undefined;
  return JSON.parse(JSON.stringify(v), (_k, x: unknown) =>
    x !== null && typeof x === 'object' && typeof (x as { $bigint?: unknown }).$bigint === 'string' ? BigInt((x as { $bigint: string }).$bigint) : x);
}

export async function handleIpcRequest(device: SimTestControls, m: SimIpcRequest): Promise<SimIpcReply> {
  try {
    if (!CONTROLS.includes(m.op)) throw new Error(`unknown control "${String(m.op)}"`);
    const fn = device[m.op] as (...a: unknown[]) => Promise<unknown>;
    const value = await fn.apply(device, decode(m.args) as unknown[]);
    return { id: m.id, op: 'reply', value: encode(value) };
  } catch (e) {
    const err = e as Error & { code?: string; hint?: string };
    return { id: m.id, op: 'reply', error: { message: err.message, ...(err.code ? { code: err.code } : {}), ...(err.hint ? { hint: err.hint } : {}) } };
  }
}

/** SimTestControls of a vgpu-sim child process, over its IPC channel. */
export function ipcControls(child: ChildProcess): SimTestControls {
  let next = 1;
  const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  child.on('message', (m: SimIpcReply | { op: string }) => {
    if (m.op !== 'reply') return;
    const r = m as SimIpcReply;
    const w = waiting.get(r.id);
    if (w === undefined) return;
    waiting.delete(r.id);
    if (r.error !== undefined) {
      w.reject(new VgpuError((r.error.code as ErrorCodeT | undefined) ?? ErrorCode.Internal, r.error.message, { hint: r.error.hint ?? 'see the vgpu-sim stderr' }));
    } else {
      w.resolve(decode(r.value));
    }
  });
  child.on('exit', () => {
    for (const w of waiting.values()) w.reject(new VgpuError(ErrorCode.GpuLost, 'vgpu-sim process exited', { hint: 'start the simulator again' }));
    waiting.clear();
  });
  const call = (op: ControlName, ...args: unknown[]): Promise<unknown> => {
    if (!child.connected) {
      return Promise.reject(new VgpuError(ErrorCode.IllegalState, 'no IPC channel to the vgpu-sim process', {
        hint: 'test controls need a simulator started by startSimDevice({mode: "process"})',
      }));
    }
    const id = next++;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      child.send({ id, op, args: encode(args) as unknown[] } satisfies SimIpcRequest);
    });
  };
  return {
    inject: async (fault) => { await call('inject', fault); },
    crash: async (reason) => { await call('crash', ...(reason !== undefined ? [reason] : [])); },
    raiseEvent: async (event) => { await call('raiseEvent', event); },
    uploadedTypes: async () => (await call('uploadedTypes')) as Awaited<ReturnType<SimTestControls['uploadedTypes']>>,
    pluginTask: async (gfid) => (await call('pluginTask', gfid)) as 'running' | 'shutdown' | null,
    rmClients: async () => (await call('rmClients')) as number,
    gspStats: async () => (await call('gspStats')) as Awaited<ReturnType<SimTestControls['gspStats']>>,
    gspRunning: async () => (await call('gspRunning')) as boolean,
    hostEvent: async (e) => { await call('hostEvent', e); },
    guestWorkload: async (gfid, cmd) => (await call('guestWorkload', gfid, cmd)) as Awaited<ReturnType<SimTestControls['guestWorkload']>>,
    unplug: async () => { await call('unplug'); },
    replug: async () => { await call('replug'); },
    irqListeners: async () => (await call('irqListeners')) as number,
    hangGsp: async () => { await call('hangGsp'); },
  };
}
