// What the guest-side tests share: the layout of the guest's RPC pages in its "memory" (docs/vfio-user.md "Guest
// RPC": control page, response page, message buffer), the VF opened the way the front opens it, and a wait on a
// condition the device makes true.
import type { GuestDmaHandler, GuestPort, GuestPortModule, GuestVf } from '../../../core/contracts/guest-port.js';
import type { SimRig } from '../lifecycle/sim-rig.js';

export const IOVA = 0x100000n;
export const CTRL = 0x0000;
export const RESP = 0x1000;
export const MSG = 0x2000;
export const MSG_SIZE = 0x4000;

export interface OpenedVf {
  port: GuestPort;
  vf: GuestVf;
  stop(): void;
}

/**
 * VF 0 of the rig's GPU as the front serves it: its DMA through `ram`, bus mastering on, and one watch that serves
 * the device's DMA and calls `onInterrupt` for each MSI-X interrupt the guest lets through.
 */
export async function openGuestVf(rig: SimRig, ram: GuestDmaHandler, onInterrupt: () => void): Promise<OpenedVf> {
  const loc = rig.gpu.guestPort!;
  const port = ((await import(loc.module)) as GuestPortModule).openGuestPort(loc.options);
  const vf = port.vf(0);
  vf.serveDma(ram);
  vf.setBusMaster(true);
  const stopWatch = port.watch((i) => {
    void port.pumpDma(i);
    if (port.vf(i).takeInterrupts().length > 0) onInterrupt();
  });
  return { port, vf, stop: () => { stopWatch(); port.close(); } };
}

/** Write the guest's control page (request `requestId`) into `mem` and its address into MAILBOX_SCRATCH(2/3). */
export function writeRpcSetup(vf: GuestVf, mem: Buffer, requestId: number): void {
  mem.writeUInt32LE(1, CTRL);
  mem.writeUInt32LE(requestId, CTRL + 4);
  mem.writeBigUInt64LE(IOVA + BigInt(RESP), CTRL + 8);
  mem.writeBigUInt64LE(IOVA + BigInt(MSG), CTRL + 16);
  mem.writeUInt32LE(MSG_SIZE, CTRL + 24);
  vf.write32(0, 0x2100 + 4 * 3, Number((IOVA + BigInt(CTRL)) >> 32n));
  vf.write32(0, 0x2100 + 4 * 2, Number((IOVA + BigInt(CTRL)) & 0xffffffffn));
}

/** Wait for a condition the device makes true asynchronously, checking on every turn of the event loop. */
export async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}
