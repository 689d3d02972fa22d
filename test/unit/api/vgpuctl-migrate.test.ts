// `vgpuctl migrate` against the real control API app with the migrate route mounted over a stub migration service:
// the request the daemon receives, the summary / --json output, and the documented exit codes for the typed
// errors the route streams as its last NDJSON line.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { inProcessVgpuctl } from './in-process-vgpuctl.js';
import { EXIT } from '../../../bin/cli/exit-codes.js';
import { buildApiApp, type ApiApp } from '../../../plugins/api/build-api-app.js';
import { MigState } from '../../../plugins/migration/fsm.js';
import { migrateRoute } from '../../../plugins/migration/migrate-route.js';
import type { MigrateOptions, MigrateResult, MigrationService } from '../../../plugins/migration/migration-service.js';
import { FakeVgpuService } from './fake-vgpu-service.js';

const dir = mkdtempSync(join(tmpdir(), 'vgpuctl-mig-'));
const sock = join(dir, 'd.sock');

const ctl = (...argv: string[]): ReturnType<typeof inProcessVgpuctl> => inProcessVgpuctl(sock, ...argv);

/** What the stub does next: succeed, or fail with this error after the estimate. */
let outcome: VgpuError | null = null;
const calls: { id: string; o: MigrateOptions }[] = [];
/** Migration states of the vGPUs the stub knows; any other id is unknown (VGPU_ENOENT, like the real one). */
const states = new Map<string, number>([['vgpu-1', MigState.RUNNING], ['vgpu-busy', MigState.PRE_COPY]]);
const stub = {
  getState(id: string): number {
    const s = states.get(id);
    if (s === undefined) throw new VgpuError(ErrorCode.NotFound, `no vGPU ${id}`, { hint: 'list the vGPUs for their ids' });
    return s;
  },
  async migrateVgpu(id: string, o: MigrateOptions): Promise<MigrateResult> {
    calls.push({ id, o });
    o.onProgress?.({ phase: 'estimate', vgpu: id, predictedDowntimeMs: 120, fbBytes: 1 << 30 });
    if (outcome) throw outcome;
    o.onProgress?.({ phase: 'precopy', vgpu: id, pass: 1, sentBytes: 1 << 30 });
    return {
      source: id, destination: o.to, vgpu: 'vgpu-9', passes: [], totalMs: 2345.6, downtimeMs: 87.2, streamBytes: 1n << 30n,
      estimate: { downtimeMs: 120, totalMs: 2000, dirtyRate: 0, bandwidth: 1e9, converges: true, passes: 1 },
    };
  },
};

describe('vgpuctl migrate', () => {
  let api: ApiApp;
  before(async () => {
    const logger = new MemoryLogger();
    const bus = new EventBusImpl(logger);
    api = await buildApiApp({ service: new FakeVgpuService({ bus }), bus, logger, routes: [migrateRoute(stub as unknown as MigrationService)] });
    await api.app.listen({ path: sock });
  });
  after(async () => {
    await api.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the destination and downtime budget, prints a summary (no bar off a TTY)', async () => {
    outcome = null;
    calls.length = 0;
    const r = await ctl('migrate', 'vgpu-1', '--to', '/run/other/migrate.sock', '--downtime-ms', '250');
    assert.equal(r.code, EXIT.ok, r.err);
    assert.equal(calls.length, 1);
    assert.equal(calls[0]!.id, 'vgpu-1');
    assert.equal(calls[0]!.o.to, '/run/other/migrate.sock');
    assert.equal(calls[0]!.o.downtimeMs, 250);
    assert.match(r.out, /migrated vgpu-1 to \/run\/other\/migrate\.sock: now vgpu-9/);
    assert.match(r.out, /guest paused 87 ms/);
    assert.equal(r.err, '');
  });

  it('--json prints the result object', async () => {
    outcome = null;
    const r = await ctl('migrate', 'vgpu-1', '--to', '0000:42:00.0', '--json');
    assert.equal(r.code, EXIT.ok, r.err);
    const j = JSON.parse(r.out) as { result: { vgpu: string; destination: string; streamBytes: string } };
    assert.equal(j.result.vgpu, 'vgpu-9');
    assert.equal(j.result.destination, '0000:42:00.0');
    assert.equal(j.result.streamBytes, String(1n << 30n));
  });

  it('a failed migration exits 4 with the message and hint; a cancelled one exits 3', async () => {
    outcome = new VgpuError(ErrorCode.Migration, 'migration of vgpu-1 gave up: not converging', { hint: 'raise --downtime-ms' });
    const f = await ctl('migrate', 'vgpu-1', '--to', 'otherhost:7000');
    assert.equal(f.code, EXIT.daemon);
    assert.match(f.err, /gave up: not converging \(VGPU_EMIGRATION\)/);
    assert.match(f.err, /hint: raise --downtime-ms/);
    outcome = new VgpuError(ErrorCode.Cancelled, 'migration of vgpu-1 cancelled', { hint: 'the source keeps running' });
    const c = await ctl('migrate', 'vgpu-1', '--to', '0000:42:00.0');
    assert.equal(c.code, EXIT.refused);
    assert.match(c.err, /VGPU_ECANCELED/);
  });

  it('an unknown vGPU is a 404 and a migrating one a 409, not a 200 with the error in the body', async () => {
    calls.length = 0;
    const r = await api.app.inject({ method: 'POST', url: '/v1/vgpus/vgpu-999/migrate', payload: { to: '0000:42:00.0' } });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'VGPU_ENOENT');
    const b = await api.app.inject({ method: 'POST', url: '/v1/vgpus/vgpu-busy/migrate', payload: { to: '0000:42:00.0' } });
    assert.equal(b.statusCode, 409);
    assert.equal(calls.length, 0);
    const c = await ctl('migrate', 'vgpu-999', '--to', '0000:42:00.0');
    assert.equal(c.code, EXIT.refused);
    assert.match(c.err, /no vGPU vgpu-999 \(VGPU_ENOENT\)/);
  });

  it('refuses a destination that is no BDF, path or host:port without calling the daemon', async () => {
    calls.length = 0;
    const r = await ctl('migrate', 'vgpu-1', '--to', 'nowhere');
    assert.equal(r.code, EXIT.usage);
    assert.match(r.err, /neither a GPU address, a socket path nor host:port/);
    const d = await ctl('migrate', 'vgpu-1', '--to', '0000:42:00.0', '--downtime-ms', '0');
    assert.equal(d.code, EXIT.usage);
    assert.equal(calls.length, 0);
  });
});
