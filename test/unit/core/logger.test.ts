import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { VgpuError, ErrorCode } from '../../../core/contracts/exceptions.js';
import { createLogger } from '../../../core/logging/create-logger.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';

async function capture(format: 'json' | 'human', write: (log: ReturnType<typeof createLogger>) => void): Promise<string[]> {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const log = createLogger({ format, level: 'info', stream });
  write(log);
  await log.close();
  return chunks.join('').split('\n').filter((l) => l.length > 0);
}

test('json lines carry service, child bindings, a timestamp, and serialized errors with stack', async () => {
  const lines = await capture('json', (log) => {
    const gpuLog = log.child({ component: 'lifecycle' }).child({ gpu: '0000:41:00.0' });
    gpuLog.info('vgpu created', { vgpu: 'vgpu-1' });
    gpuLog.error('scrub failed', { error: new VgpuError(ErrorCode.Scrub, 'CE timeout', { hint: 'retry' }) });
    log.debug('below the level');
  });
  assert.equal(lines.length, 2);
  const [a, b] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(a?.service, 'vgpud');
  assert.equal(a?.component, 'lifecycle');
  assert.equal(a?.gpu, '0000:41:00.0');
  assert.equal(a?.vgpu, 'vgpu-1');
  assert.equal(a?.level, 'info');
  assert.ok(!Number.isNaN(Date.parse(String(a?.timestamp))));
  const err = b?.error as Record<string, unknown>;
  assert.equal(err.code, 'VGPU_ESCRUB');
  assert.equal(err.hint, 'retry');
  assert.match(String(err.stack), /CE timeout\n\s+at /);
});

test('human lines put level, tags and message first', async () => {
  const [line] = await capture('human', (log) => log.child({ component: 'scrub' }).warn('slow copy engine', { mibps: 12 }));
  assert.match(String(line), /^\S+ warn +\[component=scrub\] slow copy engine \{"mibps":12\}$/);
});

test('MemoryLogger children share lines and add bindings; level filters', () => {
  const root = new MemoryLogger({ level: 'info' });
  const child = root.child({ component: 'api' }).child({ gpu: 'g' });
  child.info('listening', { socket: '/run/x' });
  child.debug('dropped');
  root.error('root line');
  assert.deepEqual(root.lines.map((l) => [l.level, l.message, l.meta]), [
    ['info', 'listening', { component: 'api', gpu: 'g', socket: '/run/x' }],
    ['error', 'root line', {}],
  ]);
  assert.equal(child.lines, root.lines);
});

test('durations in log lines are rounded to what a reader can use (2.21, not 2.2054560000105994); other numbers stay', async () => {
  const [human] = await capture('human', (log) => log.info('FB scrubbed', { durationMs: 2.2054560000105994, ratio: 0.123456, stop: { pauseMs: 45.678 } }));
  assert.match(human!, /"durationMs":2\.21/);
  assert.match(human!, /"pauseMs":45\.7/);
  assert.match(human!, /"ratio":0\.123456/);
  const [json] = await capture('json', (log) => log.info('migrated', { totalMs: 1234.5678, ms: 0.0049 }));
  const j = JSON.parse(json!) as { totalMs: number; ms: number };
  assert.equal(j.totalMs, 1235);
  assert.equal(j.ms, 0);
});

test('a line below the active level is dropped before its meta is read; at debug level the same call is written', async () => {
  // A meta whose serialization would throw: below the level the logger must not look at it at all (the hot paths
  // log a debug line per create step, and preparing one cost more than the step's own bookkeeping).
  let read = 0;
  const meta = { get vgpu(): string { read++; return 'vgpu-1'; } };
  const quiet = await capture('json', (log) => log.child({ component: 'lifecycle' }).debug('vGPU step', meta));
  assert.deepEqual(quiet, []);
  assert.equal(read, 0);
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c.toString('utf8')));
  const log = createLogger({ format: 'json', level: 'debug', stream });
  log.child({ component: 'lifecycle' }).debug('vGPU step', meta);
  await log.close();
  const line = JSON.parse(chunks.join('').trim()) as Record<string, unknown>;
  assert.equal(line.message, 'vGPU step');
  assert.equal(line.vgpu, 'vgpu-1');
  assert.equal(line.level, 'debug');
});
