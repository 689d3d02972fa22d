/**
 * What a command does when whoever reads its output goes away (`vgpuctl status | head -1`): Node ignores SIGPIPE,
 * so the next write fails with EPIPE, and unhandled that is a stack trace and exit 1. A CLI should stop quietly
 * instead, as C tools do when SIGPIPE ends them; a daemon should keep running and drop the output.
 */
type Stream = Pick<NodeJS.WriteStream, 'on'>;

/** vgpuctl and one-shot tools: exit(0) on EPIPE, for every command (installed once at start). */
export function exitQuietlyOnClosedPipe(streams: readonly Stream[] = [process.stdout, process.stderr], exit: (code: number) => void = (c) => process.exit(c)): void {
  for (const s of streams) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') exit(0);
      else throw e;
    });
  }
}

/** vgpud: a closed stdout/stderr must not stop the daemon (the vGPUs and the API keep going); output is dropped. */
export function ignoreClosedPipe(streams: readonly Stream[] = [process.stdout, process.stderr]): void {
  for (const s of streams) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}
