/**
 * What can go wrong on the client's side of the socket, as three distinct types so a test can tell "the server
 * refused this with an errno" (often the expected outcome) from "the server broke the protocol" (always a finding)
 * and from "the connection is gone".
 */
import { cmdName, errnoName } from './spec-constants.js';

/** The server answered a command with an error reply (flags bit 5) and this errno. */
export class VfioUserErrnoError extends Error {
  constructor(readonly command: number, readonly errno: number) {
    super(`${cmdName(command)} refused: ${errnoName(errno)} (${errno})`);
    this.name = 'VfioUserErrnoError';
  }
}

/** The server sent something the protocol text does not allow (the message names the rule). */
export class VfioUserProtocolError extends Error {
  constructor(message: string) {
    super(`vfio-user protocol: ${message}`);
    this.name = 'VfioUserProtocolError';
  }
}

/** The connection closed (or broke) before the answer came. */
export class VfioUserClosedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VfioUserClosedError';
  }
}

export function isErrno(e: unknown, errno?: number): e is VfioUserErrnoError {
  return e instanceof VfioUserErrnoError && (errno === undefined || e.errno === errno);
}
