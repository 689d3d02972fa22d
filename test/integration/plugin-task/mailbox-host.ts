/**
 * A small host side of the per-vGPU mailbox for the simulator tests: bootload a plugin task over RM, write the
 * control-buffer header, wait for the BOOTLOADED magic and make calls, all with the firmware-abi codecs and the byte
 * offsets of docs/reference/host-rpc-mailbox.md. The FB window stands in for the host's BAR1 mapping of the mgmt
 * heap.
 */
import type { PhysicalGpu } from '../../../core/contracts/hal.js';
import type { RmClient } from '../../../core/contracts/firmware.js';
import { RmControl, encodeBootloadParams } from '../../../core/firmware-abi/rm-controls.js';
import {
  CTRL_BUFFER, GSP_PLUGIN_BOOTLOADED, MgmtHeap, RESPONSE_BUFFER, VF_PRIV_DOORBELL_OFFSET, doorbellValue, initialCtrlHeader,
} from '../../../core/firmware-abi/vgpu-mailbox.js';
import type { SimDeviceHandle } from '../../../hal/ada-lovelace/sim/start-sim-device.js';
import { until as untilShared } from '../../helpers/until.js';

const MiB = 1n << 20n;

/** Poll `f` until it returns a value other than undefined (test/helpers/until.ts). */
export async function until<T>(what: string, f: () => T | undefined): Promise<T> {
  return untilShared(what, f, 1);
}

export interface VgpuSlot {
  gfid: number;
  dbdf: number;
  vmPid: number;
  numChannels: number;
  guestFb: bigint;
  heap: bigint;
}

/** gfid n: guest FB at (n−1)·512 MiB (256 MiB), mgmt heap 4 MiB right after it. */
export function slot(gfid: number): VgpuSlot {
  const guestFb = BigInt(gfid - 1) * 512n * MiB;
  return { gfid, dbdf: 0x4100 + gfid, vmPid: 4000 + gfid, numChannels: 64, guestFb, heap: guestFb + 256n * MiB };
}

export class MailboxHost {
  private seq = 0;
  readonly comm: Buffer;

  constructor(readonly gpu: PhysicalGpu, readonly dev: SimDeviceHandle, readonly client: RmClient, readonly s: VgpuSlot) {
    this.comm = dev.fbWindow(s.heap, MgmtHeap.COMM_BUFF_SIZE);
  }

  get sequence(): number {
    return this.seq;
  }

  async bootload(): Promise<void> {
    const h = this.s.heap;
    await this.gpu.firmware.control(this.client, RmControl.VGPU_MGR_INTERNAL_BOOTLOAD_GSP_VGPU_PLUGIN_TASK, encodeBootloadParams({
      dbdf: this.s.dbdf, gfid: this.s.gfid, vmPid: this.s.vmPid, numChannels: this.s.numChannels, numPluginChannels: 1,
      numGuestFbSegments: 1, guestFbPhysAddrList: [this.s.guestFb], guestFbLengthList: [256n * MiB],
      pluginHeapMemoryPhysAddr: h, pluginHeapMemoryLength: 4n * MiB,
      initTaskLogBuffOffset: h + BigInt(MgmtHeap.INIT_TASK_LOG_OFFSET), initTaskLogBuffSize: BigInt(MgmtHeap.INIT_TASK_LOG_SIZE),
      vgpuTaskLogBuffOffset: h + BigInt(MgmtHeap.VGPU_TASK_LOG_OFFSET), vgpuTaskLogBuffSize: BigInt(MgmtHeap.VGPU_TASK_LOG_SIZE),
      kernelLogBuffOffset: h + BigInt(MgmtHeap.KERNEL_LOG_OFFSET), kernelLogBuffSize: BigInt(MgmtHeap.KERNEL_LOG_SIZE),
    }));
  }

  writeHeader(): void {
    const h = initialCtrlHeader();
    this.comm.writeUInt32LE(h.version!, CTRL_BUFFER.offsetOf('version'));
    this.comm.writeBigUInt64LE(h.response_buff_offset!, CTRL_BUFFER.offsetOf('response_buff_offset'));
    this.comm.writeBigUInt64LE(h.message_buff_offset!, CTRL_BUFFER.offsetOf('message_buff_offset'));
    this.comm.writeBigUInt64LE(h.migration_buff_offset!, CTRL_BUFFER.offsetOf('migration_buff_offset'));
    this.comm.writeBigUInt64LE(h.error_buff_offset!, CTRL_BUFFER.offsetOf('error_buff_offset'));
  }

  ctrlSeq(): number {
    return this.comm.readUInt32LE(CTRL_BUFFER.offsetOf('message_seq_num'));
  }

  response<K extends Parameters<typeof RESPONSE_BUFFER.offsetOf>[0]>(field: K): number {
    return this.comm.readUInt32LE(MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf(field));
  }

  async waitBootloaded(): Promise<void> {
    await until('the BOOTLOADED magic', () => (this.ctrlSeq() === GSP_PLUGIN_BOOTLOADED ? true : undefined));
  }

  /** Bootload + header + magic, as create step C6–C7 does before its first call. */
  async bringUp(): Promise<void> {
    await this.bootload();
    this.writeHeader();
    await this.waitBootloaded();
  }

  /** Post a call (payload, type, seq, doorbell) without waiting. Returns its sequence number. */
  post(type: number, payload: Uint8Array = new Uint8Array(0)): number {
    this.comm.set(payload, MgmtHeap.MESSAGE_OFFSET);
    this.comm.writeUInt32LE(type, CTRL_BUFFER.offsetOf('message_type'));
    this.seq += 1;
    this.comm.writeUInt32LE(this.seq, CTRL_BUFFER.offsetOf('message_seq_num'));
    this.gpu.registers.write32(VF_PRIV_DOORBELL_OFFSET, doorbellValue(this.s.gfid));
    this.gpu.registers.read32(VF_PRIV_DOORBELL_OFFSET);
    return this.seq;
  }

  /** One call; resolves with the result code and the message buffer's first `replySize` bytes. */
  async call(type: number, payload: Uint8Array = new Uint8Array(0), replySize = payload.byteLength): Promise<{ result: number; reply: Buffer }> {
    const seq = this.post(type, payload);
    await until(`processed seq ${seq}`, () => (this.response('message_seq_num_processed') === seq ? true : undefined));
    return { result: this.response('result_code'), reply: Buffer.from(this.comm.subarray(MgmtHeap.MESSAGE_OFFSET, MgmtHeap.MESSAGE_OFFSET + replySize)) };
  }

  log(area: 'init-task' | 'vgpu-task' | 'kernel'): string {
    return Buffer.from(this.gpu.firmware.readLog(area, this.s.gfid)).toString('utf8');
  }
}
