/**
 * `npm run metadata:dump -- FILE [--json]`: show what a metadata file installs — for operators holding a file from
 * elsewhere. On a bad file prints the typed error (byte offset + field) and exits 1.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isVgpuError } from '../core/contracts/exceptions.js';
import type { MetadataBlob, MetadataFile } from '../core/metadata/metadata-file.js';
import { computeFileCrc, CRC_START, HDR, MiB, NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE, TYPE_BLOB_HDR, BLOB_HDR, TYPE_RECORD } from '../core/metadata/metadata-format.js';
import { parseMetadata } from '../core/metadata/metadata-reader.js';
import { decodeAddVgpuTypeParams, kernelTypeFromInfo } from '../core/metadata/vgpu-info-record.js';
import { isDeepStrictEqual } from 'node:util';

const hex = (n: number, w = 4): string => `0x${n.toString(16).padStart(w, '0')}`;
const mib = (b: bigint): string => (b % MiB === 0n ? String(b / MiB) : (Number(b) / 2 ** 20).toFixed(2));

/** What the RM-control payload is: our ADD_VGPU_TYPE params (and whether they agree with the records), or opaque. */
function describePayload(blob: MetadataBlob, payloadOffset: number): string {
  if (blob.rmctrlCmd !== NV2080_CTRL_CMD_VGPU_MGR_INTERNAL_PGPU_ADD_VGPU_TYPE) return 'opaque (not ADD_VGPU_TYPE)';
  try {
    const p = decodeAddVgpuTypeParams(blob.rmctrlPayload, { baseOffset: payloadOffset });
    const agree = isDeepStrictEqual(p.infos.map(kernelTypeFromInfo), blob.types);
    return `vgpud ADD_VGPU_TYPE params, ${p.infos.length} records, ${agree ? 'consistent with' : 'DIFFERENT FROM'} the kernel records`;
  } catch (e) {
    return `opaque to vgpud (${isVgpuError(e) ? e.message : String(e)})`;
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
    })),
  };
}

function printTable(file: MetadataFile, path: string, size: number, crc: number): void {
  console.log(`${path}: ${size} bytes, crc32 ${hex(crc, 8)} over [${CRC_START}, ${size})`);
  console.log(`vGPU ${file.vgpuMajor}.${file.vgpuMinor}, GSP ${file.gspVersion}, ${file.blobs.length} blob(s)`);
  let pos: number = HDR.size;
  file.blobs.forEach((b, i) => {
    const payloadOffset = pos + BLOB_HDR.bytes + TYPE_BLOB_HDR.bytes + b.types.length * TYPE_RECORD.bytes;
    console.log(`\nblob ${i}: device ${hex(b.deviceId)}, ${b.types.length} types, rmctrl ${hex(b.rmctrlCmd, 8)} (${b.rmctrlPayload.byteLength} bytes: ${describePayload(b, payloadOffset)})`);
    const rows = [['ID', 'NAME', 'FB MiB', 'HEAP MiB', 'BAR1 MiB', 'MAX', 'ECC', 'VDEV']];
    for (const t of b.types) {
      rows.push([String(t.id), t.name, mib(t.fbLength), mib(t.gspHeapSize), String(t.bar1LengthMiB), String(t.maxInstance), t.eccSupported ? 'yes' : 'no', hex(t.vdevId, 8)]);
    }
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows) console.log('  ' + r.map((cell, c) => (c === 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  '));
    pos = payloadOffset + b.rmctrlPayload.byteLength;
  });
}

function main(): number {
  const { values, positionals } = parseArgs({ options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const path = positionals[0];
  if (!path || positionals.length > 1) {
    console.error('usage: npm run metadata:dump -- FILE [--json]');
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
    else printTable(file, path, bytes.byteLength, crc);
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
