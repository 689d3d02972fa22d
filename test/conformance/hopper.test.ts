// The HAL conformance kit on the simulated Hopper GPU (hal/hopper/hopper-conformance.ts: an H100 PCIe in worker mode,
// 8 GiB FB): the same checks, unchanged, that the mock and the simulated Ada pass.
import 'reflect-metadata';
import { conformanceSuite } from '../../conformance/node-test-suite.js';
import hopperConformance from '../../hal/hopper/hopper-conformance.js';

conformanceSuite(hopperConformance);
