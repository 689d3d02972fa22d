// The guest-visible side of a simulated VF, driven the way the vfio-user front drives it (core/contracts/guest-port.ts),
// on a real simulated GPU with a vGPU created by the lifecycle: NV_PMC_BOOT_0 in BAR0, the interrupt tree, the
// guest RPC through the doorbell and DMA into "guest memory" (a Buffer behind a DMA handler), the copy engine
// writing guest memory from the vGPU's FB and refusing to leave its slice, firmware exceptions as interrupts, and a
// reset that makes the firmware forget the guest.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestDmaHandler, GuestVf } from '../../../core/contracts/guest-port.js';
import { simRig, type SimRig } from '../lifecycle/sim-rig.js';
import { CTRL, IOVA, MSG, RESP, openGuestVf, waitFor, writeRpcSetup } from './guest-rpc-page.js';

const RAM = 256 << 10;

class GuestRam implements GuestDmaHandler {
  readonly mem = Buffer.alloc(RAM);
  writes: Array<[bigint, number]> = [];
  private at(iova: bigint, len: number): number {
    const off = iova - IOVA;
    if (off < 0n || off + BigInt(len) > BigInt(RAM)) throw Object.assign(new Error('EFAULT'), { details: { errno: 14 } });
    return Number(off);
  }
  async read(iova: bigint, length: number): Promise<Uint8Array> {
    const o = this.at(iova, length);
    return Uint8Array.from(this.mem.subarray(o, o + length));
  }
  async write(iova: bigint, data: Uint8Array): Promise<void> {
    this.mem.set(data, this.at(iova, data.length));
    this.writes.push([iova, data.length]);
  }
}

describe('simulated VF guest side', () => {
  let rig: SimRig;
  let vf: GuestVf;
  let stopGuest: () => void;
  const ram = new GuestRam();
  let interrupts = 0;
  let waiters: Array<() => void> = [];
  let requestId = 0;

  /** Resolves at the next MSI-X vector-0 interrupt. */
  const nextInterrupt = (): Promise<void> => new Promise((r) => waiters.push(r));

  async function rpc(fn: number, payload: Buffer): Promise<{ result: number; answer: Buffer }> {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(fn, 0);
    head.writeUInt32LE(payload.length, 4);
    ram.mem.set(Buffer.concat([head, payload]), MSG);
    ram.mem.writeUInt32LE(++requestId, CTRL + 4);
    const irq = nextInterrupt();
    vf.write32(0, 0x2200, 1);
    await irq;
    assert.equal(ram.mem.readUInt32LE(RESP), requestId, 'responseId answers the request');
    const len = ram.mem.readUInt32LE(MSG + 4);
    return { result: ram.mem.readUInt32LE(RESP + 4), answer: Buffer.from(ram.mem.subarray(MSG + 8, MSG + 8 + len)) };
  }

  async function setup(): Promise<number> {
    writeRpcSetup(vf, ram.mem, ++requestId);
    const irq = nextInterrupt();
    vf.write32(0, 0x2200, 0);
    await irq;
    assert.equal(ram.mem.readUInt32LE(RESP), requestId);
    return ram.mem.readUInt32LE(RESP + 4);
  }

  before(async () => {
    rig = await simRig({ bdf: '0000:61:00.0' });
    await rig.lc.create(0, rig.type('4Q'));
    ({ vf, stop: stopGuest } = await openGuestVf(rig, ram, () => {
      interrupts++;
      for (const w of waiters.splice(0)) w();
    }));
  });

  after(async () => {
    stopGuest?.();
    await rig?.stop();
  });

  it('shows NV_PMC_BOOT_0 of the chip at BAR0 offset 0; unbacked registers read 0', () => {
    assert.equal(vf.read32(0, 0), 0x192000a1);
    assert.equal(vf.read32(0, 0x10), 0);
    assert.equal(vf.read32(0, 0x2200), 0, 'the doorbell is write-only');
  });

  it('interrupt enables: leaf and top masks read back; the guest can trigger a bit and clear it', async () => {
    vf.write32(0, 0x1200, 0x3);
    vf.write32(0, 0x1608, 0x1);
    assert.equal(vf.read32(0, 0x1200), 0x3);
    assert.equal(vf.read32(0, 0x1400), 0x3, 'EN_CLEAR reads the same mask');
    const irq = nextInterrupt();
    vf.write32(0, 0x1640, 1); // trigger leaf 0 bit 1
    // A guest trigger is delivered by the front when it next looks; the device's kicks make it look.
    assert.deepEqual(vf.takeInterrupts(), [0]);
    void irq;
    waiters = [];
    assert.equal(vf.read32(0, 0x1000), 0x2);
    assert.equal(vf.read32(0, 0x1600), 1);
    vf.write32(0, 0x1000, 0x2);
    assert.equal(vf.read32(0, 0x1000), 0, 'write-1-to-clear');
  });

  it('answers the guest RPC setup and an ECHO through DMA, with an MSI-X interrupt each', async () => {
    const before = interrupts;
    assert.equal(await setup(), 0);
    const r = await rpc(1, Buffer.from('ping through the doorbell'));
    assert.equal(r.result, 0);
    assert.equal(r.answer.toString(), 'ping through the doorbell');
    assert.equal(interrupts, before + 2);
    const info = await rpc(2, Buffer.alloc(0));
    assert.equal(info.answer.readUInt32LE(0), 1, 'gfid 1');
    assert.equal(info.answer.readUInt32LE(16), 0x192000a1);
    assert.equal(info.answer.readBigUInt64LE(8), rig.lc.records()[0]!.res.guestFb!.size);
  });

  it('copy engine: FB → guest memory lands in RAM (as DMA writes); a copy past the slice is refused', async () => {
    vf.fbWrite(0x5000n, Buffer.from('bytes from the vGPU framebuffer'));
    ram.writes = [];
    const req = Buffer.alloc(24);
    req.writeBigUInt64LE(0x5000n, 0);
    req.writeBigUInt64LE(IOVA + 0x10000n, 8);
    req.writeUInt32LE(31, 16);
    req.writeUInt32LE(0, 20);
    assert.equal((await rpc(3, req)).result, 0);
    assert.equal(ram.mem.subarray(0x10000, 0x10000 + 31).toString(), 'bytes from the vGPU framebuffer');
    assert.ok(ram.writes.some(([iova, n]) => iova === IOVA + 0x10000n && n === 31), 'the copy went through the DMA path');
    const size = rig.lc.records()[0]!.res.guestFb!.size;
    req.writeBigUInt64LE(size - 16n, 0);
    assert.equal((await rpc(3, req)).result, 0x1f, 'NV_ERR_INVALID_ARGUMENT: the copy would leave the slice');
    // guest memory → FB
    ram.mem.write('written by the guest', 0x20000);
    req.writeBigUInt64LE(0x9000n, 0);
    req.writeBigUInt64LE(IOVA + 0x20000n, 8);
    req.writeUInt32LE(20, 16);
    req.writeUInt32LE(1, 20);
    assert.equal((await rpc(3, req)).result, 0);
    assert.equal(Buffer.from(vf.fbRead(0x9000n, 20)).toString(), 'written by the guest');
  });

  it('a firmware exception on the vGPU raises leaf 0 bit 1 and is reported by GET_EXCEPTIONS', async () => {
    const irq = nextInterrupt();
    await rig.dev.controls.raiseEvent({ kind: 'rc', gfid: 1 });
    await irq;
    assert.equal(vf.read32(0, 0x1000) & 0x2, 0x2);
    const r = await rpc(4, Buffer.alloc(0));
    assert.equal(r.answer.readUInt32LE(0), 1);
    assert.equal(r.answer.readUInt32LE(4), 0x1004);
  });

  it('without bus mastering the device cannot answer; with it back, the next request is answered', async () => {
    vf.setBusMaster(false);
    ram.mem.writeUInt32LE(0, RESP);
    const head = Buffer.alloc(8);
    head.writeUInt32LE(1, 0);
    ram.mem.set(head, MSG);
    ram.mem.writeUInt32LE(++requestId, CTRL + 4);
    vf.write32(0, 0x2200, 1);
    // The task tried (its DMA failed at once): the GSP log says so. Wait on the log line, not on time.
    await waitFor(() => Buffer.from(rig.lc.gpu.firmware.readLog('vgpu-task', 1)).toString().includes('failed (errno 5)'));
    assert.equal(ram.mem.readUInt32LE(RESP), 0, 'nothing was written');
    vf.setBusMaster(true);
    assert.equal((await rpc(1, Buffer.from('x'))).result, 0);
  });

  it('reset: registers back to power-on and the firmware forgets the RPC setup', async () => {
    vf.reset();
    assert.equal(vf.read32(0, 0x1200), 0);
    assert.equal(vf.read32(0, 0x1608), 0);
    assert.equal(vf.read32(0, 0x2108), 0, 'scratch cleared');
    vf.write32(0, 0x1200, 0x1);
    vf.write32(0, 0x1608, 0x1);
    assert.equal(await setup(), 0, 'a new setup is answered');
  });
});
