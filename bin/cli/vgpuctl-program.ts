/**
 * vgpuctl: the command-line face of the control API. `runVgpuctl(argv)` returns the exit code instead of exiting,
 * so tests run it in-process against a fake daemon.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { BDF_PATTERN } from '../../core/config/bdf-pattern.js';
import { REQUEST_ID_PATTERN } from '../../core/contracts/request-journal.js';
import { formatDuration } from '../../core/logging/round-durations.js';
import { httpStatusFor } from '../../plugins/api/http-status.js';
import type { ApiClient } from './api-client.js';
import { clientSocketPath } from './default-paths.js';
import { CliError, EXIT, EXIT_CODES_HELP } from './exit-codes.js';
import { bytes, gpuTable, table, type GpuRow } from './format.js';
import { registerHostCommands, unmanagedText } from './host-commands.js';
import { ProgressBar } from './progress-bar.js';
import { vmmArgs } from './vmm-args.js';

export interface CliIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WriteStream | (NodeJS.WritableStream & { isTTY?: boolean; columns?: number });
  env: NodeJS.ProcessEnv;
}

/** A vGPU as the API sends it; fb, chids and inUse are absent where the kernel keeps them (sysfs backend). */
interface Vgpu {
  id: string; gpu: string; vf: number; vfBdf: string; typeId: number; typeName: string; state: string; inUse?: boolean;
  fb?: { offset: string; size: string }; profileFbBytes?: string; chids?: { offset: number; count: number }; createdAt: number;
  maxInstances?: number; maxInstancesMixed?: number; mixedPlacementId?: number;
  lastScrub?: { at: number; bytes: string; durationMs: number; verified: boolean | null; reason: string };
  error?: { code: string; message: string; step?: string };
  vfioUser?: { socket: string; attached: boolean; clientPid?: number };
  /** Who holds it (on a Kubernetes node: the pod the kubelet allocated it to). */
  holder?: { namespace: string; pod: string; container?: string; resource?: string };
}
interface Quarantined { gpu: string; vf: number; vfBdf: string; vgpuId?: string; reason: string; unknown: string[]; blocksCreates: boolean }
interface TypeRow { id: number; name: string; fbBytes?: string; profileFbBytes?: string; guestFbBytes?: string; maxInstances?: number; maxInstancesMixed?: number; available: number }

/** A size the backend may not know: "-" then (the sysfs backend does not learn a type's guest FB). */
const maybeBytes = (v: string | undefined): string => (v === undefined ? '-' : bytes(v));
/** The FB column of a vGPU: its guest FB, else its profile ("24.0 GiB profile"), else "-". */
const vgpuFb = (v: Vgpu): string => (v.fb !== undefined ? bytes(v.fb.size) : v.profileFbBytes !== undefined ? `${bytes(v.profileFbBytes)} profile` : '-');
const inUseText = (v: Vgpu): string => (v.inUse === undefined ? '?' : v.inUse ? 'yes' : 'no');
interface PlanJson {
  gpus: { gpu: string; destroy: { id: string; typeName: string; inUse: boolean }[]; create: { typeName: string }[] }[];
  changes: number;
  blocked: { id: string }[];
  notes?: string[];
}
interface RequestJson {
  id: string; state: string; createdAt: number; updatedAt: number;
  intent: { kind: 'create'; gpu: string; type: string | number; count: number } | { kind: 'apply'; config: string; desired: { gpu: string }[] };
  steps: { kind: string; gpu: string; vgpu?: string; done: boolean }[];
  result?: { created: string[]; destroyed: string[] };
  error?: { code: string; message: string };
  recovered?: { action: string; note: string };
}

const bdfArg = (what: string) => (v: string): string => {
  if (!BDF_PATTERN.test(v)) throw new CliError(`${what} '${v}' is not a PCI address`, EXIT.usage, 'write it like 0000:41:00.0 (vgpuctl gpus lists them)');
  return v.toLowerCase();
};
const requestIdArg = (v: string): string => {
  if (!REQUEST_ID_PATTERN.test(v)) throw new CliError(`--request-id '${v}' is not valid`, EXIT.usage, 'use 1–64 letters, digits, ".", "_" or "-"');
  return v;
};
const intArg = (what: string, min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new CliError(`${what} must be an integer ≥ ${min}, got '${v}'`, EXIT.usage);
  return n;
};
/** Where `migrate --to` may point: a GPU BDF, a Unix socket path, or host:port. */
const toArg = (v: string): string => {
  if (BDF_PATTERN.test(v)) return v.toLowerCase();
  if (v.includes('/') || /^[\w.-]*:\d{1,5}$/.test(v)) return v;
  throw new CliError(`--to '${v}' is neither a GPU address, a socket path nor host:port`, EXIT.usage,
    'write 0000:42:00.0 (a GPU of this daemon), /run/vgpud/migrate.sock (another daemon\'s plugins.migration.listen) or host:7000');
};

interface MigrateProgress { phase: string; pass?: number; sentBytes?: number; fbBytes?: number; predictedDowntimeMs?: number }

/** A progress line of the migrate route as a bar label and fraction (pre-copy: FB bytes sent of the FB size). */
function migrateProgress(id: string, p: MigrateProgress): [string, number | undefined] {
  const down = p.predictedDowntimeMs !== undefined && Number.isFinite(p.predictedDowntimeMs) ? `, downtime ~${Math.round(p.predictedDowntimeMs)} ms` : '';
  switch (p.phase) {
    case 'estimate': return [`${id}: estimating${down}`, 0];
    case 'precopy': return [`${id}: pre-copy pass ${p.pass ?? '?'}${down}`, undefined];
    case 'stop-copy': return [`${id}: stop-copy (guest paused)`, 0.9];
    case 'restore': return [`${id}: restoring at the destination`, 0.95];
    case 'done': return [`${id}: done`, 1];
    default: return [`${id}: ${p.phase}`, undefined];
  }
}

const short = (name: string): string => name.replace(/^NVIDIA\s+/, '');

function planText(plan: PlanJson): string {
  const notes = (plan.notes ?? []).map((n) => `\n  note: ${n}`).join('');
  if (plan.changes === 0) return `no changes: the layout is applied${notes}`;
  const lines: string[] = [];
  for (const g of plan.gpus) {
    for (const d of g.destroy) lines.push(`  ${g.gpu}  - destroy ${d.id} (${short(d.typeName)})${d.inUse ? '  IN USE' : ''}`);
    const counts = new Map<string, number>();
    for (const c of g.create) counts.set(c.typeName, (counts.get(c.typeName) ?? 0) + 1);
    for (const [t, n] of counts) lines.push(`  ${g.gpu}  + create ${n} × ${short(t)}`);
  }
  return `${plan.changes} change(s):\n${lines.join('\n')}${notes}`;
}

function requestText(r: RequestJson): string {
  const what = r.intent.kind === 'create' ? `create ${r.intent.count} × ${String(r.intent.type)} on ${r.intent.gpu}` : `apply of layout config '${r.intent.config}'`;
  const rows: [string, string][] = [
    ['request', `${r.id} (${what})`], ['state', r.state],
    ['steps', `${r.steps.filter((s) => s.done).length} of ${r.steps.length} done`],
    ['started', new Date(r.createdAt).toISOString()],
  ];
  if (r.result !== undefined) {
    if (r.result.created.length > 0) rows.push(['created', r.result.created.join(', ')]);
    if (r.result.destroyed.length > 0) rows.push(['destroyed', r.result.destroyed.join(', ')]);
  }
  if (r.error !== undefined) rows.push(['error', `${r.error.code}: ${r.error.message}`]);
  if (r.recovered !== undefined) rows.push(['restart', `${r.recovered.action}: ${r.recovered.note}`]);
  return rows.map(([k, v]) => `${k.padEnd(9)} ${v}`).join('\n');
}

export async function runVgpuctl(argv: string[], io: CliIo = { stdout: process.stdout, stderr: process.stderr, env: process.env }): Promise<number> {
  const out = (s: string): void => { io.stdout.write(s.endsWith('\n') || s === '' ? s : `${s}\n`); };
  const program = new Command('vgpuctl');
  program
    .description('Control vgpud: list GPUs and vGPU types, create and destroy vGPUs, apply layouts.')
    .addOption(new Option('--socket <path>', 'daemon socket (default: $VGPUD_SOCKET, $XDG_RUNTIME_DIR/vgpud.sock, /tmp/vgpud-$UID.sock; /run/vgpud/vgpud.sock as root)'))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', `\nExample:\n  vgpuctl types\n  vgpuctl create --gpu 0000:41:00.0 --type RTX6000-Ada-24Q --count 2\n${EXIT_CODES_HELP}`);

  // Loaded on first use: `vgpuctl --help` and usage errors never pay for node:http (startup: bench/startup-bench.ts).
  const client = async (): Promise<ApiClient> => {
    const { ApiClient: Client } = await import('./api-client.js');
    return new Client(clientSocketPath(program.opts<{ socket?: string }>().socket, io.env));
  };
  const example = (cmd: Command, text: string): Command => cmd.addHelpText('after', `\nExample:\n  ${text}\n${EXIT_CODES_HELP}`);
  const json = (v: unknown): void => out(JSON.stringify(v, null, 2));

  /**
   * Send a multi-step request under an id this CLI chose first, so that if the connection is lost half-way (the
   * daemon crashed or restarted) the operator can still ask what became of it.
   */
  async function asRequest<T>(id: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof CliError && e.errno !== undefined && !e.neverSent) {
        throw new CliError(`lost the connection to vgpud during request ${id} (${e.errno}); the daemon finishes or rolls it back when it is back`,
          EXIT.daemon, `ask what became of it: vgpuctl request ${id}`, e.errno);
      }
      throw e;
    }
  }
  // node:crypto loaded on use, like the API client: the --help path never needs it.
  const newRequestId = async (): Promise<string> => `ctl-${(await import('node:crypto')).randomUUID()}`;

  /** Run a mutating call with a progress bar fed by /v1/events (TTY only, not with --json). */
  async function withProgress<T>(label: string, asJson: boolean, fn: () => Promise<T>): Promise<T> {
    const tty = !asJson && (io.stderr as { isTTY?: boolean }).isTTY === true;
    if (!tty) return fn();
    const bar = new ProgressBar(io.stderr as NodeJS.WriteStream, true);
    bar.update(label, 0);
    let stream: { close: () => void } | undefined;
    try {
      stream = await (await client()).stream('/v1/events?events=vgpu:state,vgpu:step,scrub:progress', (e) => {
        const d = e.data as Record<string, unknown>;
        if (e.event === 'scrub:progress') bar.update(`${label}: scrub ${String(d.vgpuId)}`, Number(d.done) / Number(d.total));
        else if (e.event === 'vgpu:step') bar.update(`${label}: ${String(d.vgpuId)} ${String(d.step)} ${String(d.phase)}`);
        else if (e.event === 'vgpu:state') bar.update(`${label}: ${String(d.vgpuId)} → ${String(d.to)}`);
      });
    } catch {
      // No progress is no reason to fail the action itself.
    }
    try {
      return await fn();
    } finally {
      stream?.close();
      bar.done();
    }
  }

  example(program.command('status').description('daemon status: GPUs, vGPU counts, plugins, socket')
    .option('--json', 'print JSON'), 'vgpuctl status')
    .action(async (o: { json?: boolean }) => {
      const s = await (await client()).call<{
        pid: number; uptimeSec: number; socket?: string; healthy?: boolean; gpus: GpuRow[]; unmanaged?: { bdf: string; reason: string }[];
        vgpus: { total: number; byState: Record<string, number> }; plugins?: { name: string; state: string }[]; quarantine?: Quarantined[];
        unmanagedVfs?: Parameters<typeof unmanagedText>[0];
      }>('GET', '/v1/status');
      // Not healthy = a configured GPU is not managed: the exit code says so to scripts and health checks.
      const problems = [
        ...s.gpus.filter((g) => g.state !== 'ready' && g.state !== 'suspended').map((g) => `GPU ${g.bdf} is ${g.state}: ${g.reason ?? 'no reason given'}`),
        ...(s.unmanaged ?? []).map((u) => `GPU ${u.bdf} is not managed: ${u.reason}`),
      ];
      const code = s.healthy === false || problems.length > 0 ? EXIT.degraded : EXIT.ok;
      if (o.json) {
        json(s);
        if (code !== EXIT.ok) throw new CliError('', code);
        return;
      }
      out(`vgpud pid ${s.pid}, up ${s.uptimeSec}s, socket ${s.socket ?? '?'}`);
      out(`vGPUs: ${s.vgpus.total}${Object.keys(s.vgpus.byState).length ? ` (${Object.entries(s.vgpus.byState).map(([k, v]) => `${v} ${k}`).join(', ')})` : ''}`);
      if (s.plugins) out(`plugins: ${s.plugins.map((p) => `${p.name}(${p.state})`).join(' ')}`);
      out(s.gpus.length === 0 ? 'no GPUs managed' : gpuTable(s.gpus));
      for (const q of s.quarantine ?? []) {
        out(`QUARANTINED VF ${q.vfBdf} (VF ${q.vf} of ${q.gpu}${q.vgpuId !== undefined ? `, was ${q.vgpuId}` : ''}): ${q.reason}`);
        out(`  unknown: ${q.unknown.length > 0 ? q.unknown.join(', ') : 'nothing'}${q.blocksCreates ? ' — creates on this GPU wait for the release' : ''}`);
        out(`  release (tears down what the device may still hold for it): vgpuctl vf ${q.vfBdf} release`);
      }
      if (s.unmanagedVfs !== undefined && s.unmanagedVfs.length > 0) {
        out(`\n${s.unmanagedVfs.length} VF(s) vgpud leaves alone (a type it did not set, or one changed behind its back):`);
        out(unmanagedText(s.unmanagedVfs));
      }
      if (problems.length > 0) throw new CliError(problems.join('\n         '), code);
    });

  example(program.command('gpus').description('list the physical GPUs the daemon manages').option('--json', 'print JSON'), 'vgpuctl gpus --json')
    .action(async (o: { json?: boolean }) => {
      const r = await (await client()).call<{ gpus: GpuRow[] }>('GET', '/v1/gpus');
      if (o.json) return json(r);
      out(r.gpus.length === 0 ? 'no GPUs' : gpuTable(r.gpus));
    });

  example(program.command('types').description('vGPU types creatable now (--all: every supported type)')
    .option('--gpu <bdf>', 'GPU address (default: every GPU)', bdfArg('--gpu'))
    .option('--all', 'include types that cannot be created right now')
    .option('--json', 'print JSON'), 'vgpuctl types --gpu 0000:41:00.0 --all')
    .action(async (o: { gpu?: string; all?: boolean; json?: boolean }) => {
      const c = await client();
      const gpus = o.gpu !== undefined ? [o.gpu] : (await c.call<{ gpus: GpuRow[] }>('GET', '/v1/gpus')).gpus.map((g) => g.bdf);
      const result: { gpu: string; types: TypeRow[] }[] = [];
      for (const g of gpus) result.push(await c.call<{ gpu: string; types: TypeRow[] }>('GET', `/v1/gpus/${g}/types${o.all ? '?all=1' : ''}`));
      if (o.json) return json(o.gpu !== undefined ? result[0] : { gpus: result });
      // PROFILE is the nominal size NVIDIA lists; GUEST FB what the VM sees once the heap is placed inside it. MAX is
      // NVIDIA's equal-size maximum (policy homogeneous), MIXED its mixed-size one (policy heterogeneous).
      const rows = result.flatMap((r) => r.types.map((t) => [
        r.gpu, t.id, short(t.name), maybeBytes(t.profileFbBytes), maybeBytes(t.guestFbBytes), t.maxInstances ?? '-', t.maxInstancesMixed ?? '-', t.available,
      ]));
      out(rows.length === 0 ? `no creatable types${o.all ? '' : ' right now (try --all)'}` : table(['GPU', 'ID', 'TYPE', 'PROFILE', 'GUEST FB', 'MAX', 'MIXED', 'AVAILABLE'], rows));
    });

  example(program.command('create').description('create vGPUs of one type on a GPU')
    .requiredOption('--gpu <bdf>', 'GPU address', bdfArg('--gpu'))
    .requiredOption('--type <name>', 'type name or id: RTX6000-Ada-24Q, 24Q, or the numeric id')
    .option('--count <n>', 'how many (all or none are created)', intArg('--count', 1), 1)
    .option('--vf <index>', 'VF index for the first one (default: first free)', intArg('--vf', 0))
    .option('--request-id <id>', 'id of this request, to ask about it later (default: a new random one)', requestIdArg)
    .option('--json', 'print JSON'), 'vgpuctl create --gpu 0000:41:00.0 --type RTX6000-Ada-24Q --count 2')
    .action(async (o: { gpu: string; type: string; count: number; vf?: number; requestId?: string; json?: boolean }) => {
      const type = /^\d+$/.test(o.type) ? Number(o.type) : o.type;
      const requestId = o.requestId ?? await newRequestId();
      const r = await asRequest(requestId, () => withProgress(`creating ${o.count} × ${o.type}`, o.json === true, async () => (await client()).call<{ vgpus: Vgpu[] }>('POST', '/v1/vgpus', {
        gpu: o.gpu, type, count: o.count, requestId, ...(o.vf !== undefined ? { vf: o.vf } : {}),
      })));
      if (o.json) return json(r);
      out(table(['ID', 'VF', 'VF BDF', 'TYPE', 'STATE', 'FB'], r.vgpus.map((v) => [v.id, v.vf, v.vfBdf, short(v.typeName), v.state, vgpuFb(v)])));
    });

  example(program.command('list').description('list vGPUs').option('--gpu <bdf>', 'only this GPU', bdfArg('--gpu'))
    .option('--json', 'print JSON'), 'vgpuctl list')
    .action(async (o: { gpu?: string; json?: boolean }) => {
      const r = await (await client()).call<{ vgpus: Vgpu[] }>('GET', `/v1/vgpus${o.gpu ? `?gpu=${o.gpu}` : ''}`);
      if (o.json) return json(r);
      // The HOLDER column only where something holds a vGPU (a Kubernetes node), so a plain host's table is unchanged.
      const held = r.vgpus.some((v) => v.holder !== undefined);
      out(r.vgpus.length === 0 ? 'no vGPUs' : table(['ID', 'GPU', 'VF', 'TYPE', 'STATE', 'FB', 'IN USE', 'VMM PID', ...(held ? ['HOLDER'] : [])],
        r.vgpus.map((v) => [v.id, v.gpu, v.vf, short(v.typeName), v.state, vgpuFb(v), inUseText(v), v.vfioUser?.clientPid ?? '-',
          ...(held ? [v.holder ? `${v.holder.namespace}/${v.holder.pod}` : '-'] : [])])));
    });

  example(program.command('show').description('details of one vGPU').argument('<id>', 'vGPU id').option('--json', 'print JSON'), 'vgpuctl show vgpu-1')
    .action(async (id: string, o: { json?: boolean }) => {
      const { vgpu: v } = await (await client()).call<{ vgpu: Vgpu }>('GET', `/v1/vgpus/${encodeURIComponent(id)}`);
      if (o.json) return json({ vgpu: v });
      const rows: [string, string][] = [
        ['id', v.id], ['gpu', v.gpu], ['vf', `${v.vf} (${v.vfBdf})`], ['type', `${short(v.typeName)} (id ${v.typeId})`], ['state', v.state],
        ['fb', v.fb !== undefined
          ? `${bytes(v.fb.size)} guest-visible${v.profileFbBytes !== undefined ? ` of a ${bytes(v.profileFbBytes)} profile` : ''}, at offset 0x${BigInt(v.fb.offset).toString(16)}`
          : `${v.profileFbBytes !== undefined ? `a ${bytes(v.profileFbBytes)} profile; ` : ''}the kernel driver keeps its FB placement`],
        ...(v.chids !== undefined ? [['channels', `${v.chids.count} from ${v.chids.offset}`] as [string, string]] : []),
        ...(v.maxInstances !== undefined ? [['type max', `${v.maxInstances} per GPU in equal-size mode, ${v.maxInstancesMixed ?? 'no rule'} in mixed-size mode`] as [string, string]] : []),
        ...(v.mixedPlacementId !== undefined ? [['placement', `${v.mixedPlacementId} (mixed-size mode, GiB slot)`] as [string, string]] : []),
        ['in use', v.inUse === undefined ? 'unknown (the kernel refuses a change with EBUSY while a VM holds it)' : v.inUse ? 'yes' : 'no'],
        ['created', new Date(v.createdAt).toISOString()],
      ];
      if (v.vfioUser) {
        rows.push(['socket', v.vfioUser.socket]);
        rows.push(['vmm', v.vfioUser.attached ? `attached (pid ${v.vfioUser.clientPid ?? '?'})` : 'none attached']);
      }
      if (v.lastScrub) rows.push(['last scrub', `${bytes(v.lastScrub.bytes)} in ${formatDuration(v.lastScrub.durationMs)} (${v.lastScrub.reason}), verified: ${v.lastScrub.verified === null ? 'not run' : v.lastScrub.verified ? 'yes' : 'FAILED'}`]);
      if (v.error) rows.push(['error', `${v.error.code}: ${v.error.message}${v.error.step ? ` (step ${v.error.step})` : ''}`]);
      if (v.holder) {
        const h = v.holder;
        const more = [h.container !== undefined ? `container ${h.container}` : '', h.resource ?? ''].filter((x) => x !== '');
        rows.push(['holder', `pod ${h.namespace}/${h.pod}${more.length > 0 ? ` (${more.join(', ')})` : ''}`]);
      }
      out(rows.map(([k, val]) => `${k.padEnd(11)} ${val}`).join('\n'));
    });

  example(program.command('qemu-args').description('how to give a vGPU to a VM: the VMM options for its vfio-user socket')
    .argument('<id>', 'vGPU id')
    .option('--libvirt', 'a libvirt domain XML snippet (QEMU command-line passthrough)')
    .option('--cloud-hypervisor', 'cloud-hypervisor options instead of QEMU\'s')
    .option('--json', 'print JSON'), 'vgpuctl qemu-args vgpu-1')
    .action(async (id: string, o: { libvirt?: boolean; cloudHypervisor?: boolean; json?: boolean }) => {
      const { vgpu: v } = await (await client()).call<{ vgpu: Vgpu }>('GET', `/v1/vgpus/${encodeURIComponent(id)}`);
      if (v.vfioUser === undefined) {
        throw new CliError(`${id} is not served through vfio-user`, EXIT.refused, 'enable the vfio-user plugin (plugins.enabled) and check `vgpuctl status`');
      }
      const a = vmmArgs(v.vfioUser.socket);
      if (o.json) return json({ vgpu: v.id, socket: v.vfioUser.socket, ...a });
      out(o.libvirt ? a.libvirt : o.cloudHypervisor ? a.cloudHypervisor.join(' ') : a.qemu.join(' '));
      // Notes on stderr: stdout stays pasteable into a command line.
      for (const n of a.notes) io.stderr.write(`# ${n}\n`);
    });

  example(program.command('destroy').description('destroy a vGPU (its FB is scrubbed)').argument('<id>', 'vGPU id')
    .option('--force', 'destroy even while a VM uses it').option('--json', 'print JSON'), 'vgpuctl destroy vgpu-1 --force')
    .action(async (id: string, o: { force?: boolean; json?: boolean }) => {
      const r = await withProgress(`destroying ${id}`, o.json === true,
        async () => (await client()).call('DELETE', `/v1/vgpus/${encodeURIComponent(id)}${o.force ? '?force=1' : ''}`));
      if (o.json) return json(r);
      out(`destroyed ${id}`);
    });

  example(program.command('reset').description('reset a vGPU like a function-level reset of its VF: firmware RESET, then its FB is scrubbed')
    .argument('<id>', 'vGPU id').option('--force', 'reset even while a VM uses it').option('--json', 'print JSON'), 'vgpuctl reset vgpu-1')
    .action(async (id: string, o: { force?: boolean; json?: boolean }) => {
      const r = await (await client()).call('POST', `/v1/vgpus/${encodeURIComponent(id)}/reset${o.force ? '?force=1' : ''}`);
      if (o.json) return json(r);
      out(`reset ${id}`);
    });

  const readLayout = (file: string): string => {
    try {
      return file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
    } catch (e) {
      throw new CliError(`cannot read layout file ${file}: ${(e as Error).message}`, EXIT.usage);
    }
  };

  example(program.command('apply').description('make the GPUs match a layout (only the difference; rolled back on failure)')
    .argument('<layout-file>', 'YAML layout (version: v1, vgpu-configs: …); - for stdin')
    .option('-c, --config <name>', 'which config of the file (needed when it has several)')
    .option('--dry-run', 'print the plan, change nothing').option('--force', 'destroy in-use vGPUs if the layout needs to')
    .option('--request-id <id>', 'id of this request, to ask about it later (default: a new random one)', requestIdArg)
    .option('--json', 'print JSON'), 'vgpuctl apply layouts.yaml -c two-24q --dry-run')
    .action(async (file: string, o: { config?: string; dryRun?: boolean; force?: boolean; requestId?: string; json?: boolean }) => {
      const requestId = o.requestId ?? await newRequestId();
      const body = { layout: readLayout(file), dryRun: o.dryRun === true, force: o.force === true, requestId, ...(o.config ? { config: o.config } : {}) };
      const r = await asRequest(requestId, () => withProgress('applying layout', o.json === true || o.dryRun === true,
        async () => (await client()).call<{ config: string; plan: PlanJson; applied: boolean }>('POST', '/v1/apply', body)));
      if (o.json) return json(r);
      out(`${o.dryRun ? 'dry run of' : r.applied ? 'applied' : 'nothing to apply for'} '${r.config}': ${planText(r.plan)}`);
    });

  example(program.command('assert').description('check that the GPUs match a layout (exit 1 and the diff if not)')
    .argument('<layout-file>', 'YAML layout; - for stdin').option('-c, --config <name>', 'which config of the file')
    .option('--json', 'print JSON'), 'vgpuctl assert layouts.yaml -c two-24q')
    .action(async (file: string, o: { config?: string; json?: boolean }) => {
      const r = await (await client()).call<{ config: string; ok: boolean; plan: PlanJson }>('POST', '/v1/assert', { layout: readLayout(file), ...(o.config ? { config: o.config } : {}) });
      if (o.json) json(r);
      else out(r.ok ? `layout '${r.config}' is applied` : `layout '${r.config}' is NOT applied; ${planText(r.plan)}`);
      if (!r.ok) throw new CliError('', EXIT.notApplied);
    });

  example(program.command('logs').description('a vGPU\'s log (GSP and lifecycle lines)').argument('<id>', 'vGPU id')
    .option('--lines <n>', 'last N lines', intArg('--lines', 1)).option('--follow', 'keep printing new lines (Ctrl-C to stop)')
    .option('--json', 'print JSON'), 'vgpuctl logs vgpu-1 --lines 50 --follow')
    .action(async (id: string, o: { lines?: number; follow?: boolean; json?: boolean }) => {
      const q = o.lines !== undefined ? `lines=${o.lines}` : '';
      const path = `/v1/vgpus/${encodeURIComponent(id)}/logs`;
      if (!o.follow) {
        const r = await (await client()).call<{ lines: string[] }>('GET', `${path}${q ? `?${q}` : ''}`);
        if (o.json) return json(r);
        for (const l of r.lines) out(l);
        return;
      }
      const print = (v: Record<string, unknown>): void => out(o.json ? JSON.stringify(v) : String(v.line));
      const s = await (await client()).stream(`${path}?follow=1${q ? `&${q}` : ''}`, print);
      await s.done;
    });

  example(program.command('vf').description('read or write a VF\'s admin attribute (the sysfs ABI, byte-exact), or release a quarantined VF')
    .argument('<vf-bdf>', 'VF address', bdfArg('VF address'))
    .argument('<attr>', 'creatable_vgpu_types | current_vgpu_type | release')
    .argument('[value]', 'write this value (sent like `echo VALUE >`, i.e. with a trailing newline)')
    .option('--json', 'print JSON (release)'),
  'vgpuctl vf 0000:41:00.4 current_vgpu_type 0\n  vgpuctl vf 0000:41:00.6 release          # a VF `vgpuctl status` lists as QUARANTINED')
    .action(async (bdf: string, attr: string, value: string | undefined, o: { json?: boolean }) => {
      if (attr === 'release') {
        if (value !== undefined) throw new CliError('release takes no value', EXIT.usage, `vgpuctl vf ${bdf} release`);
        const r = await (await client()).call<{ released: { gpu: string; vf: number; gfid: number; vgpuId?: string; done: string[] } }>('POST', `/v1/vfs/${bdf}/release`);
        if (o.json) return json(r);
        out(`released VF ${bdf} (VF ${r.released.vf} of ${r.released.gpu}${r.released.vgpuId !== undefined ? `, was ${r.released.vgpuId}` : ''}):`);
        for (const d of r.released.done) out(`  ${d}`);
        return;
      }
      if (attr !== 'creatable_vgpu_types' && attr !== 'current_vgpu_type') {
        throw new CliError(`unknown VF attribute '${attr}'`, EXIT.usage, 'use creatable_vgpu_types, current_vgpu_type or release');
      }
      const path = `/v1/vfs/${bdf}/${attr}`;
      if (value === undefined) io.stdout.write(await (await client()).text('GET', path));
      else await (await client()).text('PUT', path, `${value}\n`);
    });

  example(program.command('migrate').description('live-migrate a vGPU to another GPU of this daemon or to another daemon')
    .argument('<id>', 'vGPU id')
    .requiredOption('--to <dest>', 'destination: a GPU address of this daemon, the migration socket of another daemon (a path), or host:port', toArg)
    .option('--downtime-ms <n>', 'longest acceptable guest pause; pre-copy gives up (the source keeps running) if it cannot be met', intArg('--downtime-ms', 1))
    .option('--json', 'print JSON'), 'vgpuctl migrate vgpu-1 --to /run/vgpud/migrate.sock --downtime-ms 300')
    .action(async (id: string, o: { to: string; downtimeMs?: number; json?: boolean }) => {
      const tty = o.json !== true && (io.stderr as { isTTY?: boolean }).isTTY === true;
      const bar = new ProgressBar(io.stderr as NodeJS.WriteStream, tty);
      let result: Record<string, unknown> | undefined;
      let error: { code?: string; message?: string; hint?: string } | undefined;
      try {
        bar.update(`migrating ${id}`, 0);
        await (await client()).postStream(`/v1/vgpus/${encodeURIComponent(id)}/migrate`, { to: o.to, ...(o.downtimeMs !== undefined ? { downtimeMs: o.downtimeMs } : {}) }, (line) => {
          if (line.progress) bar.update(...migrateProgress(id, line.progress as MigrateProgress));
          else if (line.result) result = line.result as Record<string, unknown>;
          else if (line.error) error = line.error as typeof error;
        });
      } finally {
        bar.done();
      }
      // The route answers 200 before the migration runs, so a failure arrives as the last NDJSON line.
      if (error !== undefined || result === undefined) {
        const code = error?.code;
        throw new CliError(`migration of ${id} failed: ${error?.message ?? 'the daemon ended the reply without a result'}${code ? ` (${code})` : ''}`,
          code !== undefined && httpStatusFor(code) < 500 ? EXIT.refused : EXIT.daemon, error?.hint);
      }
      if (o.json) return json({ result });
      const ms = (v: unknown): string => `${Math.round(Number(v))} ms`;
      out(`migrated ${id} to ${String(result.destination)}: now ${String(result.vgpu)} (${String(result.passes)} pre-copy passes, ${bytes(String(result.streamBytes))} sent, total ${ms(result.totalMs)}, guest paused ${ms(result.downtimeMs)})`);
    });

  example(program.command('request').description('what became of a create or apply request (also after a daemon restart)')
    .argument('<id>', 'request id (printed by create/apply, or given with --request-id)').option('--json', 'print JSON'),
  'vgpuctl request ctl-3f2a…')
    .action(async (id: string, o: { json?: boolean }) => {
      const r = await (await client()).call<{ request: RequestJson }>('GET', `/v1/requests/${encodeURIComponent(id)}`);
      if (o.json) return json(r);
      out(requestText(r.request));
    });

  example(program.command('requests').description('recent create and apply requests, newest first')
    .option('--limit <n>', 'how many', intArg('--limit', 1), 20).option('--json', 'print JSON'), 'vgpuctl requests --limit 5')
    .action(async (o: { limit: number; json?: boolean }) => {
      const r = await (await client()).call<{ requests: RequestJson[] }>('GET', `/v1/requests?limit=${o.limit}`);
      if (o.json) return json(r);
      out(r.requests.length === 0 ? 'no requests' : table(['ID', 'KIND', 'STATE', 'STEPS', 'STARTED'], r.requests.map((q) => [
        q.id, q.intent.kind, `${q.state}${q.recovered ? ' (after restart)' : ''}`, `${q.steps.filter((s) => s.done).length}/${q.steps.length}`,
        new Date(q.createdAt).toISOString(),
      ])));
    });

  example(program.command('policy').description('set a GPU\'s vGPU type policy (only while it has no vGPUs): homogeneous is NVIDIA\'s equal-size mode (one type, up to MAX), heterogeneous its mixed-size mode (types mixed, each up to MIXED at NVIDIA\'s placements)')
    .argument('<gpu-bdf>', 'GPU address', bdfArg('GPU address'))
    .addArgument(new Command().createArgument('<policy>', 'homogeneous (equal-size mode) | heterogeneous (mixed-size mode)').choices(['homogeneous', 'heterogeneous']))
    .option('--json', 'print JSON'), 'vgpuctl policy 0000:41:00.0 heterogeneous')
    .action(async (bdf: string, policy: string, o: { json?: boolean }) => {
      const r = await (await client()).call('PUT', `/v1/gpus/${bdf}/policy`, { policy });
      if (o.json) return json(r);
      out(`${bdf}: policy ${policy} (NVIDIA's ${policy === 'heterogeneous' ? 'mixed-size' : 'equal-size'} mode; vgpuctl types --all shows each type's maximum: ${policy === 'heterogeneous' ? 'MIXED' : 'MAX'})`);
    });

  registerHostCommands({ program, client, out, json, example, bdfArg, intArg });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return EXIT.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return EXIT.ok;
      return EXIT.usage; // commander already printed the message
    }
    if (e instanceof CliError) {
      if (e.message) io.stderr.write(`vgpuctl: ${e.message}\n${e.hint ? `  hint: ${e.hint}\n` : ''}`);
      return e.exitCode;
    }
    io.stderr.write(`vgpuctl: unexpected error: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
    return EXIT.daemon;
  }
}
