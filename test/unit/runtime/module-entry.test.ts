// One way to find our own files from the sources (tsx) and from dist/ (compiled): sibling modules take the caller's
// extension, a .ts child gets tsx's loader by absolute URL (so any working directory works), and data files are
// found at the package root, never next to the compiled module.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { nodeArgsFor, runningFromSource, siblingModule } from '../../../core/runtime/module-entry.js';
import { assetPath, packageRoot } from '../../../core/runtime/package-root.js';

describe('core/runtime: running compiled or from source', () => {
  it('a sibling module has the caller\'s extension', () => {
    const src = pathToFileURL('/opt/vgpud/hal/ada-lovelace/sim/start-sim-device.ts').href;
    const js = pathToFileURL('/opt/vgpud/dist/hal/ada-lovelace/sim/start-sim-device.js').href;
    assert.equal(siblingModule(src, './vgpu-sim'), '/opt/vgpud/hal/ada-lovelace/sim/vgpu-sim.ts');
    assert.equal(siblingModule(js, './vgpu-sim'), '/opt/vgpud/dist/hal/ada-lovelace/sim/vgpu-sim.js');
    assert.equal(siblingModule(js, '../../../native/index'), '/opt/vgpud/dist/native/index.js');
    assert.equal(runningFromSource(src), true);
    assert.equal(runningFromSource(js), false);
    assert.equal(runningFromSource(import.meta.url), true, 'this test runs under tsx');
  });

  it('a .ts child is started with tsx\'s loader as an absolute URL; a .js child with nothing', () => {
    const args = nodeArgsFor('/opt/vgpud/hal/x/vgpu-sim.ts');
    assert.equal(args.length, 3);
    assert.equal(args[0], '--import');
    assert.match(args[1]!, /^file:\/\/.*\/node_modules\/tsx\//);
    assert.ok(existsSync(new URL(args[1]!)), 'the loader file exists');
    assert.equal(args[2], '/opt/vgpud/hal/x/vgpu-sim.ts');
    assert.deepEqual(nodeArgsFor('/opt/vgpud/dist/hal/x/vgpu-sim.js'), ['/opt/vgpud/dist/hal/x/vgpu-sim.js']);
  });

  it('data files are found at the package root', () => {
    assert.ok(existsSync(`${packageRoot()}/package.json`));
    assert.ok(existsSync(assetPath('metadata', 'ada.yaml')), 'the default vGPU catalogue');
    assert.ok(existsSync(assetPath('native', 'binding.gyp')), 'the addon folder node-gyp-build searches');
  });
});
