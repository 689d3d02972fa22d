/**
 * Layouts in NVIDIA vgpu-device-manager's format on the simulated RTX 6000 Ada (PCI id 0x26B110DE), end to end
 * with the REAL vgpud and vgpuctl (issue 12's acceptance): a file with device-filter entries for several boards
 * creates exactly what its 0x26B1 entry asks and `assert` passes; the same with `devices: [0]` and with several
 * entries in one config; a config for other boards changes nothing and says so. The file is written from the
 * format (docs/reference/vgpu-device-manager-layouts.md), in NVIDIA's style.
 */
import 'reflect-metadata';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHarness, type Harness } from './helpers/daemon-harness.js';
import { assertConsistent } from './helpers/device-consistency.js';

const LAYOUT = `version: v1
vgpu-configs:
  several-boards:
    - device-filter: "0x20B510DE"
      devices: all
      vgpu-devices:
        A100D-40C: 2
    - device-filter: "0x26B110DE"
      devices: all
      vgpu-devices:
        RTX6000-Ada-8Q: 3
    - device-filter: "0x26B510DE"
      devices: all
      vgpu-devices:
        L40-24Q: 2
    - device-filter: ["0x26B910DE", "0x26BA10DE"]
      devices: all
      vgpu-devices:
        L40S-24Q: 2
  first-gpu:
    - devices: [0]
      vgpu-devices:
        RTX6000-Ada-24Q: 2
  several-entries:
    - device-filter: "0x26B910DE"
      devices: all
      vgpu-devices:
        L40S-4Q: 4
    - device-filter: "0x26B110DE"
      devices: [0]
      vgpu-devices:
        RTX6000-Ada-4Q: 5
    - devices: [3]
      vgpu-devices:
        RTX6000-Ada-1Q: 1
  other-boards:
    - device-filter: "0x233010DE"
      devices: all
      vgpu-devices:
        H100XM-40C: 2
`;

describe('NVIDIA-format layouts on the simulated RTX 6000 Ada (real processes)', () => {
  let h: Harness;
  let base = 0;
  let file = '';
  const types = async (what: string): Promise<string[]> => (await assertConsistent(h, base, what)).map((v) => v.typeName.replace(/^NVIDIA /, '')).sort();

  before(async () => {
    h = await createHarness('vgpud-e2e-layouts-');
    await h.start();
    base = await h.sim.controls.rmClients();
    file = join(h.dir, 'vgpu-config.yaml');
    writeFileSync(file, LAYOUT);
  });
  after(async () => { await h?.close(); });

  for (const [config, expected] of [
    ['several-boards', Array(3).fill('RTX6000-Ada-8Q')],
    ['first-gpu', Array(2).fill('RTX6000-Ada-24Q')],
    ['several-entries', Array(5).fill('RTX6000-Ada-4Q')],
  ] as const) {
    it(`apply -c ${config} creates exactly what the entry for this GPU asks, then assert passes`, async () => {
      assert.equal((await h.ctl('assert', file, '-c', config)).code, 1);
      const a = await h.ctl('apply', file, '-c', config);
      assert.equal(a.code, 0, a.err);
      assert.deepEqual(await types(`after apply -c ${config}`), expected);
      const ok = await h.ctl('assert', file, '-c', config);
      assert.equal(ok.code, 0, ok.out + ok.err);
      assert.match(ok.out, new RegExp(`layout '${config}' is applied`));
    });
  }

  it('an index no GPU has is a note, not an error', async () => {
    const dry = await h.ctl('apply', file, '-c', 'several-entries', '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.match(dry.out, /note: entry 3: GPU index 3 not on this host/);
  });

  it('a config for other boards changes nothing, says why, and exits 0', async () => {
    const before = await types('before other-boards');
    const r = await h.ctl('apply', file, '-c', 'other-boards');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /note: config 'other-boards' selects none of this host's GPUs \(0000:41:00\.0 \(index 0, 0x26B110DE\)\): nothing to do/);
    assert.deepEqual(await types('after other-boards'), before);
  });

  it('a layout with the same mistake in many entries is refused with it reported once, counted', async () => {
    const bad = join(h.dir, 'bad.yaml');
    writeFileSync(bad, `version: v1\nvgpu-configs:\n  c:\n${Array.from({ length: 12 }, (_, i) => `    - {device-filtr: "0x26B110DE", devices: [${i}], vgpu-devices: {}}`).join('\n')}\n`);
    const r = await h.ctl('apply', bad, '-c', 'c');
    assert.equal(r.code, 3);
    assert.equal(r.err.match(/device-filtr/g)?.length, 1, r.err);
    assert.match(r.err, /device-filtr: unknown key \(12 times, at vgpu-configs\.c\.0, vgpu-configs\.c\.1, vgpu-configs\.c\.2 and 9 more\)/);
  });
});
