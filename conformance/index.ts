/**
 * The HAL conformance kit: the checks every GPU generation's HAL must pass, parameterized by a HAL fixture factory.
 * A vendor imports it from their own package (types for their fixture module, `conformanceSuite` for their tests)
 * or runs it from the command line: `npm run conformance -- --hal path/to/their-conformance.js`.
 * docs/vendor-guide.md says what a HAL implements and what each check asks of it.
 */
export type {
  HalConformanceModule, HalFixture, HalFixtureOptions, DeviceFbView, HostEventInjector, FirmwareEventInjector, FirmwareFaultInjector,
  FirmwareInspector,
} from './hal-fixture.js';
export { CHECKS } from './checks/index.js';
export { ConformanceFailure, ConformanceSkip, defineCheck, type CheckArea, type ConformanceCheck } from './check.js';
export { CheckContext, DEFAULT_SETTINGS, type KitSettings } from './check-context.js';
export { ConformanceSession, selectChecks, checkModule, type CheckResult, type CheckStatus, type SessionOptions } from './conformance-session.js';
export { runConformance, type ConformanceReport, type RunConformanceOptions } from './run-conformance.js';
export { conformanceSuite, type SuiteOptions } from './node-test-suite.js';
export { loadHalModule, builtinHalModulePaths, BUILTIN_HAL_MODULES, type LoadedHalModule } from './load-hal-module.js';
export { formatResult, formatHeader, formatTotals } from './format-report.js';
