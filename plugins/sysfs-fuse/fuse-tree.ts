/**
 * What a FUSE session serves, by path ("" is the root, "bus/pci/devices/0000:41:00.4/nvidia/current_vgpu_type"
 * a file): the FUSE protocol (fuse-session.ts) is kept apart from what the tree means (sysfs-tree.ts), so either can
 * be tested alone. Refusals are FuseErrors carrying the errno the caller of read(2)/write(2)/open(2) gets.
 */
export type NodeKind = 'dir' | 'file' | 'link';

export interface NodeStat {
  kind: NodeKind;
  /** Permission bits (0o644…). */
  perm: number;
  /** st_size: sysfs reports 4096 for every attribute file, whatever it reads back. */
  size: number;
}

export class FuseError extends Error {
  constructor(readonly errno: number, message: string) {
    super(message);
    this.name = 'FuseError';
  }
}

export interface FuseTree {
  stat(path: string): NodeStat | undefined;
  list(path: string): string[] | undefined;
  readlink(path: string): string | undefined;
  /** Whole content of a file, generated now (the session slices it at the read's offset). */
  read(path: string): Promise<Buffer> | Buffer;
  /** A store: returns the bytes consumed (sysfs: all of them). */
  write(path: string, data: Buffer): Promise<number>;
}
