/**
 * The device-plugin API's gRPC definitions, loaded from the .proto data file (proto/deviceplugin-v1beta1.proto).
 * The file is found from the package root, so the same code works from the TypeScript sources and compiled under
 * dist/ (where no .proto is copied).
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { assetPath } from '../../core/runtime/package-root.js';

export const DEVICE_PLUGIN_PROTO = assetPath('plugins', 'k8s-device-plugin', 'proto', 'deviceplugin-v1beta1.proto');

export interface DevicePluginApi {
  /** Served by each resource's server. */
  DevicePlugin: grpc.ServiceClientConstructor;
  /** The kubelet's: the plugin is its client. */
  Registration: grpc.ServiceClientConstructor;
}

let api: DevicePluginApi | undefined;

export function devicePluginApi(): DevicePluginApi {
  if (api !== undefined) return api;
  // keepCase: the wire's field names as the .proto spells them; defaults: an absent repeated field reads as [].
  const def = protoLoader.loadSync(DEVICE_PLUGIN_PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def)['v1beta1'] as grpc.GrpcObject;
  api = { DevicePlugin: pkg['DevicePlugin'] as grpc.ServiceClientConstructor, Registration: pkg['Registration'] as grpc.ServiceClientConstructor };
  return api;
}

/** A VgpuError (or anything thrown) as the gRPC status a kubelet logs: the code by kind, the message with its hint. */
export function grpcError(e: unknown): Partial<grpc.ServiceError> {
  const err = e as { code?: string; message?: string; hint?: string };
  const code = err.code === 'VGPU_EINVAL' ? grpc.status.INVALID_ARGUMENT
    : err.code === 'VGPU_ENOENT' ? grpc.status.NOT_FOUND
      : err.code === 'VGPU_ESTATE' ? grpc.status.FAILED_PRECONDITION
        : err.code === 'VGPU_E2BIG' ? grpc.status.RESOURCE_EXHAUSTED
          : grpc.status.INTERNAL;
  const message = err.message ?? String(e);
  return { code, details: err.hint !== undefined ? `${message} (${err.hint})` : message };
}
