// The kit's own machinery: how it words what a HAL did (never the kit's internals), how it bounds a HAL call that
// never settles, how it selects checks, and how it refuses a module or fixture of the wrong shape.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode, VgpuError, isVgpuError } from '../../../core/contracts/exceptions.js';
import { defineCheck } from '../../../conformance/check.js';
import { ConformanceSession, checkModule, selectChecks } from '../../../conformance/conformance-session.js';
import { CHECKS } from '../../../conformance/checks/index.js';
import { versionBelow } from '../../../conformance/describe.js';
import mockConformance from '../../../hal/mock/mock-conformance.js';

test('a version just below a floor, for the floor check', () => {
  assert.equal(versionBelow('570.144'), '570.143');
  assert.equal(versionBelow('570.0'), '569.0');
  assert.equal(versionBelow('575.0.1'), '575.0.0');
  assert.equal(versionBelow('0.0'), undefined);
});

test('--only selects by id, area or prefix, and names what matches nothing', () => {
  assert.deepEqual(selectChecks(['memory.alignment']).map((c) => c.id), ['memory.alignment']);
  assert.ok(selectChecks(['scrub']).every((c) => c.area === 'scrub'));
  assert.equal(selectChecks([]).length, CHECKS.length);
  assert.equal(new Set(CHECKS.map((c) => c.id)).size, CHECKS.length, 'check ids are unique');
  assert.throws(() => selectChecks(['memory', 'scrubb']), (e) => isVgpuError(e, ErrorCode.InvalidArgument) && /'scrubb'/.test(e.message) && !/'memory'/.test(e.message));
});

test('a module or a fixture of the wrong shape is refused with what is missing', async () => {
  assert.throws(() => checkModule({ name: '', createFixture: 1 }, '/x/acme.js'), (e) =>
    isVgpuError(e, ErrorCode.InvalidArgument) && /\/x\/acme\.js is not a HAL conformance module: `name` is not a non-empty string; `createFixture` is not a function/.test(e.message));
  let tornDown = false;
  const noDevices = { name: 'acme', createFixture: async () => ({ ...(await mockConformance.createFixture({} as never)), devices: [], teardown: async () => { tornDown = true; } }) };
  await assert.rejects(ConformanceSession.open(noDevices), (e) => isVgpuError(e) && /'acme' returned a bad fixture: `devices` is empty/.test(e.message));
  assert.equal(tornDown, true, 'the half-made fixture was torn down');
  const failing = { name: 'acme', createFixture: async () => { throw new VgpuError(ErrorCode.FirmwareBoot, 'no device') as Error; } };
  await assert.rejects(ConformanceSession.open(failing), (e) => isVgpuError(e) && /createFixture\(\) of HAL module 'acme' failed: VGPU_EFWBOOT: no device/.test(e.message));
});

test('a HAL call that never settles, or throws the wrong error, fails the check in the HAL\'s terms', async (t) => {
  const session = await ConformanceSession.open(mockConformance, { settings: { callMs: 50 } });
  t.after(() => session.close());
  const hung = await session.run(defineCheck('memory', 'x', 'x', async (ctx) => {
    await ctx.attempt('firmware.boot() of the test', () => new Promise(() => {}));
  }));
  assert.deepEqual([hung.status, hung.message], ['fail', 'firmware.boot() of the test did not settle within 50 ms']);
  const wrong = await session.run(defineCheck('memory', 'y', 'y', async (ctx) => {
    await ctx.rejects('open() of something', () => Promise.reject(new TypeError('boom')), [ErrorCode.UnsupportedDevice]);
  }));
  assert.equal(wrong.message, 'open() of something did not throw VGPU_ENODEV (it threw a plain TypeError (not a VgpuError): boom)');
  const threw = await session.run(defineCheck('memory', 'z', 'z', async (ctx) => {
    await ctx.attempt('memory.reserve(1 MiB)', () => { throw new VgpuError(ErrorCode.NoSpace, 'full'); });
  }));
  assert.equal(threw.message, 'memory.reserve(1 MiB) failed: VGPU_ENOSPC: full');
  const skipped = await session.run(defineCheck('memory', 'w', 'w', async (ctx) => { ctx.need(undefined, 'thing (x.y)'); }));
  assert.deepEqual([skipped.status, skipped.message], ['skip', 'the HAL offers no thing (x.y)']);
});
