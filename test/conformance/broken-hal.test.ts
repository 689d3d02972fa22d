// A deliberately broken HAL (test/conformance/fixtures/broken-mock-conformance.ts: open() accepts an unknown id, the
// copy engine leaves one byte) fails exactly the kit's checks those bugs break, each with a message that names the
// check and says in the HAL's terms what went wrong; the checks the bugs do not touch still pass.
import 'reflect-metadata';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatResult } from '../../conformance/format-report.js';
import { runConformance } from '../../conformance/run-conformance.js';
import brokenMock, { LEFT_BYTE_AT } from './fixtures/broken-mock-conformance.js';

test('a HAL whose open() accepts unknown ids and whose scrub leaves a byte fails those checks by name, and only those', async () => {
  const rep = await runConformance(brokenMock, { only: ['identification', 'memory.stats', 'channels', 'scrub'] });
  const byId = new Map(rep.results.map((r) => [r.id, r]));
  const failed = rep.results.filter((r) => r.status === 'fail').map((r) => r.id);
  assert.deepEqual(failed, ['identification.refuses-unknown-id', 'scrub.zeroes-range', 'scrub.device-view']);
  assert.equal(byId.get('identification.refuses-unknown-id')!.message, 'open() of an unknown device id 0x1234 did not throw VGPU_ENODEV (it succeeded)');
  for (const [id, where] of [['scrub.zeroes-range', 'read through a host mapping'], ['scrub.device-view', "read through the device's view"]] as const) {
    const m = /^scrub of FB range #\d+ \[0x([0-9a-f]+), \+2 MiB\) left 1 non-zero byte, first at FB offset 0x([0-9a-f]+) \((.+)\)$/.exec(byId.get(id)!.message!);
    assert.ok(m, byId.get(id)!.message);
    assert.equal(BigInt(`0x${m[2]!}`) - BigInt(`0x${m[1]!}`), LEFT_BYTE_AT, 'the offset named is where the byte was left');
    assert.equal(m[3], where);
  }
  assert.equal(byId.get('identification.refuses-foreign-transport')!.status, 'pass');
  assert.equal(byId.get('channels.copy-channel')!.status, 'pass');
  assert.equal(rep.failed, 3);
  assert.equal(rep.passed, rep.results.length - 3);
  // The report line a vendor reads names the check first.
  assert.match(formatResult(byId.get('scrub.device-view')!), /^ {2}FAIL {2}scrub\.device-view: scrub of FB range #\d+ .* left 1 non-zero byte/);
});
