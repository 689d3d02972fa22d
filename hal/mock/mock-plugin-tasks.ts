/**
 * A scripted per-vGPU "GSP plugin task" for the mock HAL (the mock firmware runs none): after the BOOTLOAD control it
 * writes the BOOTLOADED magic into that vGPU's control buffer, and on each doorbell it reads the request from the
 * mgmt heap (through the mock FB store, as GSP would through FB) and writes the response. Tests script it: skip the
 * magic, never answer a message type, or answer with a non-zero result code. Everything it saw is recorded.
 *
 *   const tasks = MockPluginTasks.install(gpu, { hang: (type) => type === VgpuRpcMsg.SETUP_CONFIG_PARAMS_AND_INIT });
 */
import {
  RmControl, decodeBootloadParams, decodePluginCleanupParams, decodeShutdownParams, type BootloadParams,
} from '../../core/firmware-abi/rm-controls.js';
import {
  CTRL_BUFFER, GSP_PLUGIN_BOOTLOADED, MAX_MESSAGE_SIZE, MgmtHeap, RESPONSE_BUFFER, VF_PRIV_DOORBELL_OFFSET, gfidFromDoorbell,
} from '../../core/firmware-abi/vgpu-mailbox.js';
import type { MockGpu } from './mock-gpu.js';

export interface MockPluginTaskOptions {
  /** Never write the BOOTLOADED magic for these gfids (the host's bootload wait times out). */
  noBootloaded?: (gfid: number) => boolean;
  /** Never answer these messages (the host's mailbox call times out). */
  hang?: (type: number, gfid: number) => boolean;
  /** Result code of a message (default 0 = success). */
  resultCode?: (type: number, gfid: number) => number;
  /** Rewrite the message buffer before answering (in/out payloads). */
  reply?: (type: number, payload: Uint8Array, gfid: number) => Uint8Array | void;
}

export interface MockPluginMessage {
  gfid: number;
  type: number;
  seq: number;
  /** The first 512 bytes of the message buffer at the time of the doorbell. */
  payload: Uint8Array;
}

interface Task {
  gfid: number;
  heap: bigint;
  state: 'running' | 'shutdown';
}

const SEQ = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_seq_num');
const TYPE = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_type');
const RECEIVED = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('message_seq_num_received');
const PROCESSED = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('message_seq_num_processed');
const RESULT = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('result_code');

export class MockPluginTasks {
  readonly bootloads: BootloadParams[] = [];
  readonly messages: MockPluginMessage[] = [];
  readonly shutdowns: number[] = [];
  readonly cleanups: number[] = [];
  private readonly tasks = new Map<number, Task>();
  private readonly off: Array<() => void> = [];

  private constructor(private readonly gpu: MockGpu, private readonly opts: MockPluginTaskOptions) {}

  static install(gpu: MockGpu, opts: MockPluginTaskOptions = {}): MockPluginTasks {
    const t = new MockPluginTasks(gpu, opts);
    const fw = gpu.firmware;
    t.off.push(fw.onControl(RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, (params) => t.bootload(decodeBootloadParams(params))));
    t.off.push(fw.onControl(RmControl.VGPU_MGR_INTERNAL_SHUTDOWN_GSP_VGPU_PLUGIN_TASK, (params) => {
      const { gfid } = decodeShutdownParams(params);
      t.shutdowns.push(gfid);
      const task = t.tasks.get(gfid);
      if (task !== undefined) task.state = 'shutdown';
    }));
    t.off.push(fw.onControl(RmControl.VGPU_MGR_INTERNAL_VGPU_PLUGIN_CLEANUP, (params) => {
      const { gfid } = decodePluginCleanupParams(params);
      t.cleanups.push(gfid);
      t.tasks.delete(gfid);
    }));
    // A (re)booted GSP-RM runs no plugin task: after a GPU reset the tasks of the old one are gone.
    t.off.push(fw.onEvent((e) => { if (e.name === 'GSP_INIT_DONE') t.tasks.clear(); }));
    t.off.push(gpu.registers.onWrite(VF_PRIV_DOORBELL_OFFSET, (value) => {
      const gfid = gfidFromDoorbell(value);
      if (gfid !== null) setImmediate(() => t.serve(gfid));
    }));
    return t;
  }

  uninstall(): void {
    for (const f of this.off.splice(0)) f();
  }

  /** gfids with a task the firmware still runs (bootloaded, not cleaned up). */
  running(): number[] {
    return [...this.tasks.values()].filter((t) => t.state === 'running').map((t) => t.gfid).sort((a, b) => a - b);
  }

  /** gfids with any task state left (a running or shut-down task not cleaned up). */
  live(): number[] {
    return [...this.tasks.keys()].sort((a, b) => a - b);
  }

  messagesOf(gfid: number): MockPluginMessage[] {
    return this.messages.filter((m) => m.gfid === gfid);
  }

  private bootload(p: BootloadParams): void {
    this.bootloads.push(p);
    const task: Task = { gfid: p.gfid, heap: p.pluginHeapMemoryPhysAddr, state: 'running' };
    this.tasks.set(p.gfid, task);
    if (this.opts.noBootloaded?.(p.gfid) === true) return;
    // The task starts asynchronously, as inside GSP: the host must wait for the magic, not assume it.
    setImmediate(() => { if (this.tasks.get(p.gfid) === task) this.u32(task.heap, SEQ, GSP_PLUGIN_BOOTLOADED); });
  }

  private serve(gfid: number): void {
    const task = this.tasks.get(gfid);
    if (task === undefined || task.state !== 'running') return;
    const type = this.readU32(task.heap, TYPE);
    const seq = this.readU32(task.heap, SEQ);
    const payload = Uint8Array.from(this.store().read!(task.heap + BigInt(MgmtHeap.MESSAGE_OFFSET), 512));
    this.messages.push({ gfid, type, seq, payload });
    this.u32(task.heap, RECEIVED, seq);
    if (this.opts.hang?.(type, gfid) === true) return;
    const out = this.opts.reply?.(type, payload, gfid);
    if (out instanceof Uint8Array) this.store().window(task.heap + BigInt(MgmtHeap.MESSAGE_OFFSET), Math.min(out.length, MAX_MESSAGE_SIZE)).set(out.subarray(0, MAX_MESSAGE_SIZE));
    this.u32(task.heap, RESULT, this.opts.resultCode?.(type, gfid) ?? 0);
    this.u32(task.heap, PROCESSED, seq);
  }

  private store(): MockGpu['memory']['store'] {
    return this.gpu.memory.store;
  }

  private u32(heap: bigint, off: number, v: number): void {
    this.store().window(heap + BigInt(off), 4).writeUInt32LE(v >>> 0, 0);
  }

  private readU32(heap: bigint, off: number): number {
    return this.store().read!(heap + BigInt(off), 4).readUInt32LE(0);
  }
}
