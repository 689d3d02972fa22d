/**
 * Worker thread that parses layout text for the control API (layout-parser.ts is its host). YAML parsing is the
 * one CPU-heavy part of a layout request (tens of milliseconds for NVIDIA's 53 KB example file, far more near the
 * limits), and on the daemon's thread it would hold every other request — `GET /v1/status` waited 7.8 s behind one
 * layout — so it runs here. Messages: {id, text} in; {id, file} or {id, error} out.
 */
import { parentPort } from 'node:worker_threads';
import { ErrorCode, isVgpuError } from '../../core/contracts/exceptions.js';
import { parseLayoutText } from '../../core/layout/layout-file.js';

const port = parentPort;
if (port === null) throw new Error('layout-parse-worker must run as a worker thread');

port.on('message', (m: { id: number; text: string }) => {
  try {
    port.postMessage({ id: m.id, file: parseLayoutText(m.text) });
  } catch (e) {
    const error = isVgpuError(e) ? e.toJSON() : { code: ErrorCode.Internal, message: `layout parser failed: ${String(e)}`, hint: 'this is a bug in vgpud', details: {} };
    port.postMessage({ id: m.id, error });
  }
});
port.postMessage({ op: 'ready' });
