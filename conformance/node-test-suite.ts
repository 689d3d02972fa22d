/**
 * The kit as node:test tests: one `describe` per HAL module and one test per check, named "<check id>: <title>".
 * A failed check throws its HAL-terms message; a skipped one is reported as skipped with the missing capability.
 *
 *   // test/conformance/acme.test.ts
 *   import { conformanceSuite } from 'vgpud/conformance/index.js';
 *   import acme from '../../src/acme-conformance.js';
 *   conformanceSuite(acme);
 */
import { after, before, describe, it } from 'node:test';
import { ConformanceFailure } from './check.js';
import type { KitSettings } from './check-context.js';
import { ConformanceSession, selectChecks } from './conformance-session.js';
import type { HalConformanceModule } from './hal-fixture.js';

export interface SuiteOptions {
  only?: readonly string[];
  settings?: Partial<KitSettings>;
}

export function conformanceSuite(mod: HalConformanceModule, opts: SuiteOptions = {}): void {
  const checks = selectChecks(opts.only);
  describe(`HAL conformance: ${mod.name}`, () => {
    let session: ConformanceSession | undefined;
    before(async () => {
      session = await ConformanceSession.open(mod, opts.settings !== undefined ? { settings: opts.settings } : {});
    });
    after(async () => {
      await session?.close();
    });
    for (const check of checks) {
      it(`${check.id}: ${check.title}`, async (t) => {
        const r = await session!.run(check);
        if (r.status === 'skip') t.skip(`skipped: ${r.message}`);
        if (r.status === 'fail') throw new ConformanceFailure(`${check.id}: ${r.message}`);
      });
    }
  });
}
