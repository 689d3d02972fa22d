/**
 * `vgpuctl status | head -1`: the REAL vgpuctl binary whose stdout reader is gone before it writes. Each command
 * must end quietly with exit 0, like other CLIs, not with an EPIPE stack trace and exit 1. The daemon side is the
 * control API app over a fake service on a real Unix socket (the point is the CLI process, not the manager).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventBusImpl } from '../../core/event-bus.js';
import { MemoryLogger } from '../../core/logging/memory-logger.js';
import { buildApiApp, type ApiApp } from '../../plugins/api/build-api-app.js';
import { FAKE_GPU, FakeVgpuService } from '../unit/api/fake-vgpu-service.js';
import { root } from './helpers/daemon-harness.js';

/** Run vgpuctl with its stdout pipe closed from the start; resolves with its exit code and stderr. */
function withClosedStdout(socket: string, ...args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [join(root, 'bin/vgpuctl.mjs'), '--socket', socket, ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy(); // the reader went away (head -1 exited) before vgpuctl wrote anything
    let err = '';
    p.stderr.on('data', (c: Buffer) => { err += c.toString(); });
    p.on('close', (code) => resolve({ code, err }));
  });
}

describe('vgpuctl with a closed stdout (vgpuctl … | head -1)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpuctl-pipe-'));
  const socket = join(dir, 'd.sock');
  let api: ApiApp;
  before(async () => {
    const logger = new MemoryLogger();
    const svc = new FakeVgpuService();
    for (let i = 0; i < 6; i++) await svc.create({ gpu: FAKE_GPU, type: '8Q' });
    api = await buildApiApp({ service: svc, bus: new EventBusImpl(logger), logger });
    await api.app.listen({ path: socket });
  });
  after(async () => {
    await api.app.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const args of [['status'], ['list'], ['types', '--all'], ['list', '--json'], ['--help']]) {
    it(`vgpuctl ${args.join(' ')}: exit 0, no stack trace`, async () => {
      const r = await withClosedStdout(socket, ...args);
      assert.equal(r.err, '');
      assert.equal(r.code, 0);
    });
  }
});
