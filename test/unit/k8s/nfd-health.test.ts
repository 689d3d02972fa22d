// The NFD local feature file and the /healthz endpoint of the 'k8s' plugin.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TOKENS } from '../../../core/tokens.js';
import { createK8sPlugin } from '../../../plugins/k8s/k8s-plugin.js';
import { labelSafe } from '../../../plugins/k8s/nfd-features.js';
import { fakeServicePlugin } from '../../helpers/k8s/fake-service-plugin.js';
import type { FakeVgpuService } from '../../helpers/k8s/fake-vgpu-service.js';
import { createTestContainer } from '../../helpers/test-container.js';

const A = '0000:41:00.0';
const B = '0000:61:00.0';

test('the feature file names the boards, GPU count and creatable types; rewritten atomically only when it changes', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-nfd-'));
  const file = join(dir, 'features.d', 'vgpud');
  const plugin = createK8sPlugin();
  const tc = await createTestContainer({
    plugins: [fakeServicePlugin([{ bdf: A }, { bdf: B, name: 'NVIDIA L40S' }]), plugin],
    config: { plugins: { k8s: { nfd: { featureFile: file }, podResources: { enabled: false } } } },
  });
  t.after(async () => { await tc.stop(); rmSync(dir, { recursive: true, force: true }); });
  const nfd = plugin.handle.nfd()!;
  assert.deepEqual(readFileSync(file, 'utf8').split('\n').filter((l) => !l.startsWith('#')), [
    'nvidia.com/vgpu.present=true',
    'nvidia.com/vgpu.gpu.count=2',
    'nvidia.com/vgpu.product.NVIDIA-L40S=true',
    'nvidia.com/vgpu.product.NVIDIA-RTX-6000-Ada-Generation=true',
    'nvidia.com/vgpu.type.NVIDIA_RTX6000-Ada-1Q=true',
    'nvidia.com/vgpu.type.NVIDIA_RTX6000-Ada-24Q=true',
    'nvidia.com/vgpu.type.NVIDIA_RTX6000-Ada-8Q=true',
    '',
  ]);
  const svc = tc.container.get<FakeVgpuService>(TOKENS.VgpuManager);
  const writes = nfd.writes;
  await svc.create({ gpu: A, type: 949 }); // the fake still has room: nothing the file says changes
  await nfd.settled();
  assert.equal(nfd.writes, writes, 'same content, no write');
  svc.setGpuState(A, 'lost');
  svc.setGpuState(B, 'lost');
  await nfd.settled();
  assert.equal(nfd.writes, writes + 1);
  assert.ok(!readFileSync(file, 'utf8').includes('vgpu.type.'), 'no GPU ready: nothing creatable');
  assert.deepEqual(readdirSync(join(dir, 'features.d')), ['vgpud'], 'no temp file left');
});

test('label-safe board names', () => {
  assert.equal(labelSafe('NVIDIA RTX 6000 Ada Generation'), 'NVIDIA-RTX-6000-Ada-Generation');
  assert.equal(labelSafe(' (weird) name/with:stuff '), 'weird-name-with-stuff');
  assert.equal(labelSafe('x'.repeat(80)).length, 63);
});

test('GET /healthz answers 200 with what the agent knows; other paths 404', async (t) => {
  const plugin = createK8sPlugin();
  const tc = await createTestContainer({
    plugins: [fakeServicePlugin([{ bdf: A }]), plugin],
    config: { plugins: { k8s: { nfd: { enabled: false }, health: { enabled: true, host: '127.0.0.1', port: 0 } } } },
  });
  t.after(() => tc.stop());
  const port = plugin.handle.healthPort()!;
  const fetchIt = (path: string): Promise<{ code: number; body: string }> => new Promise((res, rej) => {
    get({ host: '127.0.0.1', port, path }, (r) => {
      let b = '';
      r.on('data', (c: Buffer) => { b += c.toString(); });
      r.on('end', () => res({ code: r.statusCode ?? 0, body: b }));
    }).on('error', rej);
  });
  const ok = await fetchIt('/healthz');
  assert.equal(ok.code, 200);
  assert.deepEqual(JSON.parse(ok.body), { status: 'ok', gpus: 1, gpusReady: 1 });
  assert.equal((await fetchIt('/metrics')).code, 404);
});
