// The HAL conformance kit on the mock HAL (hal/mock/mock-conformance.ts): every check passes or is skipped for a
// capability the mock does not model (a corrupted reply: the mock has no wire format).
import 'reflect-metadata';
import { conformanceSuite } from '../../conformance/node-test-suite.js';
import mockConformance from '../../hal/mock/mock-conformance.js';

conformanceSuite(mockConformance);
