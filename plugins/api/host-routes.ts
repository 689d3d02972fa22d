/**
 * The control API's routes for a host's SR-IOV state, over the optional parts of the VgpuService contract: the
 * VFs of a GPU, `sriov_numvfs`, the VFs whose type vgpud did not set (or that changed behind its back), and adopting
 * them. A backend without one of these answers with the API's error shape, never a 500.
 */
import type { FastifyInstance } from 'fastify';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { VgpuService } from '../../core/contracts/vgpu-service.js';
import { parseOr } from './http-errors.js';
import { adoptBody, gpuParams, listQuery, sriovBody } from './request-schemas.js';
import { toJsonValue } from './to-json.js';

function missing(what: string): VgpuError {
  return new VgpuError(ErrorCode.InvalidArgument, `this daemon's vGPU service does not support ${what}`, {
    hint: 'see docs/real-hosts.md for what each backend offers',
  });
}

export function addHostRoutes(app: FastifyInstance, service: VgpuService): void {
  app.get('/v1/gpus/:bdf/vfs', async (req) => {
    const { bdf } = parseOr(gpuParams, req.params, 'GPU address');
    if (service.vfs === undefined) throw missing('listing VFs');
    return toJsonValue({ gpu: bdf, vfs: service.vfs(bdf) });
  });

  app.put('/v1/gpus/:bdf/sriov', async (req) => {
    const { bdf } = parseOr(gpuParams, req.params, 'GPU address');
    const { numVfs } = parseOr(sriovBody, req.body, 'request body');
    if (service.configureVfs === undefined) throw missing('configuring SR-IOV');
    await service.configureVfs(bdf, numVfs);
    return toJsonValue({ gpu: bdf, numVfs });
  });

  app.get('/v1/unmanaged', async (req) => {
    const { gpu } = parseOr(listQuery, req.query, 'query');
    return toJsonValue({ vfs: service.unmanagedVfs?.(gpu !== undefined ? { gpu } : undefined) ?? [] });
  });

  app.post('/v1/adopt', async (req) => {
    const body = parseOr(adoptBody, req.body ?? {}, 'request body');
    if (service.adopt === undefined) throw missing('adopting vGPUs');
    return toJsonValue(await service.adopt({ ...(body.gpu !== undefined ? { gpu: body.gpu } : {}), ...(body.vfs !== undefined ? { vfs: body.vfs } : {}) }));
  });
}
