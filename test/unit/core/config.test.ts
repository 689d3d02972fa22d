import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, isVgpuError } from '../../../core/contracts/exceptions.js';
import { loadConfig } from '../../../core/config/load-config.js';

function configError(input: Record<string, unknown> | string): string {
  try {
    loadConfig(input);
  } catch (e) {
    assert.ok(isVgpuError(e, ErrorCode.Config), String(e));
    return e.message;
  }
  assert.fail('config was accepted');
}

test('an empty config gets every default and is frozen', () => {
  const c = loadConfig({});
  assert.equal(c.logging.level, 'info');
  assert.deepEqual(c.gpus, []);
  assert.deepEqual(c.plugins.enabled, ['*']);
  assert.deepEqual(c.sim.devices, []);
  assert.ok(c.timeouts.rpcMs > 0);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.plugins.enabled) && Object.isFrozen(c.timeouts));
  assert.throws(() => { (c.logging as { level: string }).level = 'debug'; }, TypeError);
});

test('a bad value names its key path, the expected values and what it got', () => {
  const msg = configError({ gpus: [{ bdf: '0000:41:00.0', policy: 'homogeneous' }, { policy: 'mixed' }] });
  assert.match(msg, /gpus\.1\.policy/);
  assert.match(msg, /homogeneous/);
  assert.match(msg, /heterogeneous/);
  assert.match(msg, /"mixed"/);
});

test('misspelt and unknown keys are named, not ignored', () => {
  assert.match(configError({ logging: { levle: 'debug' } }), /logging\.levle: unknown key/);
  assert.match(configError({ timeout: {} }), /timeout: unknown key/);
  assert.match(configError({ timeouts: { rpcMs: 0 } }), /timeouts\.rpcMs/);
  assert.match(configError({ gpus: [{ bdf: '41:00.0' }] }), /gpus\.0\.bdf.*PCI address/);
  assert.match(configError({ sim: { devices: [{ bdf: '0000:41:00.0' }] } }), /sim\.devices\.0\.board/);
});

test('per-plugin sections pass through unvalidated', () => {
  const c = loadConfig({ plugins: { enabled: ['scrub'], scrub: { chunkMiB: 64 } } });
  assert.deepEqual((c.plugins as Record<string, unknown>).scrub, { chunkMiB: 64 });
});

test('YAML and JSON files are read; syntax errors and missing files are config errors', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const yml = join(dir, 'vgpud.yaml');
  writeFileSync(yml, 'logging:\n  level: debug\ngpus:\n  - bdf: "0000:41:00.0"\n    policy: heterogeneous\nsim:\n  devices:\n    - board: rtx-6000-ada\n');
  const c = loadConfig(yml);
  assert.equal(c.logging.level, 'debug');
  assert.equal(c.gpus[0]?.policy, 'heterogeneous');
  assert.equal(c.sim.devices[0]?.board, 'rtx-6000-ada');

  const json = join(dir, 'vgpud.json');
  writeFileSync(json, JSON.stringify({ api: { socket: '/tmp/x.sock' } }));
  assert.equal(loadConfig(json).api.socket, '/tmp/x.sock');

  const badValue = join(dir, 'bad.yaml');
  writeFileSync(badValue, 'gpus:\n  - policy: mixed\n');
  const msg = configError(badValue);
  assert.match(msg, /bad\.yaml/);
  assert.match(msg, /gpus\.0\.policy/);

  const badSyntax = join(dir, 'broken.json');
  writeFileSync(badSyntax, '{ "logging": ');
  assert.match(configError(badSyntax), /broken\.json is not valid JSON/);
  assert.match(configError(join(dir, 'absent.yaml')), /cannot read config file/);
});

test('a mistake repeated across entries is reported once, with its count and the first places', () => {
  const gpus = Array.from({ length: 6 }, (_, i) => ({ bdf: `0000:4${i}:00.0`, polcy: 'heterogeneous' }));
  const msg = configError({ gpus, logging: { level: 'loud' } });
  assert.equal(msg.match(/polcy/g)?.length, 1, msg);
  assert.match(msg, /polcy: unknown key \(6 times, at gpus\.0, gpus\.1, gpus\.2 and 3 more\)/);
  // A different problem keeps its own line, with its place and value.
  assert.match(msg, /logging\.level: .*got "loud"/);
});
