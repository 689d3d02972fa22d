/**
 * DEVICE_GET_INFO (argsz ≥ 16; reply argsz 16, flags RESET|PCI, region and irq counts) and DEVICE_RESET (no
 * payload either way; the device's own reset, which may take long — the queue waits, as the spec allows).
 */
import { Errno } from '../../protocol/constants.js';
import type { InboundMessage } from '../../protocol/message-reader.js';
import { refuse } from '../../protocol/protocol-error.js';
import type { Reply, SessionContext } from '../vfio-user-session.js';

export function handleDeviceInfo(ctx: SessionContext, m: InboundMessage): Reply {
  if (m.payload.length < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_INFO payload of ${m.payload.length} bytes (16 needed)`);
  const argsz = m.payload.readUInt32LE(0);
  if (argsz < 16) throw refuse(Errno.EINVAL, `DEVICE_GET_INFO argsz ${argsz} < 16`);
  const out = Buffer.alloc(16);
  out.writeUInt32LE(16, 0);
  out.writeUInt32LE(ctx.device.deviceFlags, 4);
  out.writeUInt32LE(ctx.device.numRegions, 8);
  out.writeUInt32LE(ctx.device.numIrqs, 12);
  return { payload: out };
}

export async function handleReset(ctx: SessionContext, m: InboundMessage): Promise<Reply> {
  if (m.payload.length !== 0) throw refuse(Errno.EINVAL, `DEVICE_RESET takes no payload (got ${m.payload.length} bytes)`);
  await ctx.device.reset();
  return {};
}
