/**
 * Device side of the interrupt link (irq-protocol.ts): a Unix socket server the simulated device listens on, and
 * one connection per listener (the daemon's HAL, a device front, a test). `raise` sends a message to all of them.
 *
 * Idle, it costs nothing: no timer, no poll — a socket in the event loop's epoll set. A listener that stops reading
 * is dropped once MAX_BACKLOG bytes wait for it (the device must not buffer without bound for a stuck peer; the
 * peer sees the close and treats the device as gone, which is the safe reading).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import { IRQ_PROTOCOL_VERSION, encodeIrqLine, toSocketPath, type IrqHello, type IrqMessage } from './irq-protocol.js';

const MAX_BACKLOG = 256 * 1024;

export interface IrqHubOptions {
  bdf: string;
  generation: number;
  /** Log a line (verbose simulators print it). */
  log?: (line: string) => void;
}

export class IrqHub {
  private readonly conns = new Set<Socket>();
  private closed = false;
  /** Messages sent (all listeners count once), for tests and stats. */
  sent = 0;

  private constructor(private readonly server: Server, readonly address: string, private readonly o: IrqHubOptions) {
    server.on('connection', (s) => this.accept(s));
  }

  /** An abstract address nobody can guess or squat: the device's BDF, its pid and 64 random bits. */
  static defaultAddress(bdf: string): string {
    return `@vgpu-sim/${bdf}/${process.pid}/${randomBytes(8).toString('hex')}`;
  }

  static listen(address: string, o: IrqHubOptions): Promise<IrqHub> {
    const server = createServer({ allowHalfOpen: false });
    return new Promise((resolve, reject) => {
      const fail = (e: Error): void => {
        reject(new VgpuError(ErrorCode.Internal, `the simulated device cannot listen for interrupt listeners on ${address}: ${e.message}`, {
          hint: 'another process holds the address, or Unix sockets are not allowed here (RestrictAddressFamilies must include AF_UNIX)',
          cause: e,
        }));
      };
      server.once('error', fail);
      server.listen(toSocketPath(address), () => {
        server.off('error', fail);
        server.on('error', (e) => o.log?.(`interrupt link server error: ${e.message}`));
        resolve(new IrqHub(server, address, o));
      });
    });
  }

  get listeners(): number {
    return this.conns.size;
  }

  /** Send one message to every listener. */
  raise(m: IrqMessage): void {
    if (this.closed || this.conns.size === 0) return;
    const line = encodeIrqLine(m);
    this.sent++;
    for (const s of this.conns) {
      if (s.writableLength > MAX_BACKLOG) {
        this.o.log?.(`interrupt listener dropped: ${s.writableLength} bytes unread`);
        s.destroy();
        continue;
      }
      s.write(line);
    }
  }

  /** Stop listening and close every link (the listeners see the device go away). */
  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    for (const s of this.conns) s.destroy();
    this.conns.clear();
    return new Promise((r) => this.server.close(() => r()));
  }

  private accept(s: Socket): void {
    if (this.closed) {
      s.destroy();
      return;
    }
    // A listener must never keep the device process alive, nor its bytes pile up: read and drop them.
    s.unref();
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => this.conns.delete(s));
    this.conns.add(s);
    const hello: IrqHello = { t: 'hello', v: IRQ_PROTOCOL_VERSION, bdf: this.o.bdf, pid: process.pid, generation: this.o.generation };
    s.write(encodeIrqLine(hello));
  }
}
