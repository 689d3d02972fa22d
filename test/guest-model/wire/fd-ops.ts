/**
 * The descriptor operations the guest model needs (connect, sendmsg/recvmsg with SCM_RIGHTS, eventfds, mmap of a
 * received descriptor, readiness on the event loop). They come from the project's native addon — shared
 * infrastructure, not part of the server's protocol code — behind this one import so the guest model's reliance on
 * it is visible in one place.
 */
export { fdOpsAvailable, loadFdOps, WATCH_READABLE, WATCH_WRITABLE, WATCH_ERROR } from '../../../native/fd-ops.js';
export type { FdMap, FdOps, FdWatcher } from '../../../native/fd-ops.js';
