import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventBusImpl } from '../../../core/event-bus.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';

test('a throwing listener is logged with the event and error, and the others still run', () => {
  const logger = new MemoryLogger();
  const bus = new EventBusImpl(logger);
  const got: string[] = [];
  bus.on('gpu:ready', (e) => got.push(`first ${e.gpu}`));
  bus.on('gpu:ready', () => { throw new Error('subscriber bug'); });
  bus.on('gpu:ready', (e) => got.push(`third ${e.gpu}`));
  const threw = bus.emit('gpu:ready', { gpu: '0000:41:00.0' });
  assert.equal(threw, 1);
  assert.deepEqual(got, ['first 0000:41:00.0', 'third 0000:41:00.0']);
  const [line] = logger.find('event listener threw');
  assert.equal(line?.level, 'error');
  assert.equal(line?.meta.event, 'gpu:ready');
  assert.match(String((line?.meta.error as { message: string }).message), /subscriber bug/);
});

test('emit counts only its own throwers when a listener emits again', () => {
  const bus = new EventBusImpl(new MemoryLogger());
  let inner = -1;
  bus.on('gpu:lost', () => { throw new Error('inner'); });
  bus.on('gpu:ready', (e) => { inner = bus.emit('gpu:lost', { gpu: e.gpu, reason: 'x' }); });
  bus.on('gpu:ready', () => { throw new Error('outer 1'); });
  bus.on('gpu:ready', () => { throw new Error('outer 2'); });
  assert.equal(bus.emit('gpu:ready', { gpu: 'g' }), 2);
  assert.equal(inner, 1);
});

test('on and once return unsubscribe functions; once fires one time', () => {
  const bus = new EventBusImpl(new MemoryLogger());
  const got: string[] = [];
  const offOn = bus.on('gpu:ready', () => got.push('on'));
  bus.once('gpu:ready', () => got.push('once'));
  const offOnce = bus.once('gpu:ready', () => got.push('never'));
  offOnce();
  assert.equal(bus.listenerCount('gpu:ready'), 2);
  bus.emit('gpu:ready', { gpu: 'g' });
  bus.emit('gpu:ready', { gpu: 'g' });
  offOn();
  bus.emit('gpu:ready', { gpu: 'g' });
  assert.deepEqual(got, ['on', 'once', 'on']);
  assert.equal(bus.listenerCount('gpu:ready'), 0);
});

test('the same function subscribed twice is removed one subscription at a time', () => {
  const bus = new EventBusImpl(new MemoryLogger());
  let n = 0;
  const f = (): void => { n += 1; };
  const off1 = bus.on('gpu:ready', f);
  bus.on('gpu:ready', f);
  off1();
  bus.emit('gpu:ready', { gpu: 'g' });
  assert.equal(n, 1);
});

test('a rejected async listener is logged instead of becoming an unhandled rejection', async () => {
  const logger = new MemoryLogger();
  const bus = new EventBusImpl(logger);
  let release!: () => void;
  const logged = new Promise<void>((r) => { release = r; });
  const origError = logger.error.bind(logger);
  logger.error = (m, meta) => { origError(m, meta); release(); };
  const listener = async (): Promise<void> => { throw new Error('async bug'); };
  bus.on('gpu:ready', listener as unknown as () => void);
  assert.equal(bus.emit('gpu:ready', { gpu: 'g' }), 0);
  await logged;
  assert.equal(logger.find('event listener rejected')[0]?.meta.event, 'gpu:ready');
});
