// The kit's device-driven checks (firmware events, host events, faults) on a simulated Ada GPU in process mode: the
// fixture's capabilities then travel to a vgpu-sim process over its IPC channel (hal/sim/device/sim-ipc.ts),
// so a control that returns nothing (raise an event, inject a fault, crash) must come back as a plain success.
import 'reflect-metadata';
import { test } from 'node:test';
import { conformanceSuite } from '../../conformance/node-test-suite.js';
import { createAdaFixture } from '../../hal/ada-lovelace/ada-conformance.js';
import { loadNativeOps } from '../../native/index.js';

if (loadNativeOps().kind === 'native') {
  conformanceSuite({ name: 'ada-lovelace (vgpu-sim process)', createFixture: (o) => createAdaFixture(o, { mode: 'process' }) },
    { only: ['events.firmware-event-delivery', 'vfs.host-events', 'faults'] });
} else {
  test('the kit on a process-mode Ada GPU', { skip: 'needs the native addon (npm run build:native)' }, () => {});
}
