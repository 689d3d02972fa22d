/**
 * SIGHUP, end to end: the REAL vgpud on a process-mode simulated RTX 6000 Ada re-reads its config file and its
 * metadata file (`plugins.lifecycle.metadataDir`, here a temp dir the test writes). A valid new metadata file is
 * taken; one that would change a running vGPU's type, and one that is damaged, are refused with the running types
 * kept; the log says which, per GPU. In the config only the per-GPU policy is applied live (and only while the GPU
 * has no vGPUs); a change elsewhere is refused as "needs a restart", an unreadable file keeps the running config.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compileCatalogFile, DEFAULT_CATALOG_PATH } from '../../metadata/compile-to-file.js';
import { createHarness, GPU, type Daemon, type Harness } from './helpers/daemon-harness.js';
import { RPC_GUARD_MS } from '../helpers/guard-timeouts.js';

interface LogLine { level: string; message: string; [k: string]: unknown }
interface TypeInfo { id: number; name: string; fbBytes: string }

describe('SIGHUP reload of the config and the metadata file (real processes)', () => {
  let h: Harness;
  let d: Daemon;
  let configFile: string;
  let metaDir: string;
  let catalog: string;

  const writeConfig = (o: { policy: string; level: string } | string): void => {
    writeFileSync(configFile, typeof o === 'string' ? o : [
      `logging: {format: json, level: ${o.level}}`,
      `timeouts: {rpcMs: ${RPC_GUARD_MS}, bootloadMs: ${RPC_GUARD_MS}, scrubMs: ${RPC_GUARD_MS}}`,
      `gpus: [{bdf: "${GPU}", policy: ${o.policy}}]`,
      'plugins:',
      `  lifecycle: {metadataDir: "${metaDir}"}`,
      '  hal-ada-lovelace:',
      `    devices: [{board: rtx6000-ada, bdf: "${GPU}", mode: process, dir: "${join(h.dir, 'sim')}"}]`,
      '',
    ].join('\n'));
  };
  /** Compile the catalogue with `edit` applied into the metadata dir (what `npm run metadata:build` would write). */
  const writeMetadata = (edit: (yaml: string) => string): void => {
    const src = join(h.dir, 'catalog.yaml');
    writeFileSync(src, edit(catalog));
    compileCatalogFile(src, metaDir);
  };
  /** SIGHUP, then the daemon's JSON log lines up to the end of the metadata reload (one line per GPU). */
  const hup = async (): Promise<LogLine[]> => {
    const from = d.out().length;
    d.proc.kill('SIGHUP');
    await d.waitFor(/"message":"vGPU metadata reload(ed| refused)[^"]*"/, from);
    return d.out().slice(from).split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
  };
  const types = async (): Promise<TypeInfo[]> => {
    const r = await h.ctl('types', '--gpu', GPU, '--all', '--json');
    assert.equal(r.code, 0, r.err);
    return (JSON.parse(r.out) as { types: TypeInfo[] }).types;
  };
  const policy = async (): Promise<string> => (JSON.parse((await h.ctl('gpus', '--json')).out) as { gpus: { policy: string }[] }).gpus[0]!.policy;

  before(async () => {
    h = await createHarness('vgpud-e2e-hup-');
    configFile = join(h.dir, 'reload.yaml');
    metaDir = join(h.dir, 'meta');
    mkdirSync(metaDir);
    catalog = readFileSync(DEFAULT_CATALOG_PATH, 'utf8');
    writeMetadata((y) => y);
    writeConfig({ policy: 'homogeneous', level: 'info' });
    d = await h.startWith(['--config', configFile]);
  });
  after(async () => { await h?.close(); });

  it('metadata: a valid new file is taken; one changing a running type and a damaged one are refused, types kept', async () => {
    const c = await h.ctl('create', '--gpu', GPU, '--type', 'RTX6000-Ada-24Q', '--json');
    assert.equal(c.code, 0, c.err);
    const before = await types();
    assert.ok(before.some((t) => t.name === 'NVIDIA RTX6000-Ada-2B'));

    // Valid: a type nobody uses is dropped from the catalogue.
    assert.match(catalog, /^ *- \{ id: 9021, name: "NVIDIA RTX6000-Ada-2B".*\n/m, 'the catalogue line to drop is there');
    writeMetadata((y) => y.replace(/^ *- \{ id: 9021, name: "NVIDIA RTX6000-Ada-2B".*\n/m, ''));
    const ok = await hup();
    assert.ok(ok.some((l) => l.level === 'info' && l.message === 'vGPU metadata reloaded' && l.gpu === GPU), JSON.stringify(ok));
    const taken = await types();
    assert.deepEqual(taken.map((t) => t.name), before.map((t) => t.name).filter((n) => n !== 'NVIDIA RTX6000-Ada-2B'), 'the new types are in use');

    // Refused: the running vGPU's type (24Q) would get another GSP heap.
    const changed = catalog.replace(/name: "NVIDIA RTX6000-Ada-24Q", heapMiB: 128/, 'name: "NVIDIA RTX6000-Ada-24Q", heapMiB: 64');
    assert.notEqual(changed, catalog, 'the catalogue line to change is there');
    writeMetadata((y) => y.replace(/name: "NVIDIA RTX6000-Ada-24Q", heapMiB: 128/, 'name: "NVIDIA RTX6000-Ada-24Q", heapMiB: 64')
      .replace(/^ *- \{ id: 9021, name: "NVIDIA RTX6000-Ada-2B".*\n/m, ''));
    const blocked = await hup();
    const refusal = blocked.find((l) => l.message === 'vGPU metadata reload refused; the GPU keeps its types');
    assert.ok(refusal !== undefined && refusal.level === 'warn' && refusal.gpu === GPU, JSON.stringify(blocked));
    assert.match(JSON.stringify(refusal.error), /type 949 \(NVIDIA RTX6000-Ada-24Q\) is selected on VF 0 and its GSP heap changes/, 'the log names the type that blocked it');
    assert.deepEqual(await types(), taken, 'the running types are kept');

    // Refused: a damaged file.
    const file = join(metaDir, 'vgpu-570.144.bin');
    const bytes = readFileSync(file);
    bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(file, bytes);
    const damaged = await hup();
    const bad = damaged.find((l) => l.level === 'warn' && l.message === 'vGPU metadata reload refused; the GPU keeps its types');
    assert.ok(bad !== undefined, JSON.stringify(damaged));
    assert.doesNotMatch(JSON.stringify(bad.error), /is selected on VF/, 'refused for the damage, not for a type');
    assert.deepEqual(await types(), taken);
    assert.equal((await h.ctl('list', '--json')).out.match(/"state": "ready"/g)?.length, 1, 'the vGPU runs on');
  });

  it('config: the policy is applied only without vGPUs, other sections need a restart, a broken file keeps the running config', async () => {
    writeConfig({ policy: 'heterogeneous', level: 'debug' });
    const refused = await hup();
    const why = refused.filter((l) => l.message === 'config reload: change refused').map((l) => `${String(l.what)}: ${String(l.why)}`);
    assert.ok(why.some((w) => /^logging: changing 'logging' needs a restart/.test(w)), why.join('\n'));
    assert.ok(why.some((w) => w.startsWith(`gpus ${GPU} policy:`)), 'the policy cannot change under a running vGPU');
    assert.equal(await policy(), 'homogeneous');

    writeConfig('logging: [this is: not, valid');
    const broken = await hup();
    assert.ok(broken.some((l) => l.level === 'error' && l.message === 'config reload failed; keeping the running config'), JSON.stringify(broken));

    for (const v of (JSON.parse((await h.ctl('list', '--json')).out) as { vgpus: { id: string }[] }).vgpus) {
      assert.equal((await h.ctl('destroy', v.id)).code, 0);
    }
    writeConfig({ policy: 'heterogeneous', level: 'info' });
    const applied = await hup();
    const done = applied.find((l) => l.message === 'config reloaded');
    assert.deepEqual(done?.applied, [`gpus ${GPU} policy=heterogeneous`], JSON.stringify(applied));
    assert.equal(await policy(), 'heterogeneous');
  });
});
