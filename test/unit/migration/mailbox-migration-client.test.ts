// Host side of the migration mailbox protocol (docs/migration.md) against a small fake GSP plugin task that moves
// the ring offsets as the protocol says. A context larger than the 2 MiB ring must stream through it intact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { HostMapping } from '../../../core/contracts/memory.js';
import { CTRL_BUFFER, MgmtHeap, RESPONSE_BUFFER, VgpuRpcMsg } from '../../../core/firmware-abi/vgpu-mailbox.js';
import { MailboxMigrationClient, type MailboxCaller } from '../../../plugins/migration/mailbox-migration-client.js';

const RING = MgmtHeap.MIGRATION_OFFSET, SIZE = MgmtHeap.MIGRATION_SIZE;
const CPU = CTRL_BUFFER.offsetOf('migration_buf_cpu_access_offset');
const GSP = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('migration_buf_gsp_access_offset');
const DONE = MgmtHeap.RESPONSE_OFFSET + RESPONSE_BUFFER.offsetOf('migration_state_save_complete');

function fakeMapping(): { mapping: HostMapping; mem: Buffer } {
  const mem = Buffer.alloc(MgmtHeap.COMM_BUFF_SIZE);
  const mapping = {
    range: { id: 1, offset: 0n, size: BigInt(mem.length), owner: 'v', label: 'mgmt-heap' }, offset: 0n, size: BigInt(mem.length),
    window: (o: number, l: number) => mem.subarray(o, o + l),
    read: (o: number, l: number) => Buffer.from(mem.subarray(o, o + l)),
    write: (o: number, d: Uint8Array) => { mem.set(d, o); },
    unmap: () => {},
  } as HostMapping;
  return { mapping, mem };
}

/** Fake GSP plugin: produces `state` on SAVE_STATE in 100 KiB steps, consumes on RESTORE_STATE. */
function fakeGsp(mem: Buffer, state: Buffer): { caller: MailboxCaller; calls: string[]; restored: () => Buffer } {
  const calls: string[] = [];
  const got: Buffer[] = [];
  const tick = (): Promise<void> => new Promise((r) => setImmediate(r));
  const caller: MailboxCaller = {
    async call(type, payload) {
      calls.push(Object.entries(VgpuRpcMsg).find(([, v]) => v === type)![0]);
      if (type === VgpuRpcMsg.MIGRATION_SAVE_STATE) {
        mem.writeUInt32LE(0, GSP); mem.writeUInt32LE(0, DONE);
        void (async () => {
          let put = 0;
          while (put < state.length) {
            const get = mem.readUInt32LE(CPU);
            const n = Math.min(100 << 10, state.length - put, SIZE - (put - get));
            for (let i = 0; i < n; i++) mem[RING + ((put + i) % SIZE)] = state[put + i]!;
            put += n;
            mem.writeUInt32LE(put, GSP);
            await tick();
          }
          mem.writeUInt32LE(1, DONE);
        })();
      }
      if (type === VgpuRpcMsg.MIGRATION_RESTORE_STATE) {
        const total = Number(Buffer.from(payload!).readBigUInt64LE(0));
        mem.writeUInt32LE(0, GSP);
        void (async () => {
          let get = 0;
          while (get < total) {
            const put = mem.readUInt32LE(CPU);
            const n = put - get;
            const b = Buffer.alloc(n);
            for (let i = 0; i < n; i++) b[i] = mem[RING + ((get + i) % SIZE)]!;
            got.push(b);
            get += n;
            mem.writeUInt32LE(get, GSP);
            await tick();
          }
        })();
      }
      return new Uint8Array(0);
    },
  };
  return { caller, calls, restored: () => Buffer.concat(got) };
}

test('SAVE_STATE streams a context larger than the 2 MiB ring intact; RESTORE_STATE feeds it back', async () => {
  const state = randomBytes(5 * SIZE + 12345);
  const { mapping, mem } = fakeMapping();
  const gsp = fakeGsp(mem, state);
  const client = new MailboxMigrationClient({ caller: gsp.caller, mapping, timeoutMs: 10_000 });
  await client.stopWork();
  const chunks: Uint8Array[] = [];
  for await (const c of client.save()) chunks.push(c);
  assert.ok(Buffer.concat(chunks).equals(state), 'saved bytes equal the GSP state');
  await client.restore(chunks);
  assert.ok(gsp.restored().equals(state), 'restored bytes equal');
  assert.deepEqual(gsp.calls, ['MIGRATION_STOP_WORK', 'MIGRATION_SAVE_STATE', 'MIGRATION_RESTORE_STATE', 'MIGRATION_RESTORE_DEFERRED_STATE']);
});

test('a GSP that stops moving the offsets makes the save fail with a typed timeout', async () => {
  const { mapping, mem } = fakeMapping();
  const caller: MailboxCaller = { call: async () => { mem.writeUInt32LE(0, GSP); mem.writeUInt32LE(0, DONE); return new Uint8Array(0); } };
  const client = new MailboxMigrationClient({ caller, mapping, timeoutMs: 50 });
  await assert.rejects(async () => { for await (const c of client.save()) void c; }, { code: 'VGPU_ETIMEDOUT' });
});
