/**
 * One run of the kit against one HAL module: creates the fixture once (devices are expensive to bring up), runs
 * checks one at a time on it — each in its own CheckContext, cleaned up after it — and tears the fixture down.
 * Both faces use it: the node:test suite (one test per check) and the `npm run conformance` command.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, VgpuError } from '../core/contracts/exceptions.js';
import { MemoryLogger } from '../core/logging/memory-logger.js';
import { CheckContext, DEFAULT_SETTINGS, type KitSettings } from './check-context.js';
import { ConformanceFailure, ConformanceSkip, type ConformanceCheck } from './check.js';
import { CHECKS } from './checks/index.js';
import { describeError } from './describe.js';
import type { HalConformanceModule, HalFixture } from './hal-fixture.js';

export type CheckStatus = 'pass' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  status: CheckStatus;
  /** Why it failed or was skipped, in the HAL's terms. */
  message?: string;
  durationMs: number;
}

export interface SessionOptions {
  settings?: Partial<KitSettings>;
  /** Where the HAL and the fixture log (default: kept in memory, level info). */
  logger?: MemoryLogger;
}

/** Throws a VgpuError naming what is wrong with a module's default export. */
export function checkModule(mod: unknown, origin: string): asserts mod is HalConformanceModule {
  const m = mod as Partial<HalConformanceModule> | null | undefined;
  const problems: string[] = [];
  if (m === null || typeof m !== 'object') problems.push('the default export is not an object');
  else {
    if (typeof m.name !== 'string' || m.name === '') problems.push('`name` is not a non-empty string');
    if (typeof m.createFixture !== 'function') problems.push('`createFixture` is not a function');
  }
  if (problems.length > 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `${origin} is not a HAL conformance module: ${problems.join('; ')}`, {
      hint: 'export default { name: "my-hal", createFixture: async (opts) => ({ hal, bus, devices, teardown }) } (docs/vendor-guide.md)',
      details: { module: origin, problems },
    });
  }
}

function checkFixture(f: Partial<HalFixture> | null | undefined, name: string): asserts f is HalFixture {
  const problems: string[] = [];
  if (f === null || typeof f !== 'object') problems.push('it resolved with no object');
  else {
    const hal = f.hal as Partial<HalFixture['hal']> | undefined;
    if (hal === undefined || typeof hal.open !== 'function' || typeof hal.supports !== 'function') problems.push('`hal` is not a Hal (open, supports)');
    if (f.bus === undefined || typeof f.bus.list !== 'function') problems.push('`bus` is not a PciBus (list)');
    if (!Array.isArray(f.devices) || f.devices.length === 0) problems.push('`devices` is empty: name at least the device under test');
    if (typeof f.teardown !== 'function') problems.push('`teardown` is not a function');
  }
  if (problems.length > 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `createFixture() of HAL module '${name}' returned a bad fixture: ${problems.join('; ')}`, {
      hint: 'return { hal, bus, devices: [the device under test], teardown } (conformance/hal-fixture.ts)',
      details: { module: name, problems },
    });
  }
}

export class ConformanceSession {
  private closed = false;

  private constructor(
    readonly module: HalConformanceModule,
    readonly fixture: HalFixture,
    readonly logger: MemoryLogger,
    readonly settings: KitSettings,
    private readonly workDir: string,
  ) {}

  static async open(mod: HalConformanceModule, opts: SessionOptions = {}): Promise<ConformanceSession> {
    checkModule(mod, 'the HAL module');
    const settings = { ...DEFAULT_SETTINGS, ...opts.settings };
    const logger = opts.logger ?? new MemoryLogger({ level: 'info' });
    const workDir = await mkdtemp(join(tmpdir(), 'vgpud-conformance-'));
    let fixture: HalFixture;
    try {
      fixture = await mod.createFixture({ logger, workDir });
    } catch (e) {
      await rm(workDir, { recursive: true, force: true });
      throw new VgpuError(ErrorCode.InvalidArgument, `createFixture() of HAL module '${mod.name}' failed: ${describeError(e)}`, {
        hint: 'the fixture could not bring its device up; run it alone to see why', cause: e,
      });
    }
    try {
      checkFixture(fixture, mod.name);
    } catch (e) {
      await (fixture as Partial<HalFixture> | undefined)?.teardown?.().catch(() => {});
      await rm(workDir, { recursive: true, force: true });
      throw e;
    }
    return new ConformanceSession(mod, fixture, logger, settings, workDir);
  }

  /** Run one check on the fixture and clean up after it. Never throws: the outcome is in the result. */
  async run(check: ConformanceCheck): Promise<CheckResult> {
    const ctx = new CheckContext(this.fixture, this.logger, this.settings);
    const t0 = performance.now();
    let status: CheckStatus;
    let message: string | undefined;
    try {
      await check.run(ctx);
      status = 'pass';
    } catch (e) {
      if (e instanceof ConformanceSkip) {
        status = 'skip';
        message = e.message;
      } else {
        status = 'fail';
        message = e instanceof ConformanceFailure ? e.message : `the check stopped on ${describeError(e)}`;
      }
    }
    const leftovers = await ctx.cleanup();
    if (leftovers.length > 0) {
      const after = `cleaning up after the check: ${leftovers.join('; ')}`;
      message = status === 'fail' ? `${message}; then, ${after}` : after;
      status = 'fail';
    }
    return { id: check.id, title: check.title, status, ...(message !== undefined ? { message } : {}), durationMs: performance.now() - t0 };
  }

  /** Tear the fixture down (once) and delete its work directory. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.fixture.teardown();
    } finally {
      await rm(this.workDir, { recursive: true, force: true });
    }
  }
}

/** The checks `only` selects: ids ("memory.alignment"), areas ("memory") or id prefixes; all when empty. */
export function selectChecks(only: readonly string[] = [], checks: readonly ConformanceCheck[] = CHECKS): ConformanceCheck[] {
  if (only.length === 0) return [...checks];
  const picked = checks.filter((c) => only.some((o) => c.id === o || c.area === o || c.id.startsWith(o)));
  const unknown = only.filter((o) => !checks.some((c) => c.id === o || c.area === o || c.id.startsWith(o)));
  if (unknown.length > 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `no conformance check matches ${unknown.map((u) => `'${u}'`).join(', ')}`, {
      hint: `areas: ${[...new Set(checks.map((c) => c.area))].join(', ')} (\`npm run conformance -- --list\` lists every check)`,
    });
  }
  return picked;
}
