/**
 * Per-vGPU log files are tenant data and must not grow without bound (issue 16, defects 7 and 8): the log dir is
 * 0700 with 0600 files, a link planted under a log file's name is never appended to, and the files of destroyed
 * vGPUs are deleted beyond `keepDestroyed` (or `keepDestroyedHours`) while each VF's last vGPU keeps its files until
 * the VF is reused.
 */
import 'reflect-metadata';
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EventBus } from '../../../core/contracts/events.js';
import type { GpuRegistry } from '../../../core/gpu-registry.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { TOKENS } from '../../../core/tokens.js';
import { MockHal } from '../../../hal/mock/mock-hal.js';
import type { MockGpu } from '../../../hal/mock/mock-gpu.js';
import { createLoggingPlugin, LOG_DRAINER, type FirmwareLogDrainer } from '../../../plugins/logging/index.js';
import { LogRetention, logFileName } from '../../../plugins/logging/log-retention.js';
import { createTestContainer, type TestContainer } from '../../helpers/test-container.js';

const BDF = '0000:41:00.0';
let tc: TestContainer | undefined;
const dirs: string[] = [];

afterEach(async () => {
  await tc?.stop();
  tc = undefined;
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

async function rig(logging: Record<string, unknown> = {}, prepare?: (stateDir: string) => void) {
  const dir = tempDir('vgpud-logfiles-');
  prepare?.(dir);
  tc = await createTestContainer({
    plugins: [createLoggingPlugin()],
    config: { api: { stateDir: dir }, plugins: { logging: { pollMs: 60_000, ...logging } } },
  });
  const gpu = await new MockHal({ devices: [{ bdf: BDF, totalVfs: 8 }] }).openDevice() as MockGpu;
  await gpu.firmware.boot({ version: '570.144' });
  tc.container.get<GpuRegistry>(TOKENS.GpuRegistry).add(gpu);
  const bus = tc.container.get<EventBus>(TOKENS.EventBus);
  const drainer = tc.container.get<FirmwareLogDrainer>(LOG_DRAINER);
  /** One vGPU's life on `vf`: created, logs a line, destroyed. */
  const cycle = async (vgpuId: string, vf: number, end = true): Promise<void> => {
    bus.emit('vgpu:state', { gpu: BDF, vgpuId, vf, from: null, to: 'creating' });
    gpu.firmware.appendLog('vgpu-task', vf + 1, `hello from ${vgpuId}\n`);
    bus.emit('vgpu:state', { gpu: BDF, vgpuId, vf, from: 'creating', to: 'ready' });
    if (!end) return;
    bus.emit('vgpu:state', { gpu: BDF, vgpuId, vf, from: 'ready', to: 'stopping' });
    bus.emit('vgpu:state', { gpu: BDF, vgpuId, vf, from: 'stopping', to: 'destroyed' });
    await drainer.sweep();
  };
  return { dir, logs: join(dir, 'logs'), tc, gpu, bus, drainer, cycle };
}

describe('per-vGPU log files', () => {
  it('the log dir is 0700 and files 0600; an older 0755 dir and 0644 file are tightened', async () => {
    const r = await rig({}, (dir) => {
      mkdirSync(join(dir, 'logs'), { mode: 0o755 });
      chmodSync(join(dir, 'logs'), 0o755);
      writeFileSync(join(dir, 'logs', logFileName(BDF, 2, 'vgpu-1')), 'old line\n', { mode: 0o644 });
    });
    assert.equal(statSync(r.logs).mode & 0o777, 0o700);
    await r.cycle('vgpu-1', 2, false);
    await r.cycle('vgpu-2', 3, false);
    for (const f of readdirSync(r.logs)) assert.equal(statSync(join(r.logs, f)).mode & 0o777, 0o600, f);
    assert.match(readFileSync(join(r.logs, logFileName(BDF, 2, 'vgpu-1')), 'utf8'), /old line\n.*hello from vgpu-1/s);
  });

  it('a symlink planted under a vGPU\'s log file name is never appended to; that vGPU logs to the daemon log only', async () => {
    const outside = tempDir('vgpud-logfiles-outside-');
    const target = join(outside, 'authorized_keys');
    writeFileSync(target, 'ssh-ed25519 AAAA operator\n');
    const r = await rig({}, (dir) => {
      mkdirSync(join(dir, 'logs'), { mode: 0o700 });
      symlinkSync(target, join(dir, 'logs', logFileName(BDF, 1, 'vgpu-7')));
    });
    await r.cycle('vgpu-7', 1, false);
    r.gpu.firmware.appendLog('vgpu-task', 2, 'more\n');
    r.drainer.drainAll();
    assert.equal(readFileSync(target, 'utf8'), 'ssh-ed25519 AAAA operator\n');
    const logger = r.tc.logger as MemoryLogger;
    assert.equal(logger.lines.filter((l) => /log file refused/.test(l.message)).length, 1, 'said once');
    assert.ok(logger.lines.some((l) => l.message === 'hello from vgpu-7'), 'the line still reached the daemon log');
  });

  it('a log dir that is a symlink fails the start, naming it', async () => {
    const outside = tempDir('vgpud-logfiles-outside-');
    await assert.rejects(rig({}, (dir) => symlinkSync(outside, join(dir, 'logs'))), /symbolic link/);
  });

  it('keeps the last keepDestroyed destroyed vGPUs plus each VF\'s last one; running ones are never touched', async () => {
    const r = await rig({ keepDestroyed: 3 });
    await r.cycle('vgpu-run', 7, false); // still running through it all
    // 400 cycles over VFs 0..3: without retention that is 400 files.
    for (let i = 1; i <= 400; i++) await r.cycle(`vgpu-${i}`, i % 4);
    const files = readdirSync(r.logs).sort();
    // VF k's last vGPU: vgpu-397..400 (kept until the VF is reused); of the others, the 3 newest.
    const want = ['vgpu-run', 'vgpu-400', 'vgpu-399', 'vgpu-398', 'vgpu-397', 'vgpu-396', 'vgpu-395', 'vgpu-394'];
    assert.equal(files.length, want.length, files.join(', '));
    for (const id of want) assert.ok(files.some((f) => f.endsWith(`_${id}.log`)), `${id} kept: ${files.join(', ')}`);
  });

  it('keepDestroyedHours deletes the older files of superseded vGPUs but never a VF\'s last one', async () => {
    const logs = tempDir('vgpud-logfiles-age-');
    const touch = (vf: number, id: string, hoursAgo: number, rotated = false): string => {
      const f = join(logs, `${logFileName(BDF, vf, id)}${rotated ? '.1' : ''}`);
      writeFileSync(f, 'x\n');
      const t = (Date.now() - hoursAgo * 3_600_000) / 1000;
      utimesSync(f, t, t);
      return f;
    };
    touch(0, 'vgpu-1', 50);
    touch(0, 'vgpu-1', 51, true);
    touch(0, 'vgpu-2', 30);
    touch(0, 'vgpu-3', 1);
    touch(1, 'vgpu-4', 100); // VF 1's last vGPU: kept however old
    const deleted = await new LogRetention({ dir: logs, keepDestroyed: 100, keepDestroyedHours: 24 }, new MemoryLogger()).sweep(new Set());
    assert.deepEqual(deleted.sort(), [logFileName(BDF, 0, 'vgpu-1'), `${logFileName(BDF, 0, 'vgpu-1')}.1`, logFileName(BDF, 0, 'vgpu-2')].sort());
    assert.deepEqual(readdirSync(logs).sort(), [logFileName(BDF, 0, 'vgpu-3'), logFileName(BDF, 1, 'vgpu-4')].sort());
  });
});
