import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiPlugin } from '../../../plugins/api/api-plugin.js';
import type { HttpServer } from '../../../plugins/api/http-server.js';
import { createMetricsPlugin } from '../../../plugins/metrics/metrics-plugin.js';
import { TOKENS } from '../../../core/tokens.js';
import { createTestContainer } from '../../helpers/test-container.js';
import { FAKE_GPU } from './fake-vgpu-service.js';
import { fakeServicePlugin } from './fake-service-plugin.js';

describe('api + metrics plugins in a container', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vgpud-plugin-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses to wire the api without a vgpu-service provider', async () => {
    await assert.rejects(createTestContainer({ plugins: [createApiPlugin()] }), { code: 'VGPU_EPLUGIN_MISSING' });
  });

  it('serves on a 0660 socket, exposes /metrics through HttpServer, and removes the socket on stop', async () => {
    const socket = join(dir, 'api.sock');
    const fake = fakeServicePlugin();
    const tc = await createTestContainer({
      plugins: [createMetricsPlugin(), createApiPlugin(), fake.plugin],
      config: { api: { socket, stateDir: join(dir, 'state') } },
    });
    assert.equal(statSync(socket).mode & 0o777, 0o660);
    const v = await fake.service().create({ gpu: FAKE_GPU, type: '8Q' });
    fake.service().vgpus.get(v.id)!.lastScrub = { at: 1_700_000_000_000, bytes: 1n, durationMs: 1, pattern: 0, verified: false, reason: 'create' };
    const http = tc.container.get<HttpServer>(TOKENS.HttpServer);
    const m = await http.app.inject({ url: '/metrics' });
    assert.equal(m.statusCode, 200);
    // The fake 8Q guest: its 8 GiB profile less the 128 MiB heap inside it.
    assert.match(m.body, new RegExp(`vgpud_vgpu_fb_bytes\\{vgpu="${v.id}",gpu="${FAKE_GPU}"\\} ${(8n << 30n) - (128n << 20n)}`));
    assert.match(m.body, new RegExp(`vgpud_vgpu_last_scrub_verified\\{vgpu="${v.id}",gpu="${FAKE_GPU}"\\} 0`));
    assert.match(m.body, /vgpud_vgpu_transitions_total\{gpu="0000:41:00.0",to="ready"\} 1/);
    assert.match(m.body, /vgpud_gpu_vgpus\{gpu="0000:41:00.0",state="ready",type="NVIDIA RTX6000-Ada-8Q"\} 1/);
    await tc.stop();
    assert.equal(existsSync(socket), false);
  });
});
