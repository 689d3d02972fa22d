/**
 * Every check of the kit, in the order they run: the cheap, read-only ones first, the lifecycle end to end next,
 * the ones that break the firmware on purpose last.
 */
import type { ConformanceCheck } from '../check.js';
import { channelChecks } from './channels.js';
import { eventChecks } from './events.js';
import { faultChecks } from './faults.js';
import { firmwareChecks } from './firmware.js';
import { identificationChecks } from './identification.js';
import { lifecycleChecks } from './lifecycle.js';
import { memoryChecks } from './memory.js';
import { openCloseChecks } from './open-close.js';
import { rpcChecks } from './rpc.js';
import { scrubChecks } from './scrub.js';
import { vfChecks } from './vfs.js';

export const CHECKS: readonly ConformanceCheck[] = Object.freeze([
  ...identificationChecks,
  ...openCloseChecks,
  ...firmwareChecks,
  ...rpcChecks,
  ...eventChecks,
  ...memoryChecks,
  ...channelChecks,
  ...scrubChecks,
  ...vfChecks,
  ...lifecycleChecks,
  ...faultChecks,
]);
