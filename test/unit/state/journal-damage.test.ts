/**
 * The state journal against damaged records, planted links and files, a state dir others can write, and garbage
 * sequence files (issue 16 defects 5 and 7): nothing it did not write is followed or echoed, damage is reported in
 * its own words, and a damaged sequence never hands out a number that is still in use.
 */
import { afterEach, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import type { JournalVgpu } from '../../../core/contracts/vgpu-journal.js';
import { MemoryLogger } from '../../../core/logging/memory-logger.js';
import { DAMAGED_DIR, FileVgpuJournal, SEQ_REBUILD_MARGIN } from '../../../plugins/state/file-vgpu-journal.js';
import { tempPathFor } from '../../../plugins/state/atomic-write.js';

const GPU = '0000:41:00.0';
/** A shadow-like line; its first characters (what a JSON parser quotes) are the marker looked for in the log. */
const SECRET = 'zq9secret:$6$not-for-the-log$abc:19000:0:99999:7:::';

const rec = (id: string, extra: Partial<JournalVgpu> = {}): JournalVgpu => ({
  id, gpu: GPU, vf: 3, typeId: 949, typeName: 'NVIDIA RTX6000-Ada-24Q', state: 'ready', placementId: 12,
  autoSelected: true, uuid: '0123456789abcdef0123456789abcdef', chids: { offset: 64, count: 64 },
  guestFb: { offset: 1n << 40n, size: 24n << 30n }, heap: { offset: 1n << 20n, size: 128n << 20n },
  clientHandle: 0xc2000005, client: { hClient: 0xc2000005, hDevice: 0xde000005, hSubdevice: 0x5d000005 }, pluginTask: true,
  createdAt: 1000, updatedAt: 1000, ...extra,
});

/** Every line the logger got, message and meta, as one string (to look for leaked file contents). */
const logText = (l: MemoryLogger): string => l.lines.map((x) => `${x.message} ${JSON.stringify(x.meta ?? {})}`).join('\n');

describe('state journal: damage, planted files, permissions', () => {
  let dir: string;
  let outside: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'vgpud-jdamage-'));
    outside = mkdtempSync(join(tmpdir(), 'vgpud-jdamage-outside-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  it('a truncated vGPU record is reported (never silently dropped) with what can still be read of it', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    await j.putVgpu(rec('vgpu-7'));
    const file = join(dir, 'vgpu-vgpu-7.json');
    truncateSync(file, Math.floor(statSync(file).size * 0.6));
    const logger = new MemoryLogger({ level: 'debug' });
    const again = new FileVgpuJournal(dir, logger);
    await again.open();
    assert.deepEqual(again.vgpus(), [], 'not taken as a good record');
    const [d] = again.damaged();
    assert.equal(d?.file, 'vgpu-vgpu-7.json');
    assert.equal(d?.kind, 'vgpu');
    assert.equal(d?.unsafe, false);
    assert.match(d?.reason ?? '', /not valid JSON/);
    // The head of the file survives a truncation: enough to know which VF to keep out of service.
    assert.equal(d?.salvaged?.id, 'vgpu-7');
    assert.equal(d?.salvaged?.gpu, GPU);
    assert.equal(d?.salvaged?.vf, 3);
    assert.equal(d?.salvaged?.typeId, 949);
    assert.equal(d?.salvaged?.placementId, 12);
    assert.ok(logger.lines.some((l) => l.level === 'error' && l.meta?.['file'] === 'vgpu-vgpu-7.json'), 'logged as an error, with the file name');
    assert.ok(existsSync(file), 'left in place for the lifecycle to quarantine its VF first');
  });

  it('never puts a bad record\'s bytes into the log, nor into the reported reason', async () => {
    writeFileSync(join(dir, 'vgpu-vgpu-1.json'), `${SECRET}\n`, { mode: 0o600 });
    writeFileSync(join(dir, 'gpu-0000:41:00.0.json'), `{"version":2,"bdf":"${SECRET}"`, { mode: 0o600 });
    const logger = new MemoryLogger({ level: 'debug' });
    const j = new FileVgpuJournal(dir, logger);
    await j.open();
    assert.equal(j.damaged().length, 2);
    assert.doesNotMatch(logText(logger), /zq9secret|not-for-the-log/);
    assert.doesNotMatch(JSON.stringify(j.damaged().map((d) => d.reason)), /zq9secret|not-for-the-log/);
  });

  it('a vgpu-*.json symlink to a secret file is refused unread and set aside; the target is untouched', async () => {
    const secret = join(outside, 'shadow');
    writeFileSync(secret, `${SECRET}\n`, { mode: 0o600 });
    symlinkSync(secret, join(dir, 'vgpu-evil.json'));
    const logger = new MemoryLogger({ level: 'debug' });
    const j = new FileVgpuJournal(dir, logger);
    await j.open();
    const [d] = j.damaged();
    assert.equal(d?.unsafe, true);
    assert.match(d?.reason ?? '', /symbolic link/);
    assert.equal(d?.salvaged, undefined, 'nothing read from it');
    assert.doesNotMatch(logText(logger), /zq9secret|not-for-the-log/);
    assert.equal(existsSync(join(dir, 'vgpu-evil.json')), false, 'moved out of the journal');
    assert.ok(readdirSync(join(dir, DAMAGED_DIR)).some((f) => f.startsWith('vgpu-evil.json.')));
    assert.equal(readFileSync(secret, 'utf8'), `${SECRET}\n`);
  });

  it('a FIFO or a hard link to another file under a record name is refused without blocking or reading it', async () => {
    const other = join(outside, 'other');
    writeFileSync(other, `${SECRET}\n`, { mode: 0o600 });
    const { linkSync } = await import('node:fs');
    linkSync(other, join(dir, 'vgpu-hard.json'));
    const { execFileSync } = await import('node:child_process');
    execFileSync('mkfifo', [join(dir, 'seq-vgpu-id.json')]);
    const j = new FileVgpuJournal(dir);
    await j.open();
    const byFile = new Map(j.damaged().map((d) => [d.file, d]));
    assert.match(byFile.get('vgpu-hard.json')?.reason ?? '', /hard link/);
    assert.match(byFile.get('seq-vgpu-id.json')?.reason ?? '', /not a regular file/);
    assert.equal(readFileSync(other, 'utf8'), `${SECRET}\n`);
  });

  it('a temp-file symlink planted for the next write is removed, never written through', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    const target = join(outside, 'target');
    writeFileSync(target, 'precious\n');
    symlinkSync(target, tempPathFor(join(dir, 'vgpu-vgpu-1.json')));
    await j.putVgpu(rec('vgpu-1'));
    assert.equal(readFileSync(target, 'utf8'), 'precious\n');
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.vgpus(), [rec('vgpu-1')]);
    assert.deepEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
  });

  it('refuses a state dir others can write, or another user owns, naming the command that fixes it', async () => {
    chmodSync(dir, 0o777);
    await assert.rejects(new FileVgpuJournal(dir).open(), (e) => isVgpuError(e, 'VGPU_ECONFIG') && /writable by/.test(e.message) && e.hint.includes(`chmod 0700 ${dir}`));
    chmodSync(dir, 0o750);
    await new FileVgpuJournal(dir).open(); // readable by the group is fine: only writers can plant files
    if (process.geteuid?.() === 0) {
      chownSync(dir, 4242, 4242);
      await assert.rejects(new FileVgpuJournal(dir).open(), (e) => isVgpuError(e, 'VGPU_ECONFIG') && /uid 4242/.test(e.message) && /chown 0/.test(e.hint));
    }
  });

  it('creates a missing state dir 0700', async () => {
    const fresh = join(dir, 'a', 'state');
    await new FileVgpuJournal(fresh).open();
    assert.equal(statSync(fresh).mode & 0o777, 0o700);
  });

  it('garbage in a sequence file restarts it above the highest mark any GPU record carries, never below', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    let last = 0;
    for (let i = 0; i < 5; i++) last = await j.reserve('vgpu-id', 64);
    await j.reserve('rm-handle', 64);
    await j.putGpu({ bdf: GPU, managerClients: [], selections: [], updatedAt: 1 });
    writeFileSync(join(dir, 'seq-vgpu-id.json'), 'garbage\n');
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.rebuiltSequences().map((r) => r.seq), ['vgpu-id']);
    assert.ok((await again.reserve('vgpu-id', 1)) >= last + 64, 'no number of an earlier block comes again');
    assert.ok(again.damaged().some((d) => d.file === 'seq-vgpu-id.json' && d.kind === 'sequence'));
  });

  it('a sequence file that parses but went backwards (restored from an old copy) is moved up to the GPU record\'s mark', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    for (let i = 0; i < 3; i++) await j.reserve('rm-handle', 64);
    await j.putGpu({ bdf: GPU, managerClients: [], selections: [], updatedAt: 1 });
    writeFileSync(join(dir, 'seq-rm-handle.json'), '{"version":2,"next":1}\n', { mode: 0o600 });
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.ok((await again.reserve('rm-handle', 1)) >= 1 + 3 * 64);
  });

  it('a missing sequence file with records present is rebuilt with a margin; atLeast moves a sequence up', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    await j.putVgpu(rec('vgpu-1'));
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.rebuiltSequences().map((r) => [r.seq, r.next, r.why]), [
      ['vgpu-id', 1 + SEQ_REBUILD_MARGIN, 'its file was missing'], ['rm-handle', 1 + SEQ_REBUILD_MARGIN, 'its file was missing'],
    ]);
    assert.equal(await again.reserve('vgpu-id', 1, { atLeast: 500 }), 500);
    assert.equal(await again.reserve('vgpu-id', 1, { atLeast: 2 }), 501);
  });

  it('quarantine records round-trip; a damaged one still quarantines the VF its name gives, with everything unknown', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    const q = { gpu: GPU, vf: 5, vgpuId: 'vgpu-9', reason: 'test', since: 1, typeId: 944, heap: { offset: 4096n, size: 1n << 20n }, unknown: ['chids' as const] };
    await j.putQuarantine(q);
    await j.putQuarantine({ gpu: GPU, vf: 6, reason: 'test', since: 1, unknown: [] });
    writeFileSync(join(dir, `quarantine-${GPU}-vf6.json`), '{"vers');
    const again = new FileVgpuJournal(dir);
    await again.open();
    const [five, six] = again.quarantined();
    assert.deepEqual(five, q);
    assert.equal(six?.vf, 6);
    assert.deepEqual(six?.unknown, ['type', 'guest-fb', 'heap', 'chids', 'rm-client']);
    await again.removeQuarantine(GPU, 5);
    assert.equal(existsSync(join(dir, `quarantine-${GPU}-vf5.json`)), false);
  });

  it('a damaged GPU record keeps the manager clients and selections that can still be read', async () => {
    const j = new FileVgpuJournal(dir);
    await j.open();
    await j.putGpu({ bdf: GPU, managerClients: [0xc2000001, 0xc2000041], selections: [{ vf: 1, typeId: 944, placementId: 8 }, { vf: 2, typeId: 944, placementId: 16 }], updatedAt: 1 });
    const file = join(dir, `gpu-${GPU}.json`);
    writeFileSync(file, readFileSync(file, 'utf8').replace('"updatedAt": 1', '"updatedAt": "x"'));
    const again = new FileVgpuJournal(dir);
    await again.open();
    assert.deepEqual(again.gpu(GPU)?.managerClients, [0xc2000001, 0xc2000041]);
    assert.deepEqual(again.gpu(GPU)?.selections.map((s) => s.vf), [1, 2]);
    assert.ok(again.damaged().some((d) => d.kind === 'gpu' && /updatedAt/.test(d.reason)));
  });

  it('files the journal does not know are left alone', async () => {
    mkdirSync(join(dir, 'logs'));
    writeFileSync(join(dir, 'README'), 'operator notes');
    writeFileSync(join(dir, 'request-abc.json'), '{}');
    const j = new FileVgpuJournal(dir);
    await j.open();
    assert.deepEqual(j.damaged(), []);
    assert.ok(existsSync(join(dir, 'request-abc.json')));
  });
});
