/**
 * What can still be read from a damaged journal record. A truncated file keeps its first lines, and the encoder
 * writes the fields a quarantine needs first (gpu, vf, type, placement), so a field-by-field scan of the text finds
 * them even when the JSON as a whole does not parse. Salvaged values are used only to keep things out of reach
 * (quarantine) and to tear them down on an operator's release, never to re-attach a vGPU.
 */
import type { JournalGpu, SalvagedVgpu } from '../../core/contracts/vgpu-journal.js';

const BDF = /^[0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$/;
const MAX_HANDLE = 0xffffffff;

const num = (text: string, key: string): number | undefined => {
  const m = new RegExp(`"${key}"\\s*:\\s*(\\d{1,10})\\s*[,}\\n]`).exec(text);
  const v = m === null ? NaN : Number(m[1]);
  return Number.isSafeInteger(v) ? v : undefined;
};
const str = (text: string, key: string, pattern: string): string | undefined =>
  new RegExp(`"${key}"\\s*:\\s*"(${pattern})"`).exec(text)?.[1];
const bool = (text: string, key: string): boolean | undefined => {
  const m = new RegExp(`"${key}"\\s*:\\s*(true|false)\\b`).exec(text);
  return m === null ? undefined : m[1] === 'true';
};
/** `"key": { "a": N, "b": N }` with both members present (a cut object gives nothing). */
const pair = (text: string, key: string, a: string, b: string, quoted: boolean): [string, string] | undefined => {
  const v = quoted ? '"(\\d{1,20})"' : '(\\d{1,10})';
  const m = new RegExp(`"${key}"\\s*:\\s*\\{\\s*"${a}"\\s*:\\s*${v}\\s*,\\s*"${b}"\\s*:\\s*${v}\\s*\\}`).exec(text);
  return m === null ? undefined : [m[1]!, m[2]!];
};

export function salvageVgpu(text: string, id: string): SalvagedVgpu {
  const out: SalvagedVgpu = { id };
  const gpu = str(text, 'gpu', '[0-9a-fA-F:.]{7,16}');
  if (gpu !== undefined && BDF.test(gpu)) out.gpu = gpu.toLowerCase();
  const vf = num(text, 'vf');
  if (vf !== undefined && vf < 256) out.vf = vf;
  const typeId = num(text, 'typeId');
  if (typeId !== undefined && typeId > 0 && typeId < 0x10000) out.typeId = typeId;
  const placementId = num(text, 'placementId');
  if (placementId !== undefined && placementId < 0x10000) out.placementId = placementId;
  const state = str(text, 'state', 'creating|ready|stopping');
  if (state !== undefined) out.state = state as SalvagedVgpu['state'] & string;
  const autoSelected = bool(text, 'autoSelected');
  if (autoSelected !== undefined) out.autoSelected = autoSelected;
  const pluginTask = bool(text, 'pluginTask');
  if (pluginTask !== undefined) out.pluginTask = pluginTask;
  const chids = pair(text, 'chids', 'offset', 'count', false);
  if (chids !== undefined && Number(chids[1]) > 0) out.chids = { offset: Number(chids[0]), count: Number(chids[1]) };
  const guestFb = pair(text, 'guestFb', 'offset', 'size', true);
  if (guestFb !== undefined && BigInt(guestFb[1]) > 0n) out.guestFb = { offset: BigInt(guestFb[0]), size: BigInt(guestFb[1]) };
  const heap = pair(text, 'heap', 'offset', 'size', true);
  if (heap !== undefined && BigInt(heap[1]) > 0n) out.heap = { offset: BigInt(heap[0]), size: BigInt(heap[1]) };
  const clientHandle = num(text, 'clientHandle');
  if (clientHandle !== undefined && clientHandle > 0 && clientHandle <= MAX_HANDLE) out.clientHandle = clientHandle;
  const client = /"client"\s*:\s*\{\s*"hClient"\s*:\s*(\d{1,10})\s*,\s*"hDevice"\s*:\s*(\d{1,10})\s*,\s*"hSubdevice"\s*:\s*(\d{1,10})\s*\}/.exec(text);
  if (client !== null) {
    const [h, d, s] = [Number(client[1]), Number(client[2]), Number(client[3])];
    if ([h, d, s].every((x) => x > 0 && x <= MAX_HANDLE)) out.client = { hClient: h, hDevice: d, hSubdevice: s };
  }
  return out;
}

/** A damaged GPU record: the manager client handles and VF type selections that can still be read. */
export function salvageGpu(text: string, bdf: string): JournalGpu {
  const managerClients: number[] = [];
  const list = /"managerClients"\s*:\s*\[([\d\s,]*)\]/.exec(text);
  for (const h of list?.[1]?.split(',') ?? []) {
    const v = Number(h.trim());
    if (h.trim() !== '' && Number.isInteger(v) && v > 0 && v <= MAX_HANDLE) managerClients.push(v);
  }
  const selections: JournalGpu['selections'] = [];
  const sel = /\{\s*"vf"\s*:\s*(\d{1,3})\s*,\s*"typeId"\s*:\s*(\d{1,5})\s*,\s*"placementId"\s*:\s*(\d{1,5})\s*\}/g;
  for (let m = sel.exec(text); m !== null; m = sel.exec(text)) {
    selections.push({ vf: Number(m[1]), typeId: Number(m[2]), placementId: Number(m[3]) });
  }
  return { bdf, managerClients, selections, updatedAt: 0 };
}
