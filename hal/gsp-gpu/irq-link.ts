/**
 * Host side of the simulated device's interrupt link (sim/irq-protocol.ts): one Unix-socket connection to the
 * device, its messages as 'irq' events, and 'down' when the connection ends without us closing it — the device
 * process died or stopped, which the kernel reports the moment it happens (no heartbeat to wait out).
 *
 * A malformed or oversized line from the device is a broken device: the link is closed and reported down, with the
 * reason, rather than guessed at.
 */
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'eventemitter3';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { IRQ_PROTOCOL_VERSION, MAX_LINE, decodeIrqLine, toSocketPath, type IrqHello, type IrqMessage } from '../sim/device/irq-protocol.js';

interface LinkEvents {
  irq: (m: IrqMessage) => void;
  /** The link ended and we did not close it: the device is gone (or broke the protocol). Emitted once. */
  down: (reason: string) => void;
}

export class IrqLink extends EventEmitter<LinkEvents> {
  private buf = '';
  private closing = false;
  private ended = false;

  private constructor(private readonly sock: Socket, readonly address: string, readonly hello: IrqHello) {
    super();
    sock.on('data', (chunk: Buffer) => this.onData(chunk));
    sock.on('error', () => {}); // 'close' follows and says it
    sock.on('close', () => this.end(this.closing ? null : 'the device closed its interrupt link (its process exited or stopped)'));
  }

  /**
   * Connect and wait for the device's hello (bounded by `timeoutMs`). Rejects with GpuLost when nobody listens at
   * `address` (the device is not running) or the peer does not speak this protocol.
   */
  static connect(address: string, timeoutMs = 5000): Promise<IrqLink> {
    return new Promise((resolve, reject) => {
      const sock = connect({ path: toSocketPath(address) });
      let buf = '';
      const fail = (why: string): void => {
        clearTimeout(timer);
        sock.destroy();
        reject(new VgpuError(ErrorCode.GpuLost, `cannot open the interrupt link of the simulated device at ${address}: ${why}`, {
          hint: 'the device is not running (start vgpu-sim for it again; its FB file is kept) or is of another version',
          details: { address },
        }));
      };
      const timer = setTimeout(() => fail(`no hello within ${timeoutMs} ms`), timeoutMs);
      const onData = (chunk: Buffer): void => {
        buf += chunk.toString('utf8');
        const nl = buf.indexOf('\n');
        if (nl < 0) {
          if (buf.length > MAX_LINE) fail('hello line too long');
          return;
        }
        const hello = decodeIrqLine(buf.slice(0, nl));
        if (hello === null || hello.t !== 'hello') return fail('the first line is not a hello');
        if (hello.v !== IRQ_PROTOCOL_VERSION) return fail(`protocol version ${hello.v}, expected ${IRQ_PROTOCOL_VERSION}`);
        clearTimeout(timer);
        sock.off('data', onData);
        sock.off('error', onError);
        sock.off('close', onClose);
        // The link must not keep a process alive by itself (the GSP transport and the daemon's server do that).
        sock.unref();
        const link = new IrqLink(sock, address, hello);
        resolve(link);
        const rest = buf.slice(nl + 1);
        if (rest.length > 0) link.onData(Buffer.from(rest, 'utf8'));
      };
      const onError = (e: Error): void => fail(e.message);
      const onClose = (): void => fail('closed before the hello');
      sock.on('data', onData);
      sock.once('error', onError);
      sock.once('close', onClose);
    });
  }

  get isUp(): boolean {
    return !this.ended;
  }

  /** Close on purpose (detach, close, reset): no 'down'. */
  close(): void {
    if (this.ended) return;
    this.closing = true;
    this.sock.destroy();
  }

  private onData(chunk: Buffer): void {
    this.buf += chunk.toString('utf8');
    for (let nl = this.buf.indexOf('\n'); nl >= 0; nl = this.buf.indexOf('\n')) {
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const m = decodeIrqLine(line);
      if (m === null || m.t !== 'irq') {
        // A later protocol version may add sources: an unknown but well-formed irq is skipped, garbage ends the link.
        if (isWellFormedIrq(line)) continue;
        this.fail(`malformed message on the interrupt link: ${JSON.stringify(line.slice(0, 80))}`);
        return;
      }
      this.emit('irq', m);
    }
    if (this.buf.length > MAX_LINE) this.fail(`interrupt link line longer than ${MAX_LINE} bytes`);
  }

  private fail(reason: string): void {
    this.closing = false;
    this.sock.destroy();
    this.end(reason);
  }

  private end(reason: string | null): void {
    if (this.ended) return;
    this.ended = true;
    if (reason !== null) this.emit('down', reason);
  }
}

function isWellFormedIrq(line: string): boolean {
  try {
    const v = JSON.parse(line) as { t?: unknown; src?: unknown };
    return v !== null && typeof v === 'object' && v.t === 'irq' && typeof v.src === 'string';
  } catch {
    return false;
  }
}
