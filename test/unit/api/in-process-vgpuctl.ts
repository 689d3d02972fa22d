/** Run vgpuctl in this process against the daemon socket `sock`, capturing what it prints and its exit code. */
import { PassThrough } from 'node:stream';
import { runVgpuctl } from '../../../bin/cli/vgpuctl-program.js';

export async function inProcessVgpuctl(sock: string, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c: Buffer) => { out += c.toString(); });
  stderr.on('data', (c: Buffer) => { err += c.toString(); });
  const code = await runVgpuctl(argv, { stdout, stderr, env: { VGPUD_SOCKET: sock } });
  return { code, out, err };
}
