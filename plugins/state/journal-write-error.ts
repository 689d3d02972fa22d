/**
 * A failed journal write as the typed error the caller passes on: a full filesystem (ENOSPC, or EDQUOT: over the
 * user's quota) is VGPU_ESTATEFULL and says what to free; anything else is VGPU_EJOURNAL naming the errno.
 */
import { ErrorCode, VgpuError, isVgpuError } from '../../core/contracts/exceptions.js';

const FULL = new Set(['ENOSPC', 'EDQUOT']);

export function journalWriteError(dir: string, file: string, cause: unknown): VgpuError {
  if (isVgpuError(cause)) return cause;
  const code = (cause as NodeJS.ErrnoException | undefined)?.code ?? 'EIO';
  if (FULL.has(code)) {
    return new VgpuError(ErrorCode.StateFull, `the state dir ${dir} is full (${code}): cannot journal ${file}, so nothing was done`, {
      hint: `free space on the filesystem that holds ${dir} (\`df ${dir}\`); per-vGPU log files (plugins.logging.dir, default ${dir}/logs) are what usually grows — lower plugins.logging.keepDestroyed — then retry`,
      details: { dir, file, errno: code }, cause,
    });
  }
  return new VgpuError(ErrorCode.Journal, `cannot write ${file} in the state dir ${dir}: ${code}`, {
    hint: `check the filesystem of ${dir} (read-only? I/O errors in dmesg?), then retry`, details: { dir, file, errno: code }, cause,
  });
}
