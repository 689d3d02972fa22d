// The HAL conformance kit on the simulated Ada GPU (hal/ada-lovelace/ada-conformance.ts: worker mode, 8 GiB FB):
// every check runs, none is skipped.
import 'reflect-metadata';
import { conformanceSuite } from '../../conformance/node-test-suite.js';
import adaConformance from '../../hal/ada-lovelace/ada-conformance.js';

conformanceSuite(adaConformance);
