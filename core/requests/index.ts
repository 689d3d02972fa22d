/** Journalled, all-or-none multi-step requests (contracts: core/contracts/requests.ts, request-journal.ts). */
export { RequestServiceImpl } from './request-service.js';
export { MemoryRequestJournal, KEEP_FINISHED_REQUESTS, finishedBeyond, newestFirst } from './memory-request-journal.js';
export { recoverRequests } from './request-recovery.js';
