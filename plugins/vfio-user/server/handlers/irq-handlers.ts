/**
 * DEVICE_GET_IRQ_INFO and DEVICE_SET_IRQS. Validation of a SET_IRQS request follows Linux
 * vfio_set_irqs_validate_and_prepare (drivers/vfio/vfio_main.c), which vfio-pci applies before its handlers:
 * argsz ≥ 20; only known flag bits, exactly one DATA_* and exactly one ACTION_*; start and start + count within the
 * index's count (so an index with count 0, like a VF's INTx, refuses every request); DATA_BOOL carries `count`
 * bytes. vfio-user differs in one place: DATA_EVENTFD descriptors travel as SCM_RIGHTS, not in the payload — one per
 * sub-index, or none to de-assign (vfio-user.rst) — and each must be an eventfd. Every refusal is EINVAL; what the
 * device cannot do with a valid request (MASK/UNMASK of MSI-X, as vfio-pci) it refuses itself (ENOTTY).
 */
import { Errno, IRQ_SET_ACTION_MASK, IRQ_SET_DATA_MASK, IRQ_SET_SIZE, IrqSetFlags } from '../../protocol/constants.js';
import type { InboundMessage } from '../../protocol/message-reader.js';
import { refuse } from '../../protocol/protocol-error.js';
import type { IrqSetRequest } from '../vfio-user-device.js';
import type { Reply, SessionContext } from '../vfio-user-session.js';

function oneBit(v: number): boolean {
  return v !== 0 && (v & (v - 1)) === 0;
}

export function handleIrqInfo(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_IRQ_INFO payload of ${p.length} bytes (16 needed)`);
  const argsz = p.readUInt32LE(0);
  const index = p.readUInt32LE(8);
  if (argsz < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_IRQ_INFO argsz ${argsz} < 16`);
  if (index >= ctx.device.numIrqs) throw refuse(Errno.EINVAL, `irq index ${index} is out of range (the device has ${ctx.device.numIrqs})`);
  const info = ctx.device.irqInfo(index);
  const out = Buffer.alloc(16);
  out.writeUInt32LE(16, 0);
  out.writeUInt32LE(info.flags, 4);
  out.writeUInt32LE(index, 8);
  out.writeUInt32LE(info.count, 12);
  return { payload: out };
}

export function handleSetIrqs(ctx: SessionContext, m: InboundMessage): Reply {
  const p = m.payload;
  if (p.length < IRQ_SET_SIZE) throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS payload of ${p.length} bytes (${IRQ_SET_SIZE} needed)`);
  const argsz = p.readUInt32LE(0);
  const flags = p.readUInt32LE(4);
  const index = p.readUInt32LE(8);
  const start = p.readUInt32LE(12);
  const count = p.readUInt32LE(16);
  if (argsz < IRQ_SET_SIZE) throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS argsz ${argsz} < ${IRQ_SET_SIZE}`);
  if ((flags & ~(IRQ_SET_DATA_MASK | IRQ_SET_ACTION_MASK)) !== 0) throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS flags 0x${flags.toString(16)} has unknown bits`);
  const data = flags & IRQ_SET_DATA_MASK;
  const action = flags & IRQ_SET_ACTION_MASK;
  if (!oneBit(data) || !oneBit(action)) throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS flags 0x${flags.toString(16)} must name one DATA_* and one ACTION_*`);
  if (index >= ctx.device.numIrqs) throw refuse(Errno.EINVAL, `irq index ${index} is out of range`);
  const max = ctx.device.irqInfo(index).count;
  if (count >= 0xffffffff - start || start >= max || start + count > max) {
    throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS [${start}, +${count}) is outside irq index ${index}'s ${max} vectors`);
  }
  const req: IrqSetRequest = { flags, index, start, count };
  if (data === IrqSetFlags.DATA_BOOL) {
    if (argsz - IRQ_SET_SIZE < count || p.length - IRQ_SET_SIZE < count) {
      throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS DATA_BOOL needs ${count} bytes of data`);
    }
    req.bools = Uint8Array.from(p.subarray(IRQ_SET_SIZE, IRQ_SET_SIZE + count));
  }
  if (data === IrqSetFlags.DATA_EVENTFD) {
    if (m.fds.length !== 0 && m.fds.length !== count) {
      throw refuse(Errno.EINVAL, `DEVICE_SET_IRQS DATA_EVENTFD for ${count} vectors came with ${m.fds.length} descriptors`, 'send one eventfd per vector, or none to de-assign');
    }
    req.fds = [...m.fds];
  } else if (m.fds.length > 0) {
    throw refuse(Errno.EINVAL, 'DEVICE_SET_IRQS came with descriptors but not DATA_EVENTFD');
  }
  ctx.device.setIrqs(req);
  // The device owns the descriptors now (it checked they are eventfds, or refused and left them to us).
  if (req.fds !== undefined && req.fds.length > 0) m.fds.splice(0);
  return {};
}
