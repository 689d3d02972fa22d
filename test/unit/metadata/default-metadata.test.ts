/** ensureDefaultMetadata builds the daemon's default file when missing or stale and leaves a good one alone. */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseMetadata, typesFor } from '../../../core/metadata/metadata-reader.js';
import { DEFAULT_CATALOG_PATH, ensureDefaultMetadata } from '../../../metadata/default-metadata.js';

const work = mkdtempSync(join(tmpdir(), 'vgpud-md-default-'));
after(() => rmSync(work, { recursive: true, force: true }));

describe('ensureDefaultMetadata', () => {
  it('builds a missing file that the daemon can load for an L40', () => {
    const outDir = join(work, 'out');
    const path = ensureDefaultMetadata({ outDir });
    assert.equal(path, join(outDir, 'vgpu-570.144.bin'));
    const f = parseMetadata(readFileSync(path), { expectedGspVersion: '570.144', pfDeviceId: 0x26b5 });
    assert.ok(typesFor(f, 0x26b5).some((t) => t.id === 869));
  });
  it('leaves an up-to-date file untouched and repairs a damaged one', () => {
    const outDir = join(work, 'out2');
    const path = ensureDefaultMetadata({ outDir });
    const good = readFileSync(path);
    const inode = statSync(path).ino;
    assert.equal(ensureDefaultMetadata({ outDir }), path);
    assert.equal(statSync(path).ino, inode, 'rewrote an identical file');
    writeFileSync(path, good.subarray(0, 1000));
    ensureDefaultMetadata({ outDir });
    assert.ok(readFileSync(path).equals(good));
  });
  it('rebuilds when the catalogue changed', () => {
    const outDir = join(work, 'out3');
    const src = join(work, 'cat.yaml');
    writeFileSync(src, readFileSync(DEFAULT_CATALOG_PATH, 'utf8'));
    const path = ensureDefaultMetadata({ outDir, sourcePath: src });
    const before = parseMetadata(readFileSync(path));
    writeFileSync(src, readFileSync(DEFAULT_CATALOG_PATH, 'utf8').replace('id: 941,', 'id: 1941,'));
    ensureDefaultMetadata({ outDir, sourcePath: src });
    const after_ = parseMetadata(readFileSync(path));
    assert.equal(typesFor(before, 0x26b1)[0]!.id, 941);
    assert.equal(typesFor(after_, 0x26b1)[0]!.id, 1941);
  });
});
