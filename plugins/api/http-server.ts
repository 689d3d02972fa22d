/** What TOKENS.HttpServer resolves to: the control API's fastify app and where it listens. */
import type { FastifyInstance } from 'fastify';

export interface HttpServer {
  /** The fastify app (listening once the 'api' plugin started). Use `inject()` for in-process requests. */
  readonly app: FastifyInstance;
  /** Unix socket path; undefined before listen. */
  readonly socketPath: string | undefined;
}
