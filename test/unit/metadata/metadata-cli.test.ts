/**
 * The real build and dump scripts, run as child processes: the build is byte-identical run to run, the dump shows
 * the table and fails with the typed error (offset + field) and exit code 1 on a bad file.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { metadataCrc32 } from '../../../core/metadata/metadata-format.js';

const root = resolve(import.meta.dirname, '../../..');
const work = mkdtempSync(join(tmpdir(), 'vgpud-md-cli-'));
after(() => rmSync(work, { recursive: true, force: true }));

function run(script: string, args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', script, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('metadata:build', () => {
  it('writes the same bytes on two separate runs and prints path, size and CRC', () => {
    const outs = ['a', 'b'].map((d) => join(work, d));
    const runs = outs.map((out) => run('metadata/build-metadata.ts', ['--out', out]));
    for (const r of runs) assert.equal(r.code, 0, r.stderr);
    const files = outs.map((out) => readFileSync(join(out, 'vgpu-570.144.bin')));
    assert.ok(files[0]!.equals(files[1]!), 'two builds differ');
    const crc = metadataCrc32(files[0]!.subarray(16));
    assert.equal(files[0]!.readUInt32LE(8), crc);
    assert.ok(runs[0]!.stdout.includes(join(outs[0]!, 'vgpu-570.144.bin')));
    assert.ok(runs[0]!.stdout.includes(`size ${files[0]!.byteLength} bytes`));
    assert.ok(runs[0]!.stdout.includes(`crc32 0x${crc.toString(16).padStart(8, '0')}`), runs[0]!.stdout);
  });
  it('fails with exit code 1 and the YAML key on a bad catalogue', () => {
    const src = join(work, 'bad.yaml');
    writeFileSync(src, readFileSync(join(root, 'metadata/ada.yaml'), 'utf8').replace('maxInstance: 32', 'maxInstance: 40'));
    const r = run('metadata/build-metadata.ts', ['--source', src, '--out', join(work, 'c')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /VGPU_EMETADATA.*boards\[0\]\.types\[0\]\.maxInstance/);
  });
});

describe('metadata:dump', () => {
  it('prints the header and a table per blob; --json gives the same facts', () => {
    const out = join(work, 'd');
    assert.equal(run('metadata/build-metadata.ts', ['--out', out]).code, 0);
    const path = join(out, 'vgpu-570.144.bin');
    const text = run('metadata/dump-metadata.ts', [path]);
    assert.equal(text.code, 0, text.stderr);
    // Every generation's boards in one file: Ada's 6 and Hopper's 6.
    assert.match(text.stdout, /vGPU 18\.1, GSP 570\.144, 12 blob\(s\)/);
    assert.match(text.stdout, /blob 6: device 0x2331, 8 types/);
    assert.match(text.stdout, /blob 2: device 0x26b5, 29 types/);
    // Profile 1024 MiB next to the guest's 960 MiB, heap, BAR1, max, heads and resolution from the GSP record.
    assert.match(text.stdout, /869 +NVIDIA L40-1B +1024 +960 +32 +256 +32 +4 +5120x2880 +no/);
    const recs = run('metadata/dump-metadata.ts', [path, '--records']);
    assert.equal(recs.code, 0, recs.stderr);
    assert.match(recs.stdout, /\+ 384 +profileSize +1073741824 \(1024 MiB\)/);
    const json = run('metadata/dump-metadata.ts', [path, '--json']);
    const doc = JSON.parse(json.stdout);
    assert.equal(doc.gspVersion, '570.144');
    const l40 = doc.blobs.find((b: { deviceId: number }) => b.deviceId === 0x26b5);
    assert.equal(l40.types.find((t: { id: number }) => t.id === 869).fbLength, String(960 * 2 ** 20));
    assert.equal(l40.gspRecords.find((t: { id: number }) => t.id === 869).profileSize, String(1 << 30));
  });
  it('exits 1 with the offset and field on a bad file', () => {
    const out = join(work, 'd');
    const bytes = readFileSync(join(out, 'vgpu-570.144.bin'));
    bytes[3] = 0x58; // identifier byte: not covered by the CRC
    const bad = join(work, 'bad.bin');
    writeFileSync(bad, bytes);
    const r = run('metadata/dump-metadata.ts', [bad]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /VGPU_EMETADATA: metadata: identifier at byte offset 3 /);
    const j = run('metadata/dump-metadata.ts', [bad, '--json']);
    assert.equal(j.code, 1);
    assert.deepEqual(JSON.parse(j.stdout).error.details, { offset: 3, field: 'identifier' });
  });
});
