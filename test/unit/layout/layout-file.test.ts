// Layout files in NVIDIA vgpu-device-manager's format: what loads, what is refused and how the refusal reads.
// The layouts here are written from the format (docs/reference/vgpu-device-manager-layouts.md), not copied.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LAYOUT_LIMITS, parseLayoutText, selectLayoutConfig, validateLayout } from '../../../core/layout/index.js';

const file = (body: string): string => `version: v1\nvgpu-configs:\n${body}`;

describe('layout files in NVIDIA\'s format', () => {
  it('loads device-filter (one id or a list), index lists, all, addresses and several entries per config', () => {
    const f = parseLayoutText(file([
      '  default:',
      '    - device-filter: "0x26B110DE"',
      '      devices: all',
      '      vgpu-devices:',
      '        RTX6000-Ada-24Q: 2',
      '    - device-filter: ["0x26B510DE", "0x26B910DE"]',
      '      devices: [0, 1]',
      '      vgpu-devices: {L40S-8Q: 6}',
      '  by-address:',
      '    - devices: ["0000:41:00.0"]',
      '      vgpu-devices: {}',
      '',
    ].join('\n')));
    const d = selectLayoutConfig(f, 'default').entries;
    assert.equal(d.length, 2);
    assert.equal(d[0]!['device-filter'], '0x26B110DE');
    assert.deepEqual(d[1]!['device-filter'], ['0x26B510DE', '0x26B910DE']);
    assert.deepEqual(d[1]!.devices, [0, 1]);
    assert.deepEqual(selectLayoutConfig(f, 'by-address').entries[0]!.devices, ['0000:41:00.0']);
  });

  it('reports each distinct problem once, with its count and the first places', () => {
    const entries = Array.from({ length: 5 }, (_, i) => `    - {devices: all, vgpu-devices: {A-${i}Q: 1}, colour: red}`).join('\n');
    const err = (() => {
      try {
        parseLayoutText(file(`  a:\n${entries}\n    - {devices: all, vgpu-devices: {B-1Q: -1}}\n`));
      } catch (e) {
        return e as { code: string; message: string; details: { issues: string[] } };
      }
      return undefined;
    })();
    assert.ok(err);
    assert.equal(err.code, 'VGPU_EINVAL');
    const unknown = err.details.issues.filter((l) => l.includes('colour'));
    assert.equal(unknown.length, 1, err.message);
    assert.match(unknown[0]!, /^colour: unknown key \(5 times, at vgpu-configs\.a\.0, vgpu-configs\.a\.1, vgpu-configs\.a\.2 and 2 more\)$/);
    // The other, different problem is still there, with its own place.
    assert.ok(err.details.issues.some((l) => /^vgpu-configs\.a\.5\.vgpu-devices\.B-1Q: .*got -1$/.test(l)), err.message);
  });

  it('refuses a wrong version, a malformed device-filter, a fractional count, a bad devices value and a duplicate key', () => {
    assert.throws(() => parseLayoutText('version: v2\nvgpu-configs: {a: [{devices: all, vgpu-devices: {}}]}\n'), /version: expected "v1"/);
    assert.throws(() => parseLayoutText(file('  a:\n    - {device-filter: "RTX6000", devices: all, vgpu-devices: {}}\n')), /device-filter: expected a PCI id/);
    assert.throws(() => parseLayoutText(file('  a:\n    - {devices: all, vgpu-devices: {X-8Q: 1.5}}\n')), /whole number/);
    assert.throws(() => parseLayoutText(file('  a:\n    - {devices: some, vgpu-devices: {}}\n')), /devices: expected "all" or a list/);
    assert.throws(() => parseLayoutText(file('  a:\n    - {devices: all, vgpu-devices: {}}\n  a:\n    - {devices: all, vgpu-devices: {}}\n')),
      /the key 'a' twice in one map \(again at line 5\)/);
    assert.throws(() => parseLayoutText('version: [\n'), { code: 'VGPU_EINVAL' });
    assert.throws(() => parseLayoutText(file('  a: []\n')), /at least one entry/);
  });

  it('refuses oversized layouts before parsing them, naming the limit', () => {
    // 20,000 types in one map: the text scan refuses it (no YAML parse of it happens at all).
    const big = file(`  a:\n    - devices: all\n      vgpu-devices:\n${Array.from({ length: 20_000 }, (_, i) => `        T${i}-1Q: 1\n`).join('')}`);
    assert.throws(() => parseLayoutText(big), (e: { code: string; message: string }) => {
      assert.equal(e.code, 'VGPU_E2BIG');
      assert.match(e.message, new RegExp(`more than ${LAYOUT_LIMITS.value.maxKeys} keys .*limit: ${LAYOUT_LIMITS.value.maxKeys} keys`));
      return true;
    });
    assert.throws(() => parseLayoutText(`x: ${'['.repeat(20)}${']'.repeat(20)}\n`), /flow collections deeper than 8 levels/);
    assert.throws(() => parseLayoutText(' '.repeat(LAYOUT_LIMITS.maxTextLength + 1)), /limit: 1048576 characters \(1 MiB\)/);
  });

  it('bounds a layout given as an object too: keys per map, string lengths and __proto__', () => {
    const many = Object.fromEntries(Array.from({ length: LAYOUT_LIMITS.value.maxKeysPerObject + 1 }, (_, i) => [`c${i}`, []]));
    assert.throws(() => validateLayout({ version: 'v1', 'vgpu-configs': many }), /limit: 1024 keys per map/);
    assert.throws(() => validateLayout({ version: 'v1', 'vgpu-configs': { ['x'.repeat(300)]: [] } }), /limit: 256 characters/);
    const proto = JSON.parse('{"version":"v1","vgpu-configs":{"__proto__":[{"devices":"all","vgpu-devices":{}}]}}') as unknown;
    assert.throws(() => validateLayout(proto), /key named __proto__/);
  });

  it('selects configs by own name only: constructor, hasOwnProperty and __proto__ are unknown names (404)', () => {
    const f = parseLayoutText(file('  a:\n    - {devices: all, vgpu-devices: {}}\n  b:\n    - {devices: all, vgpu-devices: {}}\n'));
    for (const name of ['constructor', 'hasOwnProperty', '__proto__', 'toString']) {
      assert.throws(() => selectLayoutConfig(f, name), { code: 'VGPU_ENOENT' }, name);
    }
    assert.throws(() => selectLayoutConfig(f), (e: { hint: string }) => /pass -c NAME, one of: a, b/.test(e.hint));
    assert.equal(selectLayoutConfig(f, 'b').name, 'b');
    assert.equal(selectLayoutConfig(parseLayoutText(file('  only:\n    - {devices: all, vgpu-devices: {}}\n'))).name, 'only');
  });
});
