/** The compatibility header the migration unit tests stream under: an L40-1B with an FB of `fbBytes`, 4 KiB pages. */
import type { MigrationCompat } from '../../plugins/migration/stream/compat.js';

export const TEST_PAGE_SIZE = 4096;

export function testCompat(fbBytes: bigint): MigrationCompat {
  return { vgpuTypeId: 869, vgpuTypeName: 'NVIDIA L40-1B', fbBytes, chidCount: 64, firmwareVersion: '570.144', pciVdevId: 0x26b5, pageSize: TEST_PAGE_SIZE };
}
