// vgpuctl and requests: every create/apply carries an id, `request ID` tells what became of it, a lost connection
// says which request to ask about, plan notes are printed, durations are rounded.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService } from './fake-vgpu-service.js';
import { inProcessVgpuctl } from './in-process-vgpuctl.js';

const dir = mkdtempSync(join(tmpdir(), 'vgpuctl-req-'));
const sock = join(dir, 'd.sock');
const ctl = (...argv: string[]): ReturnType<typeof inProcessVgpuctl> => inProcessVgpuctl(sock, ...argv);

describe('vgpuctl requests', () => {
  let api: ApiApp;
  let svc: FakeVgpuService;
  before(async () => {
    const logger = new MemoryLogger();
    svc = new FakeVgpuService();
    api = await buildApiApp({ service: svc, bus: new EventBusImpl(logger), logger });
    await api.app.listen({ path: sock });
  });
  after(async () => {
    await api.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('create --request-id, then `request ID` and `requests` show it done with its vGPUs', async () => {
    const c = await ctl('create', '--gpu', FAKE_GPU, '--type', '8Q', '--count', '2', '--request-id', 'two-8q', '--json');
    assert.equal(c.code, 0, c.err);
    const ids = JSON.parse(c.out).vgpus.map((v: { id: string }) => v.id) as string[];
    const r = await ctl('request', 'two-8q');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^request +two-8q \(create 2 × 8Q on 0000:41:00\.0\)$/m);
    assert.match(r.out, /^state +done$/m);
    assert.match(r.out, new RegExp(`^created +${ids.join(', ')}$`, 'm'));
    const l = await ctl('requests');
    assert.match(l.out, /^two-8q +create +done +2\/2 /m);
    const missing = await ctl('request', 'nope');
    assert.equal(missing.code, 3);
    assert.match(missing.err, /never started/);
    for (const id of ids) await svc.destroy(id);
  });

  it('a request id is generated when none is given, and a refused request names its record', async () => {
    const failing = new FakeVgpuService({ failCreateAt: 2 });
    const logger = new MemoryLogger();
    const other = await buildApiApp({ service: failing, bus: new EventBusImpl(logger), logger });
    const s2 = join(dir, 'fail.sock');
    await other.app.listen({ path: s2 });
    const r = await inProcessVgpuctl(s2, 'create', '--gpu', FAKE_GPU, '--type', '4Q', '--count', '2');
    assert.equal(r.code, 3);
    assert.match(r.err, /hint: .*the request's record: vgpuctl request ctl-[0-9a-f-]{36}/);
    await other.app.close();
  });

  it('a connection lost mid-request says which request to ask about (exit 4)', async () => {
    const lost = join(dir, 'lost.sock');
    // A "daemon" that reads the request and dies before answering.
    const server = createServer((s) => s.once('data', () => s.destroy()));
    await new Promise<void>((r) => server.listen(lost, r));
    const r = await inProcessVgpuctl(lost, 'create', '--gpu', FAKE_GPU, '--type', '8Q', '--request-id', 'r-lost');
    server.close();
    assert.equal(r.code, 4);
    assert.match(r.err, /lost the connection to vgpud during request r-lost/);
    assert.match(r.err, /hint: ask what became of it: vgpuctl request r-lost/);
    // Nothing listening at all is not "lost": nothing was sent.
    const none = await inProcessVgpuctl(join(dir, 'none.sock'), 'create', '--gpu', FAKE_GPU, '--type', '8Q');
    assert.match(none.err, /cannot reach vgpud/);
  });

  it('apply prints the notes of the plan (a config for other boards is a no-op that says so)', async () => {
    const f = join(dir, 'layout.yaml');
    writeFileSync(f, 'version: v1\nvgpu-configs:\n  l40s:\n    - device-filter: "0x26B910DE"\n      devices: all\n      vgpu-devices: {L40S-24Q: 2}\n');
    const r = await ctl('apply', f, '--dry-run');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /no changes: the layout is applied\n  note: config 'l40s' selects none of this host's GPUs \(0000:41:00\.0 \(index 0, 0x26B110DE\)\): nothing to do/);
  });

  it('show prints the last scrub\'s duration rounded', async () => {
    const v = await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    svc.vgpus.get(v.id)!.lastScrub!.durationMs = 2.2054560000105994;
    const s = await ctl('show', v.id);
    // The scrub covers the guest FB: the fake 8Q's 8 GiB profile less its 128 MiB heap.
    assert.match(s.out, /last scrub +7\.9 GiB in 2\.21 ms \(create\)/);
    await svc.destroy(v.id);
  });
});
