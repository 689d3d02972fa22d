/**
 * DEVICE_SET_IRQS (QEMU docs/interop/vfio-user.rst; struct vfio_irq_set of Linux include/uapi/linux/vfio.h).
 *
 * Eventfds travel as SCM_RIGHTS, one per sub-index, not in the payload; none with DATA_EVENTFD de-assigns; count
 * and start 0 with DATA_NONE disables the whole index. A set of more eventfds than the server's max_msg_fds is sent
 * as several messages over consecutive sub-ranges, as QEMU's client does (hw/vfio-user/device.c
 * vfio_user_device_io_set_irqs).
 */
import { IrqSet } from '../wire/spec-structs.js';
import {
  Cmd, IRQ_SET_ACTION_MASK, IRQ_SET_ACTION_TRIGGER, IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_BOOL, IRQ_SET_DATA_EVENTFD, IRQ_SET_DATA_NONE,
} from '../wire/spec-constants.js';
import type { VfioUserConnection } from '../wire/vfio-user-connection.js';
import { closeFds } from './device-info.js';

export type IrqAction = 'trigger' | 'mask' | 'unmask';
export type IrqData = { kind: 'none' } | { kind: 'bool'; values: boolean[] } | { kind: 'eventfd'; fds: number[] };

const ACTION: Record<IrqAction, number> = { trigger: IRQ_SET_ACTION_TRIGGER, mask: IRQ_SET_ACTION_MASK, unmask: IRQ_SET_ACTION_UNMASK };

/** The SET_IRQS payload for one message (bool data appended; eventfds are not part of the payload). */
export function encodeIrqSet(index: number, start: number, count: number, action: IrqAction, data: IrqData): Buffer {
  const flags = ACTION[action] | (data.kind === 'none' ? IRQ_SET_DATA_NONE : data.kind === 'bool' ? IRQ_SET_DATA_BOOL : IRQ_SET_DATA_EVENTFD);
  const extra = data.kind === 'bool' ? Buffer.from(data.values.map((v) => (v ? 1 : 0))) : Buffer.alloc(0);
  const head = IrqSet.pack({ argsz: IrqSet.size + extra.length, flags, index, start, count });
  return Buffer.concat([head, extra]);
}

export async function setIrqs(
  conn: VfioUserConnection, lim: { maxMsgFds: number }, index: number, start: number, count: number, action: IrqAction, data: IrqData,
): Promise<void> {
  if (data.kind === 'eventfd' && data.fds.length > 0) {
    if (data.fds.length !== count) throw new RangeError(`SET_IRQS: ${data.fds.length} eventfds for ${count} sub-indexes`);
    const per = Math.max(1, lim.maxMsgFds);
    for (let i = 0; i < count; i += per) {
      const fds = data.fds.slice(i, i + per);
      const r = await conn.call(Cmd.DEVICE_SET_IRQS, encodeIrqSet(index, start + i, fds.length, action, { kind: 'eventfd', fds }), fds);
      closeFds(r.fds, 'DEVICE_SET_IRQS');
    }
    return;
  }
  const r = await conn.call(Cmd.DEVICE_SET_IRQS, encodeIrqSet(index, start, count, action, data));
  closeFds(r.fds, 'DEVICE_SET_IRQS');
}
