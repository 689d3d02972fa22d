/**
 * The guest driver of the vGPU, on top of the VMM's device: what a guest kernel does with the VF once the VMM has
 * attached it — turn on memory decoding and bus mastering, enable MSI-X, unmask the interrupt tree, set up the RPC
 * channel to its vGPU's firmware task and make calls through the doorbell, taking the answer when the MSI-X
 * interrupt arrives (the flow of NVIDIA's guest RM, src/nvidia/src/kernel/vgpu/rpc.c
 * _vgpuGspSetupCommunicationWithPlugin / _vgpuGspWaitForResponse, with this device's page layout).
 *
 * Waiting is on the vector's eventfd; each wake re-checks the response page, so an interrupt for something else
 * (a firmware exception) or one already pending is never mistaken for the answer.
 */
import { Region } from '../wire/spec-constants.js';
import { Pci } from './pci-config-walk.js';
import { IrqEventfds } from './msix-eventfds.js';
import type { VmmDevice } from './vmm-device.js';
import {
  Bar0, CONTROL_VERSION, ControlPage, Doorbell, LEAF0_FW_EXCEPTION, LEAF0_RPC_ANSWERED, MessageBuffer, ResponsePage, RPC_VECTOR, RpcFunction,
  SCRATCH_GUEST_RPC_HI, SCRATCH_GUEST_RPC_LO,
} from './vgpu-registers.js';

/** Where the guest keeps its RPC pages in guest RAM (offsets from RAM byte 0). */
export const GuestLayout = { CONTROL: 0x0000, RESPONSE: 0x1000, MESSAGE: 0x2000, MESSAGE_BYTES: 0x4000, DATA: 0x10000 } as const;

export interface RpcAnswer {
  result: number;
  payload: Buffer;
  /** MSI-X vector-0 signals taken while waiting for this answer. */
  interrupts: number;
  /** CPU_INTR_LEAF(0) as the guest read it in its interrupt handler. */
  leaf0: number;
}

export interface VgpuInfo {
  gfid: number;
  typeId: number;
  fbBytes: bigint;
  boot0: number;
}

export class VgpuGuest {
  private requestId = 0;
  /** Leaf-0 exception bits seen (and acknowledged) while waiting for answers. */
  exceptionsSeen = 0;

  private constructor(readonly dev: VmmDevice, readonly msix: IrqEventfds) {}

  /** Bring the device up as a guest driver would (see the file comment). Does not set up RPC: call rpcSetup(). */
  static async start(dev: VmmDevice): Promise<VgpuGuest> {
    return VgpuGuest.make(dev, true);
  }

  /**
   * Take over a device whose state came by migration: the destination VMM restores only what it owns — config
   * space and the MSI-X eventfds, as QEMU's vfio_pci_load_config does — and the guest carries on with the RPC
   * channel and interrupt enables the device state brought (its control page came with guest RAM).
   */
  static async adopt(dev: VmmDevice): Promise<VgpuGuest> {
    return VgpuGuest.make(dev, false);
  }

  private static async make(dev: VmmDevice, driverInit: boolean): Promise<VgpuGuest> {
    const msix = new IrqEventfds(dev.msixCount);
    const g = new VgpuGuest(dev, msix);
    try {
      await g.restoreVmmState();
      if (driverInit) await g.unmaskInterrupts();
    } catch (e) {
      msix.close();
      throw e;
    }
    return g;
  }

  get client(): VmmDevice['client'] {
    return this.dev.client;
  }

  /** Memory space + bus master on, MSI-X enabled, interrupt tree unmasked: what the guest driver does at probe. */
  async enableDevice(): Promise<void> {
    await this.restoreVmmState();
    await this.unmaskInterrupts();
  }

  /** Config space (memory space, bus master, MSI-X enable) and the MSI-X eventfds handed to the server. */
  async restoreVmmState(): Promise<void> {
    const c = this.client;
    const cmd = await c.config(Pci.COMMAND, 2);
    await c.setConfig(Pci.COMMAND, 2, cmd | Pci.COMMAND_MEMORY | Pci.COMMAND_MASTER | Pci.COMMAND_INTX_DISABLE);
    const msixAt = await this.msixCapAt();
    if (msixAt !== undefined) {
      const ctl = await c.config(msixAt + Pci.MSIX_FLAGS, 2);
      await c.setConfig(msixAt + Pci.MSIX_FLAGS, 2, (ctl | Pci.MSIX_FLAGS_ENABLE) & ~Pci.MSIX_FLAGS_MASKALL);
    }
    if (this.msix.fds.length > 0) await this.dev.enableMsix(this.msix);
  }

  /** The guest driver unmasks leaf 0 (RPC answered, firmware exception) and its subtree. */
  async unmaskInterrupts(): Promise<void> {
    await this.writeReg(Bar0.cpuIntrLeafEnSet(0), LEAF0_RPC_ANSWERED | LEAF0_FW_EXCEPTION);
    await this.writeReg(Bar0.CPU_INTR_TOP_EN_SET, 1);
  }

  readReg(offset: number): Promise<number> {
    return this.client.read32(Region.BAR0, offset);
  }

  writeReg(offset: number, value: number): Promise<void> {
    return this.client.write32(Region.BAR0, offset, value);
  }

  boot0(): Promise<number> {
    return this.readReg(Bar0.PMC_BOOT_0);
  }

  /** Guest RAM bytes at `offset` (from RAM byte 0). */
  ramView(offset: number, length: number): Buffer {
    return this.dev.ram.view(offset, length);
  }

  /**
   * RPC setup: fill the control page, put its IOVA in MAILBOX_SCRATCH(3/2) (high first), bump requestId and ring
   * doorbell 0. Resolves with the answer (result 0 = accepted).
   */
  async rpcSetup(messageBytes: number = GuestLayout.MESSAGE_BYTES): Promise<RpcAnswer> {
    const ctl = this.ramView(GuestLayout.CONTROL, 0x20);
    const ram = this.dev.ram;
    ctl.writeUInt32LE(CONTROL_VERSION, ControlPage.VERSION);
    ctl.writeBigUInt64LE(ram.iovaOf(GuestLayout.RESPONSE), ControlPage.RESPONSE_IOVA);
    ctl.writeBigUInt64LE(ram.iovaOf(GuestLayout.MESSAGE), ControlPage.MESSAGE_IOVA);
    ctl.writeUInt32LE(messageBytes, ControlPage.MESSAGE_SIZE);
    const iova = ram.iovaOf(GuestLayout.CONTROL);
    await this.writeReg(Bar0.mailboxScratch(SCRATCH_GUEST_RPC_HI), Number(iova >> 32n));
    await this.writeReg(Bar0.mailboxScratch(SCRATCH_GUEST_RPC_LO), Number(iova & 0xffffffffn));
    return this.ring(Doorbell.RPC_SETUP);
  }

  /** One guest RPC: the message in the message buffer, requestId + 1, doorbell 1, wait for the answer. */
  async rpc(fn: number, payload: Buffer = Buffer.alloc(0)): Promise<RpcAnswer> {
    const msg = this.ramView(GuestLayout.MESSAGE, GuestLayout.MESSAGE_BYTES);
    if (MessageBuffer.PAYLOAD + payload.length > msg.length) throw new RangeError(`RPC payload of ${payload.length} bytes does not fit the message buffer`);
    msg.writeUInt32LE(fn, MessageBuffer.FUNCTION);
    msg.writeUInt32LE(payload.length, MessageBuffer.LENGTH);
    payload.copy(msg, MessageBuffer.PAYLOAD);
    return this.ring(Doorbell.RPC_MESSAGE);
  }

  async echo(text: string): Promise<string> {
    const a = await this.rpc(RpcFunction.ECHO, Buffer.from(text));
    if (a.result !== 0) throw new Error(`ECHO answered NV_STATUS 0x${a.result.toString(16)}`);
    return a.payload.toString();
  }

  async getInfo(): Promise<VgpuInfo> {
    const a = await this.rpc(RpcFunction.GET_INFO);
    if (a.result !== 0) throw new Error(`GET_INFO answered NV_STATUS 0x${a.result.toString(16)}`);
    const p = a.payload;
    return { gfid: p.readUInt32LE(0), typeId: p.readUInt32LE(4), fbBytes: p.readBigUInt64LE(8), boot0: p.readUInt32LE(16) };
  }

  /** The vGPU's copy engine: FB ↔ guest RAM at `ramOffset` (0: FB → guest memory, 1: guest memory → FB). */
  ceCopy(fbOffset: bigint, ramOffset: number, length: number, direction: 0 | 1): Promise<RpcAnswer> {
    const p = Buffer.alloc(24);
    p.writeBigUInt64LE(fbOffset, 0);
    p.writeBigUInt64LE(this.dev.ram.iovaOf(ramOffset), 8);
    p.writeUInt32LE(length, 16);
    p.writeUInt32LE(direction, 20);
    return this.rpc(RpcFunction.CE_COPY, p);
  }

  private async ring(doorbell: number): Promise<RpcAnswer> {
    const ctl = this.ramView(GuestLayout.CONTROL, 0x20);
    const rsp = this.ramView(GuestLayout.RESPONSE, 8);
    this.requestId = (ctl.readUInt32LE(ControlPage.REQUEST_ID) + 1) >>> 0;
    ctl.writeUInt32LE(this.requestId, ControlPage.REQUEST_ID);
    await this.writeReg(Bar0.DOORBELL, doorbell);
    let interrupts = 0;
    let leaf0 = 0;
    for (;;) {
      interrupts += await this.msix.wait(RPC_VECTOR);
      // The interrupt handler: read the leaf, acknowledge what it saw (write-1-to-clear).
      const leaf = await this.readReg(Bar0.cpuIntrLeaf(0));
      leaf0 |= leaf;
      if ((leaf & LEAF0_FW_EXCEPTION) !== 0) this.exceptionsSeen++;
      if (leaf !== 0) await this.writeReg(Bar0.cpuIntrLeaf(0), leaf);
      if (rsp.readUInt32LE(ResponsePage.RESPONSE_ID) === this.requestId) break;
    }
    const result = rsp.readUInt32LE(ResponsePage.RESULT);
    const msg = this.ramView(GuestLayout.MESSAGE, GuestLayout.MESSAGE_BYTES);
    const len = Math.min(msg.readUInt32LE(MessageBuffer.LENGTH), GuestLayout.MESSAGE_BYTES - MessageBuffer.PAYLOAD);
    return { result, payload: Buffer.from(msg.subarray(MessageBuffer.PAYLOAD, MessageBuffer.PAYLOAD + len)), interrupts, leaf0 };
  }

  /**
   * Reset the device as QEMU does around DEVICE_RESET (hw/vfio-user/pci.c vfio_user_pci_reset: vfio_pci_pre_reset
   * turns interrupts off, vfio_pci_post_reset sets them up again); the guest driver then starts over.
   */
  async reset(): Promise<void> {
    if (this.msix.fds.length > 0) await this.dev.disableMsix();
    this.msix.take(RPC_VECTOR);
    await this.client.reset();
    this.ramView(GuestLayout.CONTROL, 0x20).fill(0);
    this.ramView(GuestLayout.RESPONSE, 8).fill(0);
  }

  private async msixCapAt(): Promise<number | undefined> {
    const c = this.client;
    if (((await c.config(Pci.STATUS, 2)) & Pci.STATUS_CAP_LIST) === 0) return undefined;
    for (let at = (await c.config(Pci.CAPABILITY_LIST, 1)) & 0xfc, ttl = 48; at >= 0x40 && ttl > 0; ttl--) {
      if ((await c.config(at, 1)) === Pci.CAP_ID_MSIX) return at;
      at = (await c.config(at + 1, 1)) & 0xfc;
    }
    return undefined;
  }

  /** Stop using the device (MSI-X eventfds closed); the VMM's connection stays for the caller to close. */
  close(): void {
    this.msix.close();
  }
}

