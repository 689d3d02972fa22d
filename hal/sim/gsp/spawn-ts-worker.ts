/**
 * Kept for existing imports: the helper moved to core/runtime/spawn-worker.ts so plugins and bin can use it too
 * (a plugin may import core, not hal). New code: `spawnModuleWorker(siblingModule(import.meta.url, './x'))`.
 */
export { spawnModuleWorker as spawnTsWorker } from '../../../core/runtime/spawn-worker.js';
