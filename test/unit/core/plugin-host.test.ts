import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule } from 'inversify';
import { ErrorCode, isVgpuError, VgpuError } from '../../../core/contracts/exceptions.js';
import type { VgpudPlugin } from '../../../core/contracts/plugin.js';
import { createTestContainer, fakePlugin } from '../../helpers/test-container.js';

function expectVgpuError(code: ErrorCode, check?: (e: VgpuError) => void): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(isVgpuError(e, code), `expected ${code}, got ${String((e as Error)?.stack ?? e)}`);
    check?.(e);
    return true;
  };
}

test('plugins given in reverse are started in dependency order and stopped in reverse', async () => {
  const journal: string[] = [];
  const api = fakePlugin('api', { requires: ['lifecycle', 'events'], journal });
  const lifecycle = fakePlugin('lifecycle', { requires: ['hal', 'scrub'], journal });
  const scrub = fakePlugin('scrub', { requires: ['hal'], journal });
  const hal = fakePlugin('hal-sim', { provides: ['hal', 'pci-bus'], journal });
  const t = await createTestContainer({ plugins: [api, lifecycle, scrub, hal] });
  assert.deepEqual(journal, ['start:hal-sim', 'start:scrub', 'start:lifecycle', 'start:api']);
  assert.deepEqual(t.host.records().map((r) => [r.manifest.name, r.state]),
    [['hal-sim', 'started'], ['scrub', 'started'], ['lifecycle', 'started'], ['api', 'started']]);
  journal.length = 0;
  assert.deepEqual(await t.stop(), { failed: [] });
  assert.deepEqual(journal, ['stop:api', 'stop:lifecycle', 'stop:scrub', 'stop:hal-sim']);
  assert.ok(t.host.records().every((r) => r.state === 'stopped'));
});

test('independent plugins keep the order they were given in', async () => {
  const journal: string[] = [];
  await createTestContainer({ plugins: ['c', 'a', 'b'].map((n) => fakePlugin(n, { journal })) });
  assert.deepEqual(journal, ['start:c', 'start:a', 'start:b']);
});

test('a plugin that requires "hal" starts after every HAL (multi capability)', async () => {
  const journal: string[] = [];
  await createTestContainer({
    plugins: [
      fakePlugin('manager', { requires: ['hal'], journal }),
      fakePlugin('hal-a', { provides: ['hal'], journal }),
      fakePlugin('hal-b', { provides: ['hal'], journal }),
    ],
  });
  assert.deepEqual(journal, ['start:hal-a', 'start:hal-b', 'start:manager']);
});

test('optional capabilities order startup when present and are not required', async () => {
  const journal: string[] = [];
  await createTestContainer({
    plugins: [fakePlugin('api', { optional: ['metrics', 'absent'], journal }), fakePlugin('metrics', { journal })],
  });
  assert.deepEqual(journal, ['start:metrics', 'start:api']);
});

test('an optional use that would close a loop is dropped instead of failing', async () => {
  const journal: string[] = [];
  // a uses b optionally, b requires a: the only valid order is a, b.
  await createTestContainer({
    plugins: [fakePlugin('a', { optional: ['b'], journal }), fakePlugin('b', { requires: ['a'], journal })],
  });
  assert.deepEqual(journal, ['start:a', 'start:b']);
});

test('a missing requirement fails before any start hook ran, naming plugin and capability', async () => {
  const journal: string[] = [];
  await assert.rejects(
    createTestContainer({
      plugins: [fakePlugin('hal-sim', { provides: ['hal'], journal }), fakePlugin('scrub', { requires: ['hal', 'copy-engine'], journal })],
    }),
    expectVgpuError(ErrorCode.PluginMissing, (e) => {
      assert.match(e.message, /'scrub'/);
      assert.match(e.message, /'copy-engine'/);
      assert.deepEqual(e.details, { plugin: 'scrub', capability: 'copy-engine' });
    }),
  );
  assert.deepEqual(journal, []);
});

test('core capabilities count as provided', async () => {
  const t = await createTestContainer({ plugins: [fakePlugin('x', { requires: ['events', 'logger', 'exceptions', 'core'] })] });
  assert.equal(t.host.records()[0]?.state, 'started');
});

test('a requirement cycle fails naming the cycle path, before any start hook', async () => {
  const journal: string[] = [];
  await assert.rejects(
    createTestContainer({
      plugins: [
        fakePlugin('z', { journal }),
        fakePlugin('a', { requires: ['b'], journal }),
        fakePlugin('b', { requires: ['c'], journal }),
        fakePlugin('c', { requires: ['a'], journal }),
      ],
    }),
    expectVgpuError(ErrorCode.PluginCycle, (e) => {
      assert.match(e.message, /a → b → c → a/);
      assert.deepEqual(e.details.cycle, ['a', 'b', 'c', 'a']);
    }),
  );
  assert.deepEqual(journal, []);
});

test('a failing start stops the started plugins in reverse and names the plugin', async () => {
  const journal: string[] = [];
  const boom = new Error('GSP did not answer');
  const plugins = [
    fakePlugin('hal-sim', { provides: ['hal'], journal }),
    fakePlugin('scrub', { requires: ['hal'], journal }),
    fakePlugin('lifecycle', { requires: ['scrub'], journal, failStart: boom }),
    fakePlugin('api', { requires: ['lifecycle'], journal }),
  ];
  let caught: unknown;
  try {
    await createTestContainer({ plugins });
  } catch (e) {
    caught = e;
  }
  assert.ok(isVgpuError(caught, ErrorCode.PluginStart));
  assert.match(caught.message, /'lifecycle'/);
  assert.equal(caught.cause, boom);
  assert.deepEqual(journal, ['start:hal-sim', 'start:scrub', 'start:lifecycle', 'stop:scrub', 'stop:hal-sim']);
});

test('stop errors and hung stop hooks are logged, not thrown, and the others still stop', async () => {
  const journal: string[] = [];
  const t = await createTestContainer({
    stopTimeoutMs: 50,
    plugins: [
      fakePlugin('a', { journal }),
      fakePlugin('b', { journal, failStop: new Error('stuck fence') }),
      fakePlugin('c', { journal, hangStop: true }),
    ],
  });
  const result = await t.stop();
  assert.deepEqual(result.failed, ['c', 'b']);
  assert.deepEqual(journal.filter((j) => j.startsWith('stop:')), ['stop:c', 'stop:b', 'stop:a']);
  const errors = t.logger.find('plugin failed to stop');
  assert.deepEqual(errors.map((l) => l.meta.plugin), ['c', 'b']);
  assert.match(JSON.stringify(errors[0]?.meta.error), /VGPU_ETIMEDOUT/);
  assert.match(JSON.stringify(errors[1]?.meta.error), /stuck fence/);
  assert.deepEqual(await t.stop(), result, 'a second stop is a no-op');
});

test('start hooks get their config section, a component logger and the container', async () => {
  const seen: unknown[] = [];
  const token = Symbol.for('test.Value');
  const plugin: VgpudPlugin = {
    manifest: { name: 'scrub', version: '0.1.0', provides: ['scrub'], requires: [] },
    module: new ContainerModule(({ bind }) => { bind(token).toConstantValue(42); }),
    start(ctx) {
      seen.push(ctx.config, ctx.container.get(token));
      ctx.logger.info('hello');
    },
  };
  const t = await createTestContainer({ plugins: [plugin], config: { plugins: { scrub: { chunkMiB: 64 } } } });
  assert.deepEqual(seen, [{ chunkMiB: 64 }, 42]);
  assert.equal(t.logger.find('hello')[0]?.meta.component, 'scrub');
});

test('a requirement that only a plugin left out of plugins.enabled provides: the error names that plugin to add', async () => {
  const journal: string[] = [];
  const plugins = [fakePlugin('router', { provides: ['vgpu-service'], journal }), fakePlugin('api', { requires: ['vgpu-service'], journal })];
  await assert.rejects(
    createTestContainer({ plugins, config: { plugins: { enabled: ['api'] } } }),
    expectVgpuError(ErrorCode.PluginMissing, (e) => {
      assert.match(e.hint, /add 'router' to plugins\.enabled/);
      assert.deepEqual(e.details['candidates'], ['router']);
    }),
  );
  assert.deepEqual(journal, []);
});

test('plugins.enabled picks plugins by name and rejects unknown names', async () => {
  const journal: string[] = [];
  const plugins = [fakePlugin('a', { journal }), fakePlugin('b', { journal })];
  await createTestContainer({ plugins, config: { plugins: { enabled: ['b'] } } });
  assert.deepEqual(journal, ['start:b']);
  await assert.rejects(createTestContainer({ plugins, config: { plugins: { enabled: ['b', 'bee'] } } }),
    expectVgpuError(ErrorCode.Config, (e) => assert.match(e.message, /'bee'/)));
});

test('two plugins providing a single-provider capability are refused', async () => {
  await assert.rejects(
    createTestContainer({ plugins: [fakePlugin('s1', { provides: ['scrub'] }), fakePlugin('s2', { provides: ['scrub'] })] }),
    expectVgpuError(ErrorCode.Config, (e) => assert.match(e.message, /'scrub'.*s1, s2/)),
  );
});

test('an out-of-tree plugin is imported from plugins.paths and a bad manifest is rejected', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-plugin-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // The temp file lies outside the repo, so it imports inversify by absolute URL, as a plugin with the daemon's
  // copy as peer dependency would.
  const inversifyUrl = import.meta.resolve('inversify');
  const good = join(dir, 'good-plugin.mjs');
  writeFileSync(good, `
    import { ContainerModule } from '${inversifyUrl}';
    export default {
      manifest: { name: 'out-of-tree', version: '1.2.3', provides: ['extra'], requires: ['events'] },
      module: new ContainerModule(({ bind }) => bind(Symbol.for('test.OutOfTree')).toConstantValue('loaded')),
      start(ctx) { globalThis.__vgpudOutOfTreeStarted = ctx.config; },
    };`);
  const c = await createTestContainer({
    plugins: [fakePlugin('user', { requires: ['extra'] })],
    config: { plugins: { paths: [good], 'out-of-tree': { answer: 42 } } },
  });
  assert.equal(c.container.get(Symbol.for('test.OutOfTree')), 'loaded');
  assert.deepEqual((globalThis as Record<string, unknown>).__vgpudOutOfTreeStarted, { answer: 42 });
  assert.deepEqual(c.host.records().map((r) => r.manifest.name), ['out-of-tree', 'user']);
  await c.stop();

  const bad = join(dir, 'bad-plugin.mjs');
  writeFileSync(bad, `export default { manifest: { name: 'broken', version: '1.0.0', provides: 'hal', requires: [] } };`);
  await assert.rejects(createTestContainer({ config: { plugins: { paths: [bad] } } }),
    expectVgpuError(ErrorCode.Config, (e) => {
      assert.match(e.message, /'broken'/);
      assert.match(e.message, /manifest\.provides/);
      assert.equal(e.details.field, 'manifest.provides');
    }));

  const missing = join(dir, 'nope.mjs');
  await assert.rejects(createTestContainer({ config: { plugins: { paths: [missing] } } }),
    expectVgpuError(ErrorCode.Config, (e) => assert.match(e.message, /nope\.mjs/)));
});

test('a built-in with an invalid manifest is rejected naming the field', async () => {
  const p = fakePlugin('ok');
  const broken = { ...p, manifest: { ...p.manifest, version: 'latest' } };
  await assert.rejects(createTestContainer({ plugins: [broken] }),
    expectVgpuError(ErrorCode.Config, (e) => assert.match(e.message, /'ok'.*manifest\.version/)));
});

test('a start hook that never settles times out, names the plugin, and the started ones are stopped', async () => {
  const journal: string[] = [];
  const hang: VgpudPlugin = {
    manifest: { name: 'hangs', version: '1.0.0', provides: ['hangs'], requires: ['first'] },
    start: () => new Promise<void>(() => {}),
  };
  await assert.rejects(
    createTestContainer({ startTimeoutMs: 50, plugins: [hang, fakePlugin('first', { journal })] }),
    expectVgpuError(ErrorCode.PluginStart, (e) => {
      assert.match(e.message, /'hangs'/);
      assert.ok(isVgpuError(e.cause, ErrorCode.RpcTimeout));
    }),
  );
  assert.deepEqual(journal, ['start:first', 'stop:first']);
});
