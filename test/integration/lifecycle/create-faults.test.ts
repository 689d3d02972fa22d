/**
 * A fault at each FIRMWARE step of create on the simulated RTX 6000 Ada (worker mode): the typed error names the
 * step, and the simulator's books are clean afterwards — RM clients back to the manager's one, no plugin task for
 * the gfid, no FB or CHID range, FB stats and placement slots as on the empty GPU — and a following create on the
 * same VF succeeds. Also the destroy path with failing firmware calls.
 *
 * How each fault is made:
 *  - rm-client, bootload: the GSP server's fault injection (`controls.inject`). A `fail-call` matches by GSP
 *    function and counts calls from when it is armed: RM_ALLOC #1 is the vGPU client's NV01_ROOT, #3 its
 *    subdevice; the BOOTLOAD (0x20804001) is the first RM_CONTROL of a create (no scrubber is bound), so
 *    RM_CONTROL #1 is it. The server cannot match an RM control id, only the function.
 *  - rpc-setup: the simulator has NO control for mailbox faults (its injection works on GSP RPC replies, not on the
 *    FB mailbox), so the test corrupts what the HOST writes into the mailbox through a wrapped heap mapping, and the
 *    simulated plugin task reacts as it would to a bad host: a wrong control-buffer version (no BOOTLOADED ever),
 *    an unknown message type for VERSION_NEGOTIATION (error result), a SETUP_CONFIG whose vm_pid does not match the
 *    bootload (error result), a SETUP_CONFIG rung with a stale sequence number (never answered: mailbox timeout).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { CONFIG_PARAMS_PAYLOAD, CTRL_BUFFER, MgmtHeap, VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { GspFunction } from '../../../hal/gsp/gsp-layout.js';
import { interceptHeapWrites, simRig, type SimRig } from './sim-rig.js';

const VERSION_OFF = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('version');
const TYPE_OFF = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_type');
const SEQ_OFF = MgmtHeap.CTRL_OFFSET + CTRL_BUFFER.offsetOf('message_seq_num');
const u32 = (d: Uint8Array): number => Buffer.from(d.buffer, d.byteOffset, d.byteLength).readUInt32LE(0);
const le32 = (v: number): Uint8Array => { const b = Buffer.alloc(4); b.writeUInt32LE(v); return b; };

/** A host-side mailbox fault, armed for one create: returns the bytes to write instead (or the same). */
type MailboxFault = (offset: number, data: Uint8Array) => Uint8Array | null;
let mailboxFault: MailboxFault | null = null;

let r: SimRig;
before(async () => {
  r = await simRig({
    bdf: '0000:71:00.0',
    timeouts: { rpcMs: 1000, bootloadMs: 300, mailboxMs: 300 },
    wrapGpu: (gpu) => interceptHeapWrites(gpu, (off, data) => mailboxFault?.(off, data) ?? data),
  });
});
after(async () => { await r?.stop(); });

async function assertClean(what: string): Promise<void> {
  assert.deepEqual(await r.books(), r.baseline, `${what}: the simulator holds exactly what it held before`);
  assert.deepEqual(r.lc.records(), []);
}

interface FirmwareFault {
  step: 'rm-client' | 'bootload' | 'rpc-setup';
  what: string;
  arm(): Promise<void>;
  /** What the error message must also say. */
  says?: RegExp;
  /** A fault of the GSP server that must have fired exactly once. */
  gspFault?: boolean;
}

const faults: FirmwareFault[] = [
  {
    step: 'rm-client', what: 'the RM_ALLOC of the client (NV01_ROOT) fails', gspFault: true,
    arm: () => r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_ALLOC, nth: 1, result: 0x51 }),
  },
  {
    step: 'rm-client', what: 'the RM_ALLOC of the client\'s subdevice fails (root and device were made)', gspFault: true,
    arm: () => r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_ALLOC, nth: 3, result: 0x51 }),
  },
  {
    step: 'bootload', what: 'the RM control BOOTLOAD_GSP_VGPU_PLUGIN_TASK fails', gspFault: true,
    arm: () => r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, nth: 1, result: 0x1f }),
  },
  {
    step: 'rpc-setup', what: 'the plugin task refuses the control-buffer header and never writes BOOTLOADED', says: /BOOTLOADED/,
    arm: async () => {
      mailboxFault = (off, data) => (off === VERSION_OFF && data.byteLength === 4 ? le32(2) : null);
    },
  },
  {
    step: 'rpc-setup', what: 'VERSION_NEGOTIATION gets an error result', says: /result code 0x/,
    arm: async () => {
      mailboxFault = (off, data) => (off === TYPE_OFF && u32(data) === VgpuRpcMsg.VERSION_NEGOTIATION ? le32(0x7ff) : null);
    },
  },
  {
    step: 'rpc-setup', what: 'SETUP_CONFIG_PARAMS_AND_INIT gets an error result (vm_pid differs from the bootload)', says: /SETUP_CONFIG_PARAMS_AND_INIT.*result code 0x/,
    arm: async () => {
      mailboxFault = (off, data) => {
        if (off !== MgmtHeap.MESSAGE_OFFSET || data.byteLength !== CONFIG_PARAMS_PAYLOAD.size) return null;
        const b = Buffer.from(data);
        b.writeUInt32LE(b.readUInt32LE(CONFIG_PARAMS_PAYLOAD.offsetOf('vm_pid')) + 1, CONFIG_PARAMS_PAYLOAD.offsetOf('vm_pid'));
        return b;
      };
    },
  },
  {
    step: 'rpc-setup', what: 'SETUP_CONFIG_PARAMS_AND_INIT is never answered (mailbox timeout)', says: /SETUP_CONFIG_PARAMS_AND_INIT/,
    arm: async () => {
      // The call goes out with the sequence number of the previous one: the task sees nothing new and stays silent.
      mailboxFault = (off, data) => (off === SEQ_OFF && u32(data) === 2 ? le32(1) : null);
    },
  },
];

describe('a fault at each firmware step of create on the simulator', () => {
  for (const f of faults) {
    it(`${f.step}: ${f.what} → VGPU_ECREATE names the step, books clean, VF reusable`, async () => {
      const t = r.type('1Q');
      const fired = (await r.dev.controls.gspStats()).faultsFired;
      await f.arm();
      try {
        await assert.rejects(r.lc.create(3, t), (e) => {
          assert.ok(isVgpuError(e, 'VGPU_ECREATE'), String(e));
          assert.equal(e.details['step'], f.step);
          assert.match(e.message, new RegExp(`step '${f.step}'`));
          if (f.says) assert.match(e.message, f.says);
          return true;
        });
      } finally {
        mailboxFault = null;
      }
      if (f.gspFault) assert.equal((await r.dev.controls.gspStats()).faultsFired, fired + 1, 'the armed fault fired (and is spent)');
      assert.equal(await r.dev.controls.pluginTask(4), null, 'no plugin task left for gfid 4');
      await assertClean(f.what);
      assert.equal(r.mgr.selectionOf(3), undefined, 'the type the create selected is deselected');

      const rec = await r.lc.create(3, t);
      assert.equal(rec.state, 'ready');
      assert.equal(await r.dev.controls.pluginTask(4), 'running');
      await r.lc.destroy(rec.id);
      await assertClean('after the retry');
    });
  }

  it('the mailbox fault made the simulated plugin task say why (kernel log of the refused header)', async () => {
    // The header fault once more, to read the task's own account before CLEANUP clears its log directory entry.
    mailboxFault = (off, data) => (off === VERSION_OFF && data.byteLength === 4 ? le32(2) : null);
    const seen: string[] = [];
    const off = r.bus.on('vgpu:step', (e) => {
      if (e.step === 'rpc-setup' && e.phase === 'failed') seen.push(Buffer.from(r.gpu.firmware.readLog('kernel', 4)).toString('utf8'));
    });
    try {
      await assert.rejects(r.lc.create(3, r.type('1Q')), (e) => isVgpuError(e, 'VGPU_ECREATE') && e.details['step'] === 'rpc-setup');
    } finally {
      off();
      mailboxFault = null;
    }
    assert.match(seen.join(''), /refusing control-buffer header: control buffer version 2/);
    await assertClean('after the header fault');
  });
});

describe('destroy with failing firmware calls on the simulator', () => {
  it('SHUTDOWN_GSP_VGPU_PLUGIN_TASK failing: destroy completes, logs it, and frees every host resource and the RM client', async () => {
    const rec = await r.lc.create(5, r.type('2Q'));
    await r.dev.controls.inject({ kind: 'fail-call', fn: GspFunction.GSP_RM_CONTROL, nth: 1, result: 0x1f });
    await r.lc.destroy(rec.id);
    assert.equal(rec.state, 'destroyed');
    assert.ok(r.logger.lines.some((l) => /SHUTDOWN_GSP_VGPU_PLUGIN_TASK failed/.test(l.message)));
    const b = await r.books();
    assert.equal(b.rmClients, r.baseline.rmClients);
    assert.deepEqual(b.fbRanges, []);
    assert.deepEqual(b.chidRanges, []);
    assert.deepEqual(b.fb, r.baseline.fb);
    assert.equal(b.usedSlots, 0);
    assert.deepEqual(r.lc.records(), []);
  });
});
