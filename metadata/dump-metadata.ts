/**
 * `npm run metadata:dump -- FILE [--json] [--records]`: show what a metadata file installs — for operators holding a
 * file from elsewhere. The table shows each type's profile size (the GSP record's profileSize) next to the guest FB;
 * `--records` prints every NVA081_CTRL_VGPU_INFO record of the RM-control payload field by field, with its offset.
 * On a bad file prints the typed error (byte offset + field) and exits 1.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isVgpuError } from '../core/contracts/exceptions.js';
import type { MetadataBlob, MetadataFile } from '../core/metadata/metadata-file.js';
import { computeFileCrc, CRC_START, HDR, MiB, NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, TYPE_BLOB_HDR, BLOB_HDR, TYPE_RECORD } from '../core/metadata/metadata-format.js';
import { parseMetadata } from '../core/metadata/metadata-reader.js';
import { ADD_VGPU_TYPE_PARAMS, decodeAddVgpuTypeParams, kernelTypeFromInfo, VGPU_INFO, type VgpuInfoRecord } from '../core/metadata/vgpu-info-record.js';
import { isDeepStrictEqual } from 'node:util';

const hex = (n: number, w = 4): string => `0x${n.toString(16).padStart(w, '0')}`;
const mib = (b: bigint): string => (b % MiB === 0n ? String(b / MiB) : (Number(b) / 2 ** 20).toFixed(2));

/** What the RM-control payload is: our ADD_VGPU_TYPE params (and whether they agree with the records), or opaque. */
function describePayload(blob: MetadataBlob, payloadOffset: number): string {
  if (blob.rmctrlCmd !== NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE) return 'opaque (not ADD_VGPU_TYPE)';
  try {
    const p = decodeAddVgpuTypeParams(blob.rmctrlPayload, { baseOffset: payloadOffset });
    const agree = isDeepStrictEqual(p.infos.map(kernelTypeFromInfo), blob.types);
    return `ADD_VGPU_TYPE params (NVA081_CTRL_VGPU_INFO, r570.144 layout), ${p.infos.length} records, ${agree ? 'consistent with' : 'DIFFERENT FROM'} the kernel records`;
  } catch (e) {
    return `opaque to vgpud (${isVgpuError(e) ? e.message : String(e)})`;
  }
}

/** The GSP records of a blob, or null when the payload is not ADD_VGPU_TYPE params this build can read. */
function infosOf(blob: MetadataBlob): readonly VgpuInfoRecord[] | null {
  if (blob.rmctrlCmd !== NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE) return null;
  try {
    return decodeAddVgpuTypeParams(blob.rmctrlPayload).infos;
  } catch {
    return null;
  }
}

const bigToString = (r: object): Record<string, unknown> =>
  Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]));

/** Every modelled field of one GSP record with its byte offset in the file. */
function printRecord(info: VgpuInfoRecord, recordOffset: number): void {
  console.log(`  record @${recordOffset} (${VGPU_INFO.bytes} bytes): type ${info.id}`);
  const at: Record<string, number> = {
    id: VGPU_INFO.vgpuType, name: VGPU_INFO.vgpuName, vgpuClass: VGPU_INFO.vgpuClass, license: VGPU_INFO.license,
    maxInstance: VGPU_INFO.maxInstance, numHeads: VGPU_INFO.numHeads, maxResolutionX: VGPU_INFO.maxResolutionX,
    maxResolutionY: VGPU_INFO.maxResolutionY, maxPixels: VGPU_INFO.maxPixels, frlConfig: VGPU_INFO.frlConfig,
    cudaEnabled: VGPU_INFO.cudaEnabled, eccSupported: VGPU_INFO.eccSupported, multiVgpuSupported: VGPU_INFO.multiVgpuSupported,
    vdevId: VGPU_INFO.vdevId, pdevId: VGPU_INFO.pdevId, profileSize: VGPU_INFO.profileSize, fbLength: VGPU_INFO.fbLength,
    gspHeapSize: VGPU_INFO.gspHeapSize, fbReservation: VGPU_INFO.fbReservation, bar1LengthMiB: VGPU_INFO.bar1Length,
    frlEnable: VGPU_INFO.frlEnable,
  };
  for (const [k, v] of Object.entries(info)) {
    if (k === 'series') continue;
    const shown = typeof v === 'bigint' ? `${v} (${mib(v)} MiB)` : k === 'vdevId' || k === 'pdevId' ? hex(v as number, 8) : JSON.stringify(v);
    console.log(`    +${String(at[k]).padStart(4)}  ${k.padEnd(19)} ${shown}`);
  }
}

function toJson(file: MetadataFile, size: number, crc: number): unknown {
  return {
    size,
    crc32: crc,
    vgpuMajor: file.vgpuMajor,
    vgpuMinor: file.vgpuMinor,
    gspVersion: file.gspVersion,
    blobs: file.blobs.map((b) => ({
      deviceId: b.deviceId,
      rmctrlCmd: b.rmctrlCmd,
      rmctrlSize: b.rmctrlPayload.byteLength,
      types: b.types.map((t) => ({
        ...t,
        fbLength: t.fbLength.toString(),
        gspHeapSize: t.gspHeapSize.toString(),
        fbReservation: t.fbReservation.toString(),
      })),
      /** The GSP records (NVA081_CTRL_VGPU_INFO), or null when the payload is opaque to this build. */
      gspRecords: infosOf(b)?.map(bigToString) ?? null,
    })),
  };
}

function printTable(file: MetadataFile, path: string, size: number, crc: number, records: boolean): void {
  console.log(`${path}: ${size} bytes, crc32 ${hex(crc, 8)} over [${CRC_START}, ${size})`);
  console.log(`vGPU ${file.vgpuMajor}.${file.vgpuMinor}, GSP ${file.gspVersion}, ${file.blobs.length} blob(s)`);
  let pos: number = HDR.size;
  file.blobs.forEach((b, i) => {
    const payloadOffset = pos + BLOB_HDR.bytes + TYPE_BLOB_HDR.bytes + b.types.length * TYPE_RECORD.bytes;
    console.log(`\nblob ${i}: device ${hex(b.deviceId)}, ${b.types.length} types, rmctrl ${hex(b.rmctrlCmd, 8)} (${b.rmctrlPayload.byteLength} bytes: ${describePayload(b, payloadOffset)})`);
    const infos = infosOf(b);
    const byId = new Map((infos ?? []).map((i) => [i.id, i]));
    const rows = [['ID', 'NAME', 'PROFILE MiB', 'GUEST MiB', 'HEAP MiB', 'BAR1 MiB', 'MAX', 'HEADS', 'RESOLUTION', 'ECC', 'VDEV']];
    for (const t of b.types) {
      const i = byId.get(t.id);
      rows.push([String(t.id), t.name, i ? mib(i.profileSize) : '?', mib(t.fbLength), mib(t.gspHeapSize), String(t.bar1LengthMiB),
        String(t.maxInstance), i ? String(i.numHeads) : '?', i ? `${i.maxResolutionX}x${i.maxResolutionY}` : '?', t.eccSupported ? 'yes' : 'no', hex(t.vdevId, 8)]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log('  ' + r.map((cell, c) => (c === 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    if (records && infos !== null) {
      infos.forEach((info, n) => printRecord(info, payloadOffset + ADD_VGPU_TYPE_PARAMS.vgpuInfo + n * VGPU_INFO.bytes));
    }
    pos = payloadOffset + b.rmctrlPayload.byteLength;
  });
}

function main(): number {
  const { values, positionals } = parseArgs({
    options: { json: { type: 'boolean', default: false }, records: { type: 'boolean', default: false } }, allowPositionals: true, strict: true,
  });
  const path = positionals[0];
  if (!path || positionals.length > 1) {
    console.error('usage: npm run metadata:dump -- FILE [--json] [--records]');
    return 2;
  }
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    console.error(`error: cannot read ${path}: ${(e as Error).message}`);
    return 1;
  }
  try {
    const file = parseMetadata(bytes);
    const crc = computeFileCrc(bytes);
    if (values.json) console.log(JSON.stringify(toJson(file, bytes.byteLength, crc), null, 2));
    else printTable(file, path, bytes.byteLength, crc, values.records === true);
    return 0;
  } catch (e) {
    if (!isVgpuError(e)) throw e;
    if (values.json) console.log(JSON.stringify({ error: e.toJSON() }, null, 2));
    console.error(`error ${e.code}: ${e.message}\n  hint: ${e.hint}`);
    return 1;
  }
}

// `dump | head` closes the pipe early; that is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = main();
