// The API's layout parser: YAML is parsed in a worker thread; what it refuses comes back as the same typed error;
// an oversized text never reaches it; the worker goes away when idle and comes back for the next layout.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { LayoutParser } from '../../../plugins/api/layout-parser.js';

const ok = 'version: v1\nvgpu-configs:\n  a:\n    - {device-filter: "0x26B110DE", devices: [0], vgpu-devices: {RTX6000-Ada-8Q: 2}}\n';

describe('LayoutParser', () => {
  it('parses in the worker and returns the validated file; its refusals keep their code and message', async () => {
    const p = new LayoutParser();
    try {
      const f = await p.parse(ok);
      assert.deepEqual(f['vgpu-configs'].a?.[0]?.devices, [0]);
      assert.equal(p.workerJobs, 1);
      await assert.rejects(p.parse('version: v1\nvgpu-configs:\n  a:\n    - {devices: all, vgpu-devices: {}, extra: 1}\n'),
        (e: { code: string; message: string }) => e.code === 'VGPU_EINVAL' && /extra: unknown key/.test(e.message));
      // Too big: refused by the scan on this thread, the worker never sees it.
      await assert.rejects(p.parse(`x: [${'1,'.repeat(9000)}1]\n`), { code: 'VGPU_E2BIG' });
      assert.equal(p.workerJobs, 2);
    } finally {
      await p.close();
    }
  });

  it('stops its worker when idle and starts a new one for the next layout', async () => {
    const p = new LayoutParser(1);
    try {
      await p.parse(ok);
      const w = p.current;
      assert.ok(w !== undefined);
      await once(w, 'exit');
      assert.equal(p.current, undefined);
      await p.parse(ok);
      assert.equal(p.workerStarts, 2);
    } finally {
      await p.close();
    }
  });
});
