/** Shared fixtures for the metadata tests: a small hand-made spec and byte-patching helpers. */
import assert from 'node:assert/strict';
import { ErrorCode, VgpuError } from '../../../core/contracts/exceptions.js';
import type { MetadataBlobSpec, MetadataSpec, VgpuTypeRecord } from '../../../core/metadata/metadata-file.js';
import { NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, sealMetadataCrc } from '../../../core/metadata/metadata-format.js';

const MiB = 1n << 20n;

export function sampleType(deviceId: number, id: number, over: Partial<VgpuTypeRecord> = {}): VgpuTypeRecord {
  return {
    id,
    name: `TEST ${deviceId.toString(16)}-${id}Q`,
    vdevId: ((deviceId << 16) | (id & 0xffff)) >>> 0,
    pdevId: deviceId,
    fbLength: 1024n * MiB,
    gspHeapSize: 32n * MiB,
    bar1LengthMiB: 256,
    maxInstance: 32,
    eccSupported: false,
    fbReservation: 0n,
    ...over,
  };
}

export function sampleBlob(deviceId: number, ids: number[], payload = new Uint8Array([1, 2, 3, 4, 5])): MetadataBlobSpec {
  return {
    deviceId,
    rmctrlCmd: NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE,
    rmctrlPayload: payload,
    types: ids.map((id) => sampleType(deviceId, id)),
  };
}

/** Two blobs (L40 with two types, L4 with one), opaque 5-byte payloads. */
export function sampleSpec(): MetadataSpec {
  return { vgpuMajor: 18, vgpuMinor: 1, gspVersion: '570.144', blobs: [sampleBlob(0x26b5, [869, 870]), sampleBlob(0x27b8, [900])] };
}

/** A copy of `bytes` changed by `edit`, with the CRC recomputed unless `reseal` is false. */
export function patched(bytes: Uint8Array, edit: (dv: DataView, b: Uint8Array) => void, reseal = true): Uint8Array {
  const b = bytes.slice();
  edit(new DataView(b.buffer, b.byteOffset, b.byteLength), b);
  return reseal ? sealMetadataCrc(b) : b;
}

/** Assert `fn` throws VgpuError(Metadata) for exactly this offset and field, and that the message names both. */
export function assertMetadataError(fn: () => unknown, offset: number, field: string): VgpuError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VgpuError, `expected a VgpuError, got ${String(caught)}`);
  assert.equal(caught.code, ErrorCode.Metadata, caught.message);
  assert.deepEqual(caught.details, { offset, field }, caught.message);
  assert.match(caught.message, new RegExp(`byte offset ${offset}\\b`));
  assert.ok(caught.message.includes(field), caught.message);
  return caught;
}
