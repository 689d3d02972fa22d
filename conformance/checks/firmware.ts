/**
 * Firmware boot and version floor (core/contracts/firmware.ts `boot`): a boot resolves once the firmware reports
 * init done, with a version at or above the HAL's floor; an image below the floor is refused with VGPU_EFWVER and
 * leaves the firmware off, so a later boot with a good image still works.
 */
import { ErrorCode } from '../../core/contracts/exceptions.js';
import { defineCheck } from '../check.js';
import { DOTTED_VERSION, compareVersions, versionBelow } from '../describe.js';

export const firmwareChecks = [
  defineCheck('firmware', 'boot', 'boot() resolves with init done and a version at or above the floor, and the state says running', async (ctx) => {
    const gpu = await ctx.open();
    const floor = gpu.config.firmwareFloor;
    const info = await ctx.boot(gpu);
    ctx.expect(info.initDone === true, () => 'boot() resolved with initDone false');
    ctx.expect(DOTTED_VERSION.test(info.version), () => `boot() resolved with firmware version '${info.version}', not a dotted version`);
    ctx.expect(compareVersions(info.version, floor) >= 0, () => `boot() accepted firmware ${info.version}, below the HAL's own floor ${floor}`);
    ctx.expect(gpu.firmware.state === 'running', () => `after boot(), firmware.state is '${gpu.firmware.state}', not 'running'`);
    const now = gpu.firmware.info();
    ctx.expect(now.version === info.version && now.initDone, () => `firmware.info() says ${JSON.stringify(now)}, boot() said ${JSON.stringify(info)}`);
    const log = ctx.attemptSync("firmware.readLog('gsp')", () => gpu.firmware.readLog('gsp'));
    ctx.expect(log instanceof Uint8Array, () => "firmware.readLog('gsp') did not return a Uint8Array");
  }),

  defineCheck('firmware', 'version-floor', 'an image below the floor is refused with VGPU_EFWVER, the firmware stays off, and a good image boots after it', async (ctx) => {
    const gpu = await ctx.open();
    const floor = gpu.config.firmwareFloor;
    const below = versionBelow(floor);
    if (below === undefined) return ctx.skip(`the HAL's firmware floor '${floor}' has no version below it`);
    await ctx.rejects(`boot() of image ${below}, below the floor ${floor},`, () => gpu.firmware.boot({ version: below, source: 'conformance kit' },
      { timeoutMs: ctx.settings.bootTimeoutMs }), [ErrorCode.FirmwareTooOld]);
    ctx.expect(gpu.firmware.state === 'off', () => `after refusing image ${below}, firmware.state is '${gpu.firmware.state}', not 'off'`);
    const info = await ctx.boot(gpu);
    ctx.expect(info.initDone, () => `the boot after the refused image ${below} resolved without initDone`);
  }),
];
