/**
 * Watches the device-plugin directory through inotify (fs.watch), so a kubelet restart is noticed the moment it
 * happens and an idle node costs nothing: a new kubelet deletes the plugins' sockets and creates kubelet.sock anew
 * (docs/reference/kubelet-device-plugin.md), both of which are events here. No polling loop.
 *
 * While the directory does not exist (no kubelet installed yet, a test that has not started its stand-in), the
 * nearest existing ancestor is watched instead, and the watch moves down when the directory appears.
 */
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../core/contracts/logger.js';

export class DirWatcher {
  private watcher: FSWatcher | undefined;
  private watched: string | undefined;
  private stopped = false;

  /** `onEvent` gets the name of the entry that changed (null when unknown) — or null after the watch moved. */
  constructor(private readonly dir: string, private readonly onEvent: (name: string | null) => void, private readonly log: Logger) {}

  /** The path watched now: the directory, or an ancestor while the directory is missing. */
  get watching(): string | undefined {
    return this.watched;
  }

  start(): void {
    this.stopped = false;
    this.arm();
  }

  stop(): void {
    this.stopped = true;
    this.watcher?.close();
    this.watcher = undefined;
    this.watched = undefined;
  }

  private arm(): void {
    if (this.stopped) return;
    let target = this.dir;
    while (!existsSync(target) && dirname(target) !== target) target = dirname(target);
    if (target === this.watched && this.watcher !== undefined) return;
    this.watcher?.close();
    this.watcher = undefined;
    try {
      const w = watch(target, { persistent: false }, (_type, name) => this.changed(name === null ? null : String(name)));
      w.on('error', (error) => {
        // The watched directory went away (or inotify gave up): watch again from what exists now.
        this.log.debug('directory watch ended; watching again', { path: target, error });
        if (this.watcher === w) {
          this.watcher = undefined;
          this.watched = undefined;
        }
        w.close();
        this.arm();
        this.onEvent(null);
      });
      this.watcher = w;
      this.watched = target;
      if (target !== this.dir) this.log.info('waiting for the device-plugin directory to appear', { dir: this.dir, watching: target });
    } catch (error) {
      this.log.error('cannot watch the device-plugin directory; kubelet restarts will not be noticed', { path: target, error });
    }
  }

  private changed(name: string | null): void {
    if (this.stopped) return;
    if (this.watched !== this.dir || !existsSync(this.dir)) {
      // An ancestor changed, or the directory itself vanished: re-arm where we can, then let the owner look.
      const before = this.watched;
      this.arm();
      if (this.watched !== before) this.onEvent(null);
      return;
    }
    this.onEvent(name);
  }
}
