/**
 * The VMM's side of attaching a vfio-user PCI device, in QEMU's order (hw/vfio-user/pci.c vfio_user_pci_realize →
 * hw/vfio/pci.c): negotiate, DEVICE_GET_INFO, every region's info (mapping what may be mapped), every IRQ index's
 * info, guest RAM mapped with DMA_MAP (with its descriptor, as a shared memory backend gives), and the MSI-X
 * eventfds handed over with SET_IRQS when the guest enables MSI-X. Everything the VMM learned stays here for the
 * tests to look at.
 */
import { join } from 'node:path';
import { VfioUserClient, type ClientOptions } from '../vfio-user-client.js';
import { DEVICE_FLAGS_PCI, Errno, Irq, PCI_NUM_IRQS, PCI_NUM_REGIONS, Region } from '../wire/spec-constants.js';
import { isErrno } from '../wire/errors.js';
import { loadFdOps } from '../wire/fd-ops.js';
import type { DeviceInfoReply, IrqInfoReply, RegionInfoReply } from '../protocol/device-info.js';
import { BarMapping } from './bar-mapping.js';
import { GuestMemory } from './guest-memory.js';
import { IrqEventfds } from './msix-eventfds.js';

export interface VmmAttachOptions extends ClientOptions {
  /** Directory for the guest RAM file (the test's private directory). */
  dir: string;
  /** Guest RAM bytes (default 4 MiB). */
  ramBytes?: number;
  /** IOVA of guest RAM byte 0 (default 4 GiB: above 32 bits, so a truncated address shows). */
  ramIova?: bigint;
  /** false: map guest RAM without a descriptor, so the server must use DMA_READ/DMA_WRITE. */
  ramWithFd?: boolean;
  /** Name of the RAM file inside `dir` (default guest-ram-<pid>-<n>). */
  ramName?: string;
}

let ramSerial = 0;

export class VmmDevice {
  private constructor(
    readonly socket: string,
    readonly client: VfioUserClient,
    readonly info: DeviceInfoReply,
    /** Region infos by index; undefined where the server refused the index (e.g. VGA on a non-VGA device). */
    readonly regions: (RegionInfoReply | undefined)[],
    /** Errno of each refused region index. */
    readonly regionErrors: Map<number, number>,
    readonly irqs: IrqInfoReply[],
    readonly bar1: BarMapping,
    readonly ram: GuestMemory,
    /** Descriptor-less RAM (when ramWithFd is false): the Buffer the server reaches through the socket. */
    readonly socketRam: Buffer | undefined,
  ) {}

  static async attach(socket: string, opts: VmmAttachOptions): Promise<VmmDevice> {
    const client = await VfioUserClient.connect(socket, opts);
    const opened: { close(): void }[] = [];
    try {
      const info = await client.deviceInfo();
      if ((info.flags & DEVICE_FLAGS_PCI) === 0) throw new Error(`DEVICE_GET_INFO flags 0x${info.flags.toString(16)}: not a PCI device`);
      if (info.numRegions < PCI_NUM_REGIONS || info.numIrqs < PCI_NUM_IRQS) {
        throw new Error(`DEVICE_GET_INFO: ${info.numRegions} regions / ${info.numIrqs} IRQ types (a vfio PCI device has at least 9 / 5)`);
      }
      const regions: (RegionInfoReply | undefined)[] = [];
      const regionErrors = new Map<number, number>();
      for (let i = 0; i < info.numRegions; i++) {
        try {
          const r = await client.regionInfo(i);
          // Keep only BAR1's descriptor; QEMU maps every MMAP region, the guest model needs only the FB aperture.
          if (i !== Region.BAR1 && r.fd !== undefined) {
            loadFdOps().closeFd(r.fd);
            r.fd = undefined;
          }
          regions.push(r);
        } catch (e) {
          if (!isErrno(e)) throw e;
          regions.push(undefined);
          regionErrors.set(i, e.errno);
        }
      }
      const irqs: IrqInfoReply[] = [];
      for (let i = 0; i < info.numIrqs; i++) irqs.push(await client.irqInfo(i));
      const bar1Info = regions[Region.BAR1];
      if (bar1Info === undefined) throw new Error(`region BAR1 refused (${regionErrors.get(Region.BAR1) ?? Errno.EINVAL})`);
      const bar1 = BarMapping.open(client, bar1Info);
      opened.push(bar1);
      const ramBytes = opts.ramBytes ?? 4 * 1024 * 1024;
      const ramIova = opts.ramIova ?? 0x1_0000_0000n;
      const ram = GuestMemory.create(join(opts.dir, opts.ramName ?? `guest-ram-${process.pid}-${ramSerial++}`), ramBytes, ramIova);
      opened.push({ close: () => ram.close() });
      let socketRam: Buffer | undefined;
      if (opts.ramWithFd === false) {
        socketRam = ram.view(0, ramBytes);
        await client.dmaMapSocket(ramIova, socketRam);
      } else {
        await client.dmaMap({ iova: ramIova, size: BigInt(ramBytes), fd: ram.fd, fileOffset: 0n });
      }
      return new VmmDevice(socket, client, info, regions, regionErrors, irqs, bar1, ram, socketRam);
    } catch (e) {
      for (const o of opened.reverse()) o.close();
      client.close();
      throw e;
    }
  }

  /** MSI-X vectors the device offers (GET_IRQ_INFO index MSIX). */
  get msixCount(): number {
    return this.irqs[Irq.MSIX]?.count ?? 0;
  }

  /** Hand the server one eventfd per MSI-X vector (QEMU does this when the guest sets MSI-X Enable). */
  async enableMsix(fds: IrqEventfds): Promise<void> {
    await this.client.setIrqs(Irq.MSIX, 0, fds.fds.length, 'trigger', { kind: 'eventfd', fds: fds.fds });
  }

  /** DATA_NONE with count 0: disable the whole MSI-X index (QEMU's vfio_disable_irqindex, e.g. before a reset). */
  async disableMsix(): Promise<void> {
    await this.client.setIrqs(Irq.MSIX, 0, 0, 'trigger', { kind: 'none' });
  }

  /** Close the connection and what the VMM holds (the RAM file is removed). */
  close(): void {
    this.bar1.close();
    this.client.close();
    this.ram.close();
  }
}
