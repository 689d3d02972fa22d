/**
 * The kubelet's PodResources API (v1 List) over its Unix socket: which pod's containers hold which devices of which
 * resource. The .proto is a data file found from the package root (sources and compiled alike).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { assetPath } from '../../core/runtime/package-root.js';

export const POD_RESOURCES_PROTO = assetPath('plugins', 'k8s', 'proto', 'podresources-v1.proto');

export interface PodDevices {
  namespace: string;
  pod: string;
  container: string;
  resource: string;
  deviceIds: string[];
}

interface ListResponse {
  pod_resources: { name: string; namespace: string; containers: { name: string; devices: { resource_name: string; device_ids: string[] }[] }[] }[];
}

type ListerClient = grpc.Client & {
  List(req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: ListResponse) => void): grpc.ClientUnaryCall;
};

let Lister: grpc.ServiceClientConstructor | undefined;

function listerClass(): grpc.ServiceClientConstructor {
  if (Lister !== undefined) return Lister;
  const def = protoLoader.loadSync(POD_RESOURCES_PROTO, { keepCase: true, longs: Number, defaults: true });
  return (Lister = (grpc.loadPackageDefinition(def)['v1'] as grpc.GrpcObject)['PodResourcesLister'] as grpc.ServiceClientConstructor);
}

/** One List call; each container's devices of each resource as one row. */
export function listPodDevices(socket: string, timeoutMs: number, maxMessageBytes = 16 << 20): Promise<PodDevices[]> {
  const client = new (listerClass())(`unix://${socket}`, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': maxMessageBytes,
  }) as unknown as ListerClient;
  return new Promise((resolve, reject) => {
    client.List({}, { deadline: Date.now() + timeoutMs }, (err, res) => {
      client.close();
      if (err !== null) {
        reject(new VgpuError(ErrorCode.Busy, `the kubelet's PodResources API at ${socket} did not answer: ${err.details || err.message}`, {
          hint: 'check that the kubelet runs and that plugins.k8s.podResources.socket names its pod-resources socket', cause: err,
        }));
        return;
      }
      resolve(res.pod_resources.flatMap((p) => p.containers.flatMap((c) => c.devices.map((d) => ({
        namespace: p.namespace, pod: p.name, container: c.name, resource: d.resource_name, deviceIds: d.device_ids,
      })))));
    });
  });
}
