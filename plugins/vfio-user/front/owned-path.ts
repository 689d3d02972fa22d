/**
 * A socket file this process created, removed only while it is still the one it created: a front that stops while a
 * new front (started by a daemon that saw the old one go) already listens at the same path must not unlink the new
 * front's socket. The inode tells the two apart.
 */
import { rmSync, statSync } from 'node:fs';

export class OwnedPath {
  private readonly ino: number | null;

  constructor(readonly path: string) {
    this.ino = OwnedPath.inode(path);
  }

  private static inode(path: string): number | null {
    try {
      return statSync(path).ino;
    } catch {
      return null;
    }
  }

  remove(): void {
    if (this.ino !== null && OwnedPath.inode(this.path) === this.ino) rmSync(this.path, { force: true });
  }
}
