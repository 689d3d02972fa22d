/**
 * Plugin contract: a manifest that can be read and validated before any plugin code runs (VS Code / Theia style),
 * an inversify ContainerModule that binds what the plugin provides, and optional start/stop hooks.
 *
 * `provides` and `requires` name capabilities, not plugins ("hal", "scrub", "api"), so a second HAL or a
 * replacement scrub can stand in without any other plugin changing. The plugin host orders plugins so that every
 * requirement is started before the plugin that needs it, and stops them in reverse.
 */
import type { Container, ContainerModule } from 'inversify';
import type { Logger } from './logger.js';

export interface PluginManifest {
  /** Unique name, kebab-case: "lifecycle", "hal-ada-lovelace". */
  name: string;
  /** Semver of the plugin. */
  version: string;
  description?: string;
  /** Capabilities this plugin provides. */
  provides: string[];
  /** Capabilities that must be provided by some other enabled plugin (or the core). */
  requires: string[];
  /** Capabilities used when present; they order startup but their absence is not an error. */
  optional?: string[];
}

export interface PluginContext {
  container: Container;
  logger: Logger;
  /** This plugin's section of the daemon config (`plugins.<name>`), unvalidated: the plugin validates it. */
  config: unknown;
}

export interface VgpudPlugin {
  manifest: PluginManifest;
  /** Binds the plugin's services; loaded into the one container in dependency order. */
  module?: ContainerModule;
  start?(ctx: PluginContext): Promise<void> | void;
  stop?(ctx: PluginContext): Promise<void> | void;
}

/** The host's view of a wired plugin. */
export interface PluginRecord {
  manifest: PluginManifest;
  state: 'loaded' | 'starting' | 'started' | 'stopping' | 'stopped' | 'failed';
}
