// A migration stop racing the guest's RPC (hal/sim/device/vf/guest-rpc-service.ts): MIGRATION_STOP_WORK arrives
// while the vGPU's firmware task is serving a guest call. Once the stop is acknowledged nothing may change what the
// guest sees — no DMA write into its memory, no interrupt. The interleaving is the test's: the "guest memory" behind
// the DMA handler holds the call at a chosen transfer until the task has taken the stop (its log says so), then lets
// it go.
//  - caught before it wrote anything, the call is withdrawn: nothing lands, and it is answered once the work resumes;
//  - caught while writing its answer, the call finishes first; the stop is acknowledged after it, and from then on
//    a new guest doorbell gets nothing until the work resumes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { GuestDmaHandler, GuestVf } from '../../../core/contracts/guest-port.js';
import { VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { simRig, type SimRig } from '../lifecycle/sim-rig.js';
import { CTRL, IOVA, MSG, RESP, openGuestVf, waitFor, writeRpcSetup } from './guest-rpc-page.js';

const RAM = 64 << 10;
const ECHO = 1;

/** Guest memory whose next transfer at a chosen IOVA waits until the test lets it through. */
class HeldRam implements GuestDmaHandler {
  readonly mem = Buffer.alloc(RAM);
  /** Every transfer, in order: 'r'/'w' and the RAM offset. */
  readonly log: string[] = [];
  private hold: { kind: 'r' | 'w'; iova: bigint; reached: () => void; gate: Promise<void> } | null = null;

  /** Hold the next `kind` transfer at `iova`: `reached` resolves when it starts, `release()` lets it run. */
  holdNext(kind: 'r' | 'w', iova: bigint): { reached: Promise<void>; release: () => void } {
    let reached!: () => void;
    let release!: () => void;
    const r = new Promise<void>((res) => { reached = res; });
    this.hold = { kind, iova, reached, gate: new Promise<void>((res) => { release = res; }) };
    return { reached: r, release };
  }

  private async pass(kind: 'r' | 'w', iova: bigint): Promise<number> {
    const h = this.hold;
    if (h !== null && h.kind === kind && h.iova === iova) {
      this.hold = null;
      h.reached();
      await h.gate;
    }
    const off = Number(iova - IOVA);
    this.log.push(`${kind}@0x${off.toString(16)}`);
    return off;
  }

  async read(iova: bigint, length: number): Promise<Uint8Array> {
    const off = await this.pass('r', iova);
    return Uint8Array.from(this.mem.subarray(off, off + length));
  }

  async write(iova: bigint, data: Uint8Array): Promise<void> {
    this.mem.set(data, await this.pass('w', iova));
  }
}

describe('guest RPC vs the migration stop (STOP_WORK)', () => {
  let rig: SimRig;
  let vf: GuestVf;
  let stopGuest: () => void;
  const ram = new HeldRam();
  let interrupts = 0;
  let requestId = 0;

  const host = (type: number): Promise<Uint8Array> => rig.lc.records()[0]!.res.channel!.call(type);
  const taskLog = (): string => Buffer.from(rig.lc.gpu.firmware.readLog('vgpu-task', 1)).toString();

  /** Post an ECHO of `text` and ring the message doorbell (the answer is not awaited). */
  function ring(text: string): number {
    const head = Buffer.alloc(8);
    head.writeUInt32LE(ECHO, 0);
    head.writeUInt32LE(text.length, 4);
    ram.mem.set(Buffer.concat([head, Buffer.from(text)]), MSG);
    ram.mem.writeUInt32LE(++requestId, CTRL + 4);
    vf.write32(0, 0x2200, 1);
    return requestId;
  }

  /** The answer of call `id`: the response page names it and the message buffer holds the echo. */
  function answered(id: number): string | null {
    if (ram.mem.readUInt32LE(RESP) !== id) return null;
    assert.equal(ram.mem.readUInt32LE(RESP + 4), 0, 'NV_OK');
    return ram.mem.subarray(MSG + 8, MSG + 8 + ram.mem.readUInt32LE(MSG + 4)).toString();
  }

  /** Call STOP_WORK and wait until the task has taken it: either answered at once or waiting for the guest call. */
  async function stopTaken(): Promise<{ stop: Promise<Uint8Array>; waited: boolean }> {
    const before = taskLog().length;
    const stop = host(VgpuRpcMsg.MIGRATION_STOP_WORK);
    const line = (): string | undefined => /MIGRATION_STOP_WORK: (ok|waiting for the guest call in flight)/.exec(taskLog().slice(before))?.[1];
    await waitFor(() => line() !== undefined);
    return { stop, waited: line() !== 'ok' };
  }

  before(async () => {
    rig = await simRig({ bdf: '0000:62:00.0' });
    await rig.lc.create(0, rig.type('4Q'));
    ({ vf, stop: stopGuest } = await openGuestVf(rig, ram, () => { interrupts++; }));
    vf.write32(0, 0x1200, 0x1); // leaf 0 bit 0 (RPC answered) enabled
    vf.write32(0, 0x1608, 0x1);
    // The guest's RPC setup: control page, response page, message buffer.
    writeRpcSetup(vf, ram.mem, ++requestId);
    vf.write32(0, 0x2200, 0);
    await waitFor(() => ram.mem.readUInt32LE(RESP) === requestId);
    await waitFor(() => interrupts === 1);
    vf.write32(0, 0x1000, 0x1); // the guest clears the bit
  });

  after(async () => {
    stopGuest?.();
    await rig?.stop();
  });

  it('a call caught before it wrote anything is withdrawn: nothing lands after the stop; answered once the work resumes', async () => {
    const held = ram.holdNext('r', IOVA + BigInt(MSG) + 8n); // the payload read: everything before it is reads
    const id = ring('withdrawn, then answered');
    await held.reached;
    const { stop, waited } = await stopTaken();
    assert.ok(waited, 'STOP_WORK is not answered while the guest call is in flight');
    const transfers = ram.log.length;
    const irqs = interrupts;
    held.release();
    await stop;
    assert.deepEqual(ram.log.slice(transfers), ['r@0x2008'], 'only the held read ran: no write');
    assert.equal(answered(id), null, 'no answer in the response page');
    assert.equal(vf.read32(0, 0x1000) & 1, 0, 'no interrupt pending');
    assert.equal(interrupts, irqs);
    assert.match(taskLog(), /guest doorbell 1 withdrawn by the work stop/);
    await host(VgpuRpcMsg.MIGRATION_RESUME_WORK);
    await waitFor(() => answered(id) !== null);
    assert.equal(answered(id), 'withdrawn, then answered');
    await waitFor(() => interrupts === irqs + 1);
    vf.write32(0, 0x1000, 0x1); // the guest clears the bit
  });

  it('a call already writing its answer finishes before the stop is acknowledged; after it, nothing lands', async () => {
    const held = ram.holdNext('w', IOVA + BigInt(RESP)); // the response: the echo is already in the message buffer
    const id = ring('finished before the stop');
    await held.reached;
    const { stop, waited } = await stopTaken();
    assert.ok(waited, 'STOP_WORK is not answered while the guest call writes its answer');
    held.release();
    await stop;
    assert.equal(answered(id), 'finished before the stop', 'the answer landed before the stop was acknowledged');
    assert.equal(vf.read32(0, 0x1000) & 1, 1, 'its interrupt was raised before the acknowledgement');
    // Stopped: a new doorbell is taken by the next scan (the host's call below rings one) and not served.
    const transfers = ram.log.length;
    const next = ring('after the stop');
    await host(VgpuRpcMsg.GET_GUEST_INFO);
    assert.deepEqual(ram.log.slice(transfers), [], 'no DMA while the work is stopped');
    assert.equal(answered(next), null);
    await host(VgpuRpcMsg.MIGRATION_RESUME_WORK);
    await waitFor(() => answered(next) !== null);
    assert.equal(answered(next), 'after the stop');
  });
});
