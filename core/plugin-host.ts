/**
 * Wires plugins into the one container and runs their lifecycle.
 *
 *   prepare(): collect plugins (given in code + `plugins.paths` modules), validate manifests, keep the enabled
 *              ones, resolve the order. No start hook and no ContainerModule has run yet, so a missing
 *              requirement, a cycle or a bad manifest leaves nothing half-made.
 *   load():    `container.loadAsync(module)` for each plugin, in order.
 *   start():   start hooks in order; if one fails, the already-started ones are stopped in reverse and the error
 *              names the plugin.
 *   stop():    stop hooks in reverse, each raced against a timeout; errors are logged, never thrown, so one
 *              broken plugin cannot keep the others from shutting down.
 */
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Container } from 'inversify';
import { ErrorCode, VgpuError } from './contracts/exceptions.js';
import type { Logger } from './contracts/logger.js';
import type { PluginContext, PluginRecord, VgpudPlugin } from './contracts/plugin.js';
import { ALL_PLUGINS, type VgpudConfig } from './config/config-schema.js';
import { validatePlugin } from './plugin-manifest.js';
import { resolvePluginOrder } from './plugin-order.js';
import { withTimeout } from './with-timeout.js';
import { ensureTypeScriptLoader } from './runtime/typescript-loader.js';

export interface PluginHostOptions {
  /** Built-in plugins, in the order the caller prefers when dependencies leave a choice. */
  plugins: readonly VgpudPlugin[];
  config: Readonly<VgpudConfig>;
  logger: Logger;
  /** Directory relative `plugins.paths` are resolved against (default: the cwd). */
  baseDir?: string;
  /** Per-plugin start hook limit (default 120 s: longer than a GSP boot). */
  startTimeoutMs?: number;
  /** Per-plugin stop hook limit (default 10 s). */
  stopTimeoutMs?: number;
}

interface Entry {
  plugin: VgpudPlugin;
  origin: string;
  record: PluginRecord;
  ctx?: PluginContext;
}

type HostPhase = 'new' | 'prepared' | 'loaded' | 'started' | 'stopped' | 'failed';

/** Keys of the `plugins` config section that are not plugin sections. */
const RESERVED_NAMES = new Set(['enabled', 'paths']);

export class PluginHost {
  private readonly opts: PluginHostOptions;
  private readonly log: Logger;
  private entries: Entry[] = [];
  private container: Container | undefined;
  private phase: HostPhase = 'new';
  private stopping: Promise<{ failed: string[] }> | undefined;

  constructor(opts: PluginHostOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'plugin-host' });
  }

  /** Collect, validate, filter and order the plugins. Runs no plugin hook. */
  async prepare(): Promise<void> {
    this.expectPhase('new', 'prepare');
    const found: { plugin: VgpudPlugin; origin: string }[] = [];
    this.opts.plugins.forEach((p, i) => found.push({ plugin: validatePlugin(p, `built-in #${i}`), origin: 'built-in' }));
    for (const path of this.opts.config.plugins.paths) found.push(await this.importPlugin(path));

    const byName = new Map<string, { plugin: VgpudPlugin; origin: string }>();
    for (const f of found) {
      const name = f.plugin.manifest.name;
      if (RESERVED_NAMES.has(name)) {
        throw new VgpuError(ErrorCode.Config, `plugin name '${name}' (${f.origin}) is reserved`, {
          hint: `'plugins.${name}' is a setting of the plugin host; rename the plugin`, details: { plugin: name },
        });
      }
      const prev = byName.get(name);
      if (prev !== undefined) {
        throw new VgpuError(ErrorCode.Config, `two plugins are named '${name}' (${prev.origin} and ${f.origin})`, {
          hint: 'remove one of them from plugins.paths', details: { plugin: name },
        });
      }
      byName.set(name, f);
    }

    const enabled = this.opts.config.plugins.enabled;
    const all = enabled.includes(ALL_PLUGINS);
    for (const name of enabled) {
      if (name !== ALL_PLUGINS && !byName.has(name)) {
        throw new VgpuError(ErrorCode.Config, `plugins.enabled names '${name}', but no such plugin is known`, {
          hint: `known plugins: ${[...byName.keys()].join(', ') || '(none)'}; add its module to plugins.paths or fix the name`,
          details: { plugin: name, known: [...byName.keys()] },
        });
      }
    }
    const chosen = found.filter((f) => all || enabled.includes(f.plugin.manifest.name));
    const ordered = resolvePluginOrder(chosen.map((f) => ({ manifest: f.plugin.manifest, f })),
      found.filter((f) => !chosen.includes(f)).map((f) => f.plugin.manifest));
    this.entries = ordered.map(({ f }) => ({
      plugin: f.plugin, origin: f.origin, record: { manifest: f.plugin.manifest, state: 'loaded' },
    }));
    this.phase = 'prepared';
    this.log.info('plugin order resolved', { order: this.entries.map((e) => e.record.manifest.name) });
  }

  /** Load each plugin's ContainerModule into `container`, in order. */
  async load(container: Container): Promise<void> {
    this.expectPhase('prepared', 'load');
    this.container = container;
    for (const e of this.entries) {
      const name = e.record.manifest.name;
      e.ctx = {
        container,
        logger: this.opts.logger.child({ component: name }),
        config: (this.opts.config.plugins as Record<string, unknown>)[name],
      };
      if (e.plugin.module === undefined) continue;
      try {
        await container.loadAsync(e.plugin.module);
      } catch (cause) {
        e.record.state = 'failed';
        this.phase = 'failed';
        throw new VgpuError(ErrorCode.PluginStart, `plugin '${name}' failed to load its module: ${errorText(cause)}`, {
          hint: 'a binding in the plugin\'s ContainerModule is wrong; see the cause', details: { plugin: name }, cause,
        });
      }
    }
    this.phase = 'loaded';
  }

  /** Run start hooks in order. On a failure, stop the started ones in reverse, then throw VGPU_EPLUGIN_START. */
  async start(): Promise<void> {
    this.expectPhase('loaded', 'start');
    const limit = this.opts.startTimeoutMs ?? 120_000;
    for (const e of this.entries) {
      const name = e.record.manifest.name;
      e.record.state = 'starting';
      const t0 = performance.now();
      try {
        if (e.plugin.start !== undefined) {
          const hook = e.plugin.start.bind(e.plugin);
          await withTimeout(Promise.resolve().then(() => hook(e.ctx!)), limit, `start of plugin '${name}'`);
        }
      } catch (cause) {
        e.record.state = 'failed';
        this.phase = 'failed';
        this.log.error('plugin failed to start; stopping the plugins already started', { plugin: name, error: cause });
        await this.stopStarted();
        throw new VgpuError(ErrorCode.PluginStart, `plugin '${name}' failed to start: ${errorText(cause)}`, {
          hint: `see the cause and the '${name}' log lines; the plugins started before it were stopped again`,
          details: { plugin: name }, cause,
        });
      }
      e.record.state = 'started';
      this.log.info('plugin started', { plugin: name, ms: Math.round(performance.now() - t0) });
    }
    this.phase = 'started';
  }

  /** Stop started plugins in reverse order. Never throws; returns the names whose stop failed or timed out. */
  stop(): Promise<{ failed: string[] }> {
    this.stopping ??= this.stopStarted().then((failed) => {
      if (this.phase !== 'failed') this.phase = 'stopped';
      return { failed };
    });
    return this.stopping;
  }

  /** The wired plugins in start order, with their state. */
  records(): PluginRecord[] {
    return this.entries.map((e) => ({ manifest: e.record.manifest, state: e.record.state }));
  }

  /** The container the plugins were loaded into (after load()). */
  get loadedInto(): Container | undefined {
    return this.container;
  }

  private async stopStarted(): Promise<string[]> {
    const limit = this.opts.stopTimeoutMs ?? 10_000;
    const failed: string[] = [];
    for (const e of [...this.entries].reverse()) {
      if (e.record.state !== 'started') continue;
      const name = e.record.manifest.name;
      e.record.state = 'stopping';
      try {
        if (e.plugin.stop !== undefined) {
          const hook = e.plugin.stop.bind(e.plugin);
          await withTimeout(Promise.resolve().then(() => hook(e.ctx!)), limit, `stop of plugin '${name}'`);
        }
        e.record.state = 'stopped';
        this.log.info('plugin stopped', { plugin: name });
      } catch (error) {
        e.record.state = 'failed';
        failed.push(name);
        this.log.error('plugin failed to stop', { plugin: name, error });
      }
    }
    return failed;
  }

  private async importPlugin(path: string): Promise<{ plugin: VgpudPlugin; origin: string }> {
    const abs = isAbsolute(path) ? path : resolve(this.opts.baseDir ?? process.cwd(), path);
    let mod: { default?: unknown };
    try {
      if (/\.[cm]?ts$/.test(abs)) await ensureTypeScriptLoader(); // a .ts plugin also loads into the compiled daemon
      mod = (await import(pathToFileURL(abs).href)) as { default?: unknown };
    } catch (cause) {
      throw new VgpuError(ErrorCode.Config, `cannot load plugin module ${abs}: ${errorText(cause)}`, {
        hint: 'check plugins.paths: the file must exist and be an ES module Node can import',
        details: { path: abs }, cause,
      });
    }
    if (mod.default === undefined) {
      throw new VgpuError(ErrorCode.Config, `plugin module ${abs} has no default export`, {
        hint: 'export the plugin object as the module\'s default export', details: { path: abs },
      });
    }
    return { plugin: validatePlugin(mod.default, abs), origin: abs };
  }

  private expectPhase(want: HostPhase, action: string): void {
    if (this.phase !== want) {
      throw new VgpuError(ErrorCode.IllegalState, `plugin host cannot ${action} in phase '${this.phase}'`, {
        hint: 'call prepare(), load(), start() and stop() once each, in that order', details: { phase: this.phase },
      });
    }
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
