import { ErrorCode, VgpuError } from './contracts/exceptions.js';

/**
 * Race `work` against a timer; rejects with VGPU_ETIMEDOUT naming `what` when the timer wins. The timer is
 * cleared either way so a finished race never keeps the process alive. `work` itself is not cancelled: the caller
 * decides what a late completion means.
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new VgpuError(ErrorCode.RpcTimeout, `${what} did not finish within ${ms} ms`, {
      hint: 'look at the log lines just before this one for what it was waiting on',
      details: { timeoutMs: ms },
    })), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
