/**
 * NV_STATUS values (RM status codes) as the firmware returns them, in RM control replies and `details.rmStatus` of a
 * rejected control. source: nvstatuscodes.h ordering (NO_MEMORY 0x51, NOT_READY 0x55 and TIMEOUT_RETRY 0x66 confirmed
 * by nouveau rpc.c (docs/reference/gsp-queues.md); INVALID_OBJECT_PARENT 0x36 confirmed by two independent RM users);
 * the others follow the same table from memory [unverified].
 */
export const NvStatus = {
  OK: 0x00,
  IN_USE: 0x17,
  INSERT_DUPLICATE_NAME: 0x19,
  INVALID_ADDRESS: 0x1e,
  INVALID_ARGUMENT: 0x1f,
  INVALID_CLASS: 0x22,
  INVALID_CLIENT: 0x23,
  INVALID_COMMAND: 0x24,
  INVALID_OBJECT_HANDLE: 0x33,
  INVALID_OBJECT_PARENT: 0x36,
  INVALID_PARAM_STRUCT: 0x3a,
  INVALID_STATE: 0x40,
  NO_MEMORY: 0x51,
  NOT_READY: 0x55,
  NOT_SUPPORTED: 0x56,
  OBJECT_NOT_FOUND: 0x57,
  TIMEOUT_RETRY: 0x66,
  GENERIC: 0xffff,
} as const;
export type NvStatus = (typeof NvStatus)[keyof typeof NvStatus];
