import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExceptionOwner, GpuException } from '../../../core/contracts/exceptions.js';
import { EventBusImpl } from '../../../core/event-bus.js';
import { ExceptionRelayImpl } from '../../../core/exception-relay.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';

const GPU = '0000:41:00.0';

function setup() {
  const logger = new MemoryLogger();
  const bus = new EventBusImpl(logger);
  const relay = new ExceptionRelayImpl(bus, logger);
  // What the vGPU manager registers: gfid 3 is vGPU "vgpu-3" on GPU, anything else is unknown.
  relay.addResolver((e) => (e.gpu === GPU && e.gfid === 3 ? { kind: 'vgpu', gpu: GPU, vgpuId: 'vgpu-3' } : undefined));
  return { logger, bus, relay };
}

function exc(gfid: number | undefined, fatal = false): GpuException {
  return {
    gpu: GPU, source: 'firmware', kind: 'rc', message: 'robust channel error', eventId: 0x1004, fatal, at: 1,
    ...(gfid !== undefined ? { gfid } : {}),
  };
}

test('a gfid the resolver knows goes to that vGPU and to "*", not to the GPU', () => {
  const { relay, logger } = setup();
  const got: string[] = [];
  relay.subscribe('vgpu-3', (_e, o) => got.push(`vgpu-3 ${o.kind}`));
  relay.subscribe(GPU, () => got.push('gpu'));
  relay.subscribe('*', (_e, o) => got.push(`* ${JSON.stringify(o)}`));
  const owner = relay.report(exc(3, true));
  assert.deepEqual(owner, { kind: 'vgpu', gpu: GPU, vgpuId: 'vgpu-3' });
  assert.deepEqual(got, ['vgpu-3 vgpu', `* ${JSON.stringify(owner)}`]);
  const [line] = logger.find('robust channel error');
  assert.equal(line?.level, 'error');
  assert.equal(line?.meta.vgpu, 'vgpu-3');
  assert.equal(line?.meta.gpu, GPU);
  assert.equal(line?.meta.eventId, '0x1004');
});

test('an unknown gfid (or none) belongs to the physical GPU', () => {
  const { relay, logger } = setup();
  const got: ExceptionOwner[] = [];
  relay.subscribe(GPU, (_e, o) => got.push(o));
  relay.report(exc(7));
  relay.report(exc(undefined));
  assert.deepEqual(got, [{ kind: 'gpu', gpu: GPU }, { kind: 'gpu', gpu: GPU }]);
  const lines = logger.find('robust channel error');
  assert.deepEqual(lines.map((l) => [l.level, l.meta.gpu, l.meta.vgpu]), [['warn', GPU, undefined], ['warn', GPU, undefined]]);
});

test('the first resolver returning an owner wins; a throwing resolver is skipped and logged', () => {
  const { relay, logger } = setup();
  const off = relay.addResolver(() => ({ kind: 'vgpu', gpu: GPU, vgpuId: 'later' }));
  assert.equal((relay.report(exc(3)) as { vgpuId: string }).vgpuId, 'vgpu-3');
  assert.equal((relay.report(exc(9)) as { vgpuId: string }).vgpuId, 'later');
  off();
  relay.addResolver(() => { throw new Error('resolver bug'); });
  assert.deepEqual(relay.report(exc(9)), { kind: 'gpu', gpu: GPU });
  assert.equal(logger.find('exception resolver threw').length, 1);
});

test('subscribers are isolated, unsubscribe works, and the bus sees every exception', () => {
  const { relay, bus, logger } = setup();
  const got: string[] = [];
  relay.subscribe('*', () => { throw new Error('bad subscriber'); });
  const off = relay.subscribe('*', (e) => got.push(e.kind));
  const onBus: GpuException[] = [];
  bus.on('exception', (e) => onBus.push(e));
  relay.report(exc(3));
  off();
  relay.report(exc(3));
  assert.deepEqual(got, ['rc']);
  assert.equal(onBus.length, 2);
  assert.equal(logger.find('exception subscriber threw').length, 2);
});
