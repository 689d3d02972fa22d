/**
 * The VF's interrupt lines toward the VMM: eventfds set with DEVICE_SET_IRQS, written when the device interrupts.
 *
 * What each index offers is vfio-pci's answer for an SR-IOV VF (drivers/vfio/pci/vfio_pci_core.c): INTx count 0 (a
 * VF has no INTx pin), MSI count 0 (no MSI capability), MSI-X = the capability's table size, ERR 1 (PCIe), REQ 1.
 * Actions as vfio-pci's handlers: TRIGGER with DATA_EVENTFD assigns (none = de-assign), DATA_NONE with count 0
 * disables the index, DATA_NONE/DATA_BOOL with a range fires those vectors; MASK and UNMASK have no handler for
 * these indices (ENOTTY). Descriptors are checked to be eventfds (EINVAL otherwise) and owned here once accepted.
 */
import type { FdOps } from '../../../native/fd-ops.js';
import { Errno, IrqIndex, IrqInfoFlags, IrqSetFlags, IRQ_SET_DATA_MASK } from '../protocol/constants.js';
import { refuse } from '../protocol/protocol-error.js';
import type { IrqInfo, IrqSetRequest } from '../server/vfio-user-device.js';

export class IrqLines {
  private readonly lines: Array<Array<number | null>>;
  /** Interrupts delivered (eventfd writes), for the metrics. */
  delivered = 0;

  constructor(private readonly ops: FdOps, msixVectors: number) {
    this.lines = [[], [], new Array<number | null>(msixVectors).fill(null), [null], [null]];
  }

  info(index: number): IrqInfo {
    switch (index) {
      case IrqIndex.INTX: return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.MASKABLE | IrqInfoFlags.AUTOMASKED, count: 0 };
      case IrqIndex.MSI: return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.NORESIZE, count: 0 };
      case IrqIndex.MSIX: return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.NORESIZE, count: this.lines[2]!.length };
      case IrqIndex.ERR: return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.NORESIZE, count: 1 };
      case IrqIndex.REQ: return { flags: IrqInfoFlags.EVENTFD | IrqInfoFlags.NORESIZE, count: 1 };
      default: throw refuse(Errno.EINVAL, `irq index ${index} is out of range`);
    }
  }

  /** A request the server already validated (flags shape, range, data size). */
  set(req: IrqSetRequest): void {
    if ((req.flags & IrqSetFlags.ACTION_TRIGGER) === 0) {
      throw refuse(Errno.ENOTTY, `irq index ${req.index} supports no MASK/UNMASK (as vfio-pci)`);
    }
    const line = this.lines[req.index]!;
    const data = req.flags & IRQ_SET_DATA_MASK;
    if (data === IrqSetFlags.DATA_EVENTFD) {
      const fds = req.fds ?? [];
      for (const fd of fds) {
        if (!this.isEventfd(fd)) throw refuse(Errno.EINVAL, `descriptor for irq index ${req.index} is not an eventfd`);
      }
      for (let i = 0; i < req.count; i++) {
        this.drop(line, req.start + i);
        line[req.start + i] = fds.length > 0 ? fds[i]! : null;
      }
      return;
    }
    if (data === IrqSetFlags.DATA_NONE && req.count === 0) {
      for (let i = 0; i < line.length; i++) this.drop(line, i);
      return;
    }
    for (let i = 0; i < req.count; i++) {
      if (data === IrqSetFlags.DATA_BOOL && req.bools![i] === 0) continue;
      this.fire(req.index, req.start + i);
    }
  }

  /** Signal vector `vector` of `index` if the VMM gave an eventfd for it. */
  fire(index: number, vector: number): boolean {
    const fd = this.lines[index]?.[vector];
    if (fd === null || fd === undefined) return false;
    try {
      this.ops.eventfdWrite(fd, 1);
      this.delivered++;
      return true;
    } catch {
      return false;
    }
  }

  has(index: number, vector: number): boolean {
    const fd = this.lines[index]?.[vector];
    return fd !== null && fd !== undefined;
  }

  /** The VMM went away: close every descriptor it gave us. */
  closeAll(): void {
    for (const line of this.lines) for (let i = 0; i < line.length; i++) this.drop(line, i);
  }

  private drop(line: Array<number | null>, i: number): void {
    const fd = line[i];
    if (fd !== null && fd !== undefined) {
      try {
        this.ops.closeFd(fd);
      } catch {
        // already closed
      }
    }
    line[i] = null;
  }

  private isEventfd(fd: number): boolean {
    try {
      return this.ops.fdTarget(fd).includes('eventfd');
    } catch {
      return false;
    }
  }
}
