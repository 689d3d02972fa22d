/**
 * RM object classes the host allocates in GSP-RM (the `hClass` of an RM alloc). An RM client is an NV01_ROOT object;
 * under it the host allocates an NV01_DEVICE_0 and, under that, an NV20_SUBDEVICE_0 — RM controls with a 0x2080xxxx
 * command id are addressed to the subdevice (docs/reference/core-driver-interface.md op 4,
 * docs/reference/gsp-queues.md).
 */
export const RmClass = {
  NV01_ROOT: 0x0000_0000,
  NV01_DEVICE_0: 0x0000_0080,
  NV20_SUBDEVICE_0: 0x0000_2080,
} as const;
export type RmClass = (typeof RmClass)[keyof typeof RmClass];

/** Name of a class id, for logs ("0x2080" → "NV20_SUBDEVICE_0"). */
export function rmClassName(hClass: number): string {
  for (const [name, id] of Object.entries(RmClass)) if (id === hClass) return name;
  return `0x${hClass.toString(16)}`;
}
