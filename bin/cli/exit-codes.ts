/** vgpuctl's exit codes (also printed by `vgpuctl --help` and in docs/operations.md). */
export const EXIT = {
  ok: 0,
  /** `assert`: the layout is not applied (like nvidia-vgpu-dm assert). */
  notApplied: 1,
  usage: 2,
  /** The daemon refused the request (HTTP 4xx): bad input, unknown id, busy, no space… */
  refused: 3,
  /** The daemon failed (HTTP 5xx) or could not be reached. */
  daemon: 4,
  /** `status`: a configured GPU is not managed (lost, being reset, unbound, absent, or its probe failed). */
  degraded: 5,
} as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  ok
  1  assert: the layout is not applied (the diff is printed)
  2  usage error (bad arguments; nothing was sent)
  3  refused by the daemon (4xx: invalid request, not found, busy, no space)
  4  daemon failure (5xx) or daemon unreachable (not running, wrong --socket)
  5  status: a configured GPU is not managed (lost, being reset, unbound, absent, probe failed; the reason is printed)`;

export class CliError extends Error {
  constructor(message: string, readonly exitCode: number, readonly hint?: string, readonly errno?: string) {
    super(message);
  }

  /** The daemon could not be reached at all (nothing was sent), as opposed to a connection lost mid-request. */
  get neverSent(): boolean {
    return this.errno === 'ENOENT' || this.errno === 'ECONNREFUSED' || this.errno === 'EACCES';
  }
}
