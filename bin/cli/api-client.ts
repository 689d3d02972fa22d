/**
 * vgpuctl's HTTP client over the daemon's Unix socket. Maps every failure to a CliError with the right exit code:
 * a 4xx is a refusal (3), a 5xx or an unreachable daemon is a daemon failure (4), and the message always says what
 * to do — for an unreachable daemon, how to start it.
 */
import { request, type IncomingMessage } from 'node:http';
import { createInterface } from 'node:readline';
import { CliError, EXIT } from './exit-codes.js';

export interface ApiResponse {
  status: number;
  body: string;
  contentType: string;
}

export class ApiClient {
  constructor(readonly socketPath: string) {}

  raw(method: string, path: string, body?: { json?: unknown; text?: string }): Promise<ApiResponse> {
    return new Promise((resolve, reject) => {
      const payload = body?.json !== undefined ? JSON.stringify(body.json) : body?.text;
      const headers: Record<string, string> = {};
      if (payload !== undefined) {
        headers['content-type'] = body?.json !== undefined ? 'application/json' : 'text/plain';
        headers['content-length'] = String(Buffer.byteLength(payload));
      }
      const req = request({ socketPath: this.socketPath, method, path, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({
          status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: String(res.headers['content-type'] ?? ''),
        }));
        res.on('error', (e) => reject(this.unreachable(e)));
      });
      req.on('error', (e) => reject(this.unreachable(e)));
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  /** JSON request; throws CliError on any non-2xx. */
  async call<T = Record<string, unknown>>(method: string, path: string, json?: unknown): Promise<T> {
    const r = await this.raw(method, path, json !== undefined ? { json } : undefined);
    this.check(r);
    return (r.body === '' ? {} : JSON.parse(r.body)) as T;
  }

  /** Text request (the VF ABI); returns the body byte-exact. */
  async text(method: 'GET' | 'PUT', path: string, text?: string): Promise<string> {
    const r = await this.raw(method, path, text !== undefined ? { text } : undefined);
    this.check(r);
    return r.body;
  }

  /**
   * Open an NDJSON stream; resolves once the first line arrived (the subscription is live), then calls `onLine`
   * for every line. `close()` ends it.
   */
  stream(path: string, onLine: (v: Record<string, unknown>) => void): Promise<{ close: () => void; done: Promise<void> }> {
    return new Promise((resolve, reject) => {
      const req = request({ socketPath: this.socketPath, path }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          this.rejectWithBody(res, reject);
          return;
        }
        const rl = createInterface({ input: res });
        let first = true;
        const done = new Promise<void>((r) => { rl.on('close', () => r()); });
        // readline re-emits its input's errors; the stream simply ends when the daemon goes away.
        rl.on('error', () => rl.close());
        rl.on('line', (line) => {
          if (line.trim() === '') return;
          let v: Record<string, unknown>;
          try { v = JSON.parse(line) as Record<string, unknown>; } catch { return; }
          if (first) {
            first = false;
            resolve({ close: () => req.destroy(), done });
            if (v.event === 'stream:open') return;
          }
          onLine(v);
        });
      });
      req.on('error', (e) => reject(this.unreachable(e)));
      req.end();
    });
  }

  /** A non-2xx streaming answer: read its JSON error body and reject with the typed CLI error `call` would give. */
  private rejectWithBody(res: IncomingMessage, reject: (e: unknown) => void): void {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      try {
        this.check({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: '' });
      } catch (e) { reject(e); }
    });
  }

  /**
   * POST a JSON body and read an NDJSON response line by line (a long-running action that reports progress, like
   * POST /v1/vgpus/:id/migrate). Resolves when the response ended; a non-2xx answer throws like `call`.
   */
  postStream(path: string, json: unknown, onLine: (v: Record<string, unknown>) => void): Promise<void> {
    return new Promise((resolve, reject) => {
      const payload = JSON.stringify(json);
      const req = request({
        socketPath: this.socketPath, method: 'POST', path,
        headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) },
      }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          this.rejectWithBody(res, reject);
          return;
        }
        const rl = createInterface({ input: res });
        rl.on('line', (line) => {
          if (line.trim() === '') return;
          try { onLine(JSON.parse(line) as Record<string, unknown>); } catch { /* not a JSON line: skip it */ }
        });
        rl.on('close', () => resolve());
        // readline re-emits its input's errors: a daemon that dies mid-reply (ECONNRESET) is exit 4, not a crash.
        rl.on('error', (e) => reject(this.unreachable(e)));
        res.on('error', (e) => reject(this.unreachable(e)));
      });
      req.on('error', (e) => reject(this.unreachable(e)));
      req.end(payload);
    });
  }

  private check(r: ApiResponse): void {
    if (r.status >= 200 && r.status < 300) return;
    let err: { code?: string; message?: string; hint?: string; details?: { request?: unknown; errno?: unknown } } = {};
    try { err = (JSON.parse(r.body) as { error?: typeof err }).error ?? {}; } catch { /* not JSON: use the status */ }
    const code = r.status >= 500 ? EXIT.daemon : EXIT.refused;
    // A refusal that carries the kernel's errno (the per-VF ABI, sriov_numvfs) shows it next to the code, so an
    // operator sees what `echo` into the sysfs file would have said.
    const errno = typeof err.details?.errno === 'string' ? err.details.errno : undefined;
    const tag = [err.code, errno !== undefined ? `errno ${errno}` : undefined].filter(Boolean).join(', ');
    const message = `${err.message ?? `HTTP ${r.status}`}${tag ? ` (${tag})` : ''}`;
    // A request the daemon recorded (it got as far as its first step) can be looked at afterwards.
    const req = typeof err.details?.request === 'string' ? err.details.request : undefined;
    const hint = req === undefined ? err.hint : `${err.hint ?? ''}${err.hint ? '; ' : ''}the request's record: vgpuctl request ${req}`;
    throw new CliError(message, code, hint);
  }

  private unreachable(e: NodeJS.ErrnoException): CliError {
    if (e instanceof CliError) return e;
    const why = e.code === 'ENOENT' ? 'no socket there' : e.code === 'ECONNREFUSED' ? 'connection refused'
      : e.code === 'EACCES' ? 'permission denied' : (e.code ?? e.message);
    const hint = e.code === 'EACCES'
      ? 'add your user to the socket\'s group (see docs/operations.md) or run as root'
      : 'is vgpud running? start it with `npm start` (simulated GPU) or `systemctl start vgpud`, or point --socket / VGPUD_SOCKET at its socket';
    return new CliError(`cannot reach vgpud at ${this.socketPath} (${why})`, EXIT.daemon, hint, e.code ?? e.message);
  }
}
