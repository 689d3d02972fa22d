/**
 * Transports for the device-state stream: anything that is a Node Writable at the source and a Readable at the
 * destination. Provided here: an in-process pair (tests, same-host moves) and Unix-socket / loopback-TCP sockets
 * (between processes or hosts). The stream format carries its own framing and checks, so the transport is a
 * plain byte pipe.
 */
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { createConnection, createServer, type NetConnectOpts, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';

export function inProcessPair(highWaterMark = 8 << 20): { sender: Writable; receiver: Readable } {
  const p = new PassThrough({ highWaterMark });
  return { sender: p, receiver: p };
}

export type TransportAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host?: string; port?: number };

export interface TransportListener {
  /** Where a sender connects (the TCP port is the one actually bound). */
  readonly address: TransportAddress;
  /** The next incoming connection. */
  accept(): Promise<Socket>;
  close(): Promise<void>;
}

export async function listenTransport(addr: TransportAddress): Promise<TransportListener> {
  const waiting: ((s: Socket) => void)[] = [];
  const ready: Socket[] = [];
  const server: Server = createServer((s) => {
    const w = waiting.shift();
    if (w) w(s);
    else ready.push(s);
  });
  if (addr.kind === 'unix') rmSync(addr.path, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e) => reject(new VgpuError(ErrorCode.Migration, `cannot listen for a migration stream: ${e.message}`, {
      hint: addr.kind === 'unix' ? 'check the socket directory exists and is writable' : 'pick a free port', cause: e,
    })));
    if (addr.kind === 'unix') server.listen(addr.path, resolve);
    else server.listen(addr.port ?? 0, addr.host ?? '127.0.0.1', resolve);
  });
  const bound: TransportAddress = addr.kind === 'unix'
    ? addr
    : { kind: 'tcp', host: addr.host ?? '127.0.0.1', port: (server.address() as { port: number }).port };
  return {
    address: bound,
    accept: () => new Promise<Socket>((resolve) => {
      const s = ready.shift();
      if (s) resolve(s);
      else waiting.push(resolve);
    }),
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      if (addr.kind === 'unix') rmSync(addr.path, { force: true });
    }),
  };
}

/**
 * Bytes a sender may queue on the socket before `write()` asks it to wait for 'drain'. Node's default (16 KiB) is
 * smaller than one 1 MiB page frame, so every frame waited for 'drain' before the next was prepared (a CPU profile
 * of the migrate benchmark showed sender and receiver each ~half idle). 8 MiB lets a few frames be in flight and
 * still bounds memory. The benchmark's floor uses the same setting; measured alone the gain was within the noise
 * of this shared machine.
 */
export const SEND_HIGH_WATER_MARK = 8 << 20;

export function connectTransport(addr: TransportAddress, opts: { writableHighWaterMark?: number } = {}): Promise<Socket> {
  const writableHighWaterMark = opts.writableHighWaterMark ?? SEND_HIGH_WATER_MARK;
  return new Promise((resolve, reject) => {
    const s = addr.kind === 'unix'
      // writableHighWaterMark reaches the Duplex constructor; @types/node 20 does not list it on NetConnectOpts.
      ? createConnection({ path: addr.path, writableHighWaterMark } as NetConnectOpts)
      : createConnection({ port: addr.port ?? 0, host: addr.host ?? '127.0.0.1', writableHighWaterMark } as NetConnectOpts);
    s.once('connect', () => { s.off('error', onErr); resolve(s); });
    const onErr = (e: Error): void => reject(new VgpuError(ErrorCode.Migration, `cannot reach the migration destination: ${e.message}`, {
      hint: 'start the destination (RESUMING) first and check the address', cause: e,
    }));
    s.once('error', onErr);
  });
}
