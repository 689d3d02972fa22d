/**
 * vgpuctl's commands for a host's SR-IOV state: `vfs` (a GPU's VFs and their types), `sriov` (read or write the
 * PF's sriov_numvfs), `unmanaged` (VFs whose type vgpud did not set, or that changed behind its back) and `adopt`
 * (take such VFs over). Registered on the program by vgpuctl-program.ts.
 */
import type { Command } from 'commander';
import type { ApiClient } from './api-client.js';
import { CliError, EXIT } from './exit-codes.js';
import { table, type GpuRow } from './format.js';

interface Unmanaged { gpu: string; vf: number; vfBdf: string; typeId: number; typeName?: string; reason: string; vgpuId?: string; expectedTypeId?: number }
interface VfRow { index: number; bdf: string; typeId: number; vgpuId?: string }

export interface HostCommandContext {
  program: Command;
  client: () => Promise<ApiClient>;
  out: (s: string) => void;
  json: (v: unknown) => void;
  example: (cmd: Command, text: string) => Command;
  bdfArg: (what: string) => (v: string) => string;
  intArg: (what: string, min: number) => (v: string) => number;
}

const short = (name: string | undefined): string => (name ?? '').replace(/^NVIDIA\s+/, '');

export function unmanagedText(list: readonly Unmanaged[]): string {
  return table(['VF BDF', 'GPU', 'VF', 'TYPE', 'WHY'], list.map((u) => [
    u.vfBdf, u.gpu, u.vf, u.typeId === 0 ? '0 (none)' : `${u.typeId}${u.typeName ? ` ${short(u.typeName)}` : ''}`,
    u.reason === 'changed'
      ? `changed behind vgpud: it set ${u.expectedTypeId ?? '?'} for ${u.vgpuId ?? '?'}; left alone`
      : 'type set outside vgpud; `vgpuctl adopt` takes it over',
  ]));
}

export function registerHostCommands(c: HostCommandContext): void {
  const { program, client, out, json, example, bdfArg, intArg } = c;

  example(program.command('vfs').description('a GPU\'s enabled VFs and the vGPU type of each (current_vgpu_type)')
    .argument('<gpu-bdf>', 'GPU address', bdfArg('GPU address')).option('--json', 'print JSON'), 'vgpuctl vfs 0000:41:00.0')
    .action(async (gpu: string, o: { json?: boolean }) => {
      const r = await (await client()).call<{ vfs: VfRow[] }>('GET', `/v1/gpus/${gpu}/vfs`);
      if (o.json) return json(r);
      out(r.vfs.length === 0 ? `no VFs enabled on ${gpu} (vgpuctl sriov ${gpu} N enables them)`
        : table(['VF', 'VF BDF', 'TYPE', 'VGPU'], r.vfs.map((v) => [v.index, v.bdf, v.typeId, v.vgpuId ?? '-'])));
    });

  example(program.command('sriov').description('show a GPU\'s VF count, or set it (sriov_numvfs, with the kernel\'s rules: change only through 0)')
    .argument('<gpu-bdf>', 'GPU address', bdfArg('GPU address'))
    .argument('[count]', 'VFs to enable (0 disables them)', intArg('count', 0)).option('--json', 'print JSON'),
  'vgpuctl sriov 0000:41:00.0 32')
    .action(async (gpu: string, count: number | undefined, o: { json?: boolean }) => {
      if (count === undefined) {
        const r = await (await client()).call<{ gpus: (GpuRow & { totalVfs: number; numVfs?: number })[] }>('GET', '/v1/gpus');
        const g = r.gpus.find((x) => x.bdf.toLowerCase() === gpu);
        if (g === undefined) throw new CliError(`no GPU ${gpu}`, EXIT.refused, 'vgpuctl gpus lists them');
        if (o.json) return json({ gpu, numVfs: g.numVfs, totalVfs: g.totalVfs });
        return out(`${gpu}: ${g.numVfs ?? '?'} of ${g.totalVfs} VFs enabled`);
      }
      const r = await (await client()).call('PUT', `/v1/gpus/${gpu}/sriov`, { numVfs: count });
      if (o.json) return json(r);
      out(`${gpu}: ${count} VFs enabled`);
    });

  example(program.command('unmanaged').description('VFs with a vGPU type vgpud did not set, or that changed behind its back (left alone)')
    .option('--gpu <bdf>', 'only this GPU', bdfArg('--gpu')).option('--json', 'print JSON'), 'vgpuctl unmanaged')
    .action(async (o: { gpu?: string; json?: boolean }) => {
      const r = await (await client()).call<{ vfs: Unmanaged[] }>('GET', `/v1/unmanaged${o.gpu ? `?gpu=${o.gpu}` : ''}`);
      if (o.json) return json(r);
      out(r.vfs.length === 0 ? 'none: vgpud set every vGPU type on this host' : unmanagedText(r.vfs));
    });

  example(program.command('adopt').description('take over vGPUs that existed before vgpud (VFs with a type it did not set)')
    .argument('[vf-bdf...]', 'only these VFs (default: all, or all of --gpu)')
    .option('--gpu <bdf>', 'only this GPU', bdfArg('--gpu')).option('--json', 'print JSON'), 'vgpuctl adopt --gpu 0000:41:00.0')
    .action(async (vfs: string[], o: { gpu?: string; json?: boolean }) => {
      const list = vfs.map((v) => bdfArg('VF address')(v));
      const r = await (await client()).call<{ adopted: { id: string; vfBdf: string; typeName: string }[]; skipped: { vfBdf: string; why: string }[] }>(
        'POST', '/v1/adopt', { ...(o.gpu !== undefined ? { gpu: o.gpu } : {}), ...(list.length > 0 ? { vfs: list } : {}) });
      if (o.json) return json(r);
      if (r.adopted.length === 0 && r.skipped.length === 0) return out('nothing to adopt');
      for (const a of r.adopted) out(`adopted ${a.vfBdf} as ${a.id} (${short(a.typeName)})`);
      for (const s of r.skipped) out(`skipped ${s.vfBdf}: ${s.why}`);
      if (r.adopted.length === 0) throw new CliError('', EXIT.refused);
    });
}
