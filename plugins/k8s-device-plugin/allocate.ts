/**
 * Allocate for one container: what KubeVirt's virt-launcher consumes for a PCI host device, nothing else.
 *
 * - env PCI_RESOURCE_<RESOURCE> = the VF addresses, comma-separated, in the order asked (KubeVirt splits on ","
 *   and hands them out in order: kubevirt pkg/virt-launcher/virtwrap/device/hostdevice AddressPool.load);
 * - for vGPUs the vfio-user face serves: each socket bind-mounted at its own path, and env
 *   VFIO_USER_RESOURCE_<RESOURCE> = those paths, comma-separated, aligned with the addresses ("" for a vGPU without).
 *
 * Refused, naming the ids: an id this resource does not advertise, an Unhealthy one (its reason given), a repeated
 * one. The kubelet then fails the pod's admission; api.proto asks the plugin to send a ListAndWatch update with the
 * failure, which the server does.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { AdvertisedDevice } from './device-inventory.js';
import type { ContainerAllocateResponse } from './device-plugin-messages.js';
import { DP_API } from './device-plugin-config.js';
import { envNamesFor } from './resource-names.js';

export function allocateContainer(resource: string, ids: readonly string[], devices: ReadonlyMap<string, AdvertisedDevice>): ContainerAllocateResponse {
  if (ids.length === 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `an Allocate for ${resource} named no device`, { hint: 'name at least one device id' });
  }
  const repeated = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (repeated.length > 0) {
    throw new VgpuError(ErrorCode.InvalidArgument, `device(s) named twice in one Allocate for ${resource}: ${[...new Set(repeated)].join(', ')}`, {
      hint: 'name each device once', details: { repeated },
    });
  }
  const unknown = ids.filter((id) => !devices.has(id));
  if (unknown.length > 0) {
    throw new VgpuError(ErrorCode.NotFound, `unknown device(s) for ${resource}: ${unknown.join(', ')}`, {
      hint: `ask only for ids ${resource}'s ListAndWatch advertises (vgpuctl list shows each vGPU's VF address)`, details: { unknown },
    });
  }
  const unhealthy = ids.map((id) => devices.get(id)!).filter((d) => d.health !== DP_API.healthy);
  if (unhealthy.length > 0) {
    throw new VgpuError(ErrorCode.IllegalState, `unhealthy device(s) for ${resource}: ${unhealthy.map((d) => `${d.id} (${d.reason ?? 'unhealthy'})`).join(', ')}`, {
      hint: 'the kubelet picks another device once it has the new ListAndWatch list; `vgpuctl list` shows the vGPUs\' states',
      details: { unhealthy: unhealthy.map((d) => d.id) },
    });
  }
  const chosen = ids.map((id) => devices.get(id)!);
  const envs: Record<string, string> = {};
  for (const name of envNamesFor('PCI_RESOURCE', resource)) envs[name] = chosen.map((d) => d.id).join(',');
  const mounts: ContainerAllocateResponse['mounts'] = [];
  if (chosen.some((d) => d.vfioUserSocket !== undefined)) {
    for (const name of envNamesFor('VFIO_USER_RESOURCE', resource)) envs[name] = chosen.map((d) => d.vfioUserSocket ?? '').join(',');
    for (const d of chosen) {
      if (d.vfioUserSocket !== undefined) mounts.push({ container_path: d.vfioUserSocket, host_path: d.vfioUserSocket, read_only: false });
    }
  }
  return { envs, mounts, devices: [], annotations: {}, cdi_devices: [] };
}
