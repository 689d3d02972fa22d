/**
 * One Register call to the kubelet (Registration service on kubelet.sock): the plugin's API version, its socket's
 * file name and resource name, and its options. Resolves on the kubelet's OK; rejects with a VgpuError saying why
 * (refused, with the kubelet's words, or not reachable). The call can be cancelled (the daemon stopping).
 */
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import { DP_API } from './device-plugin-config.js';
import type { RegisterRequest } from './device-plugin-messages.js';
import { devicePluginApi } from './device-plugin-proto.js';
import { PLUGIN_OPTIONS } from './resource-server.js';

type RegistrationClient = grpc.Client & {
  Register(req: RegisterRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void): grpc.ClientUnaryCall;
};

export interface PendingRegistration {
  done: Promise<void>;
  cancel(): void;
}

export function registerWithKubelet(kubeletSocket: string, endpoint: string, resource: string, timeoutMs: number): PendingRegistration {
  const Registration = devicePluginApi().Registration;
  const client = new Registration(`unix://${kubeletSocket}`, grpc.credentials.createInsecure()) as unknown as RegistrationClient;
  let call: grpc.ClientUnaryCall | undefined;
  const done = new Promise<void>((resolve, reject) => {
    const req: RegisterRequest = { version: DP_API.version, endpoint, resource_name: resource, options: PLUGIN_OPTIONS };
    call = client.Register(req, { deadline: Date.now() + timeoutMs }, (err) => {
      client.close();
      if (err === null) return resolve();
      const unreachable = err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED;
      reject(new VgpuError(ErrorCode.Busy, unreachable
        ? `cannot reach the kubelet at ${kubeletSocket}: ${err.details || err.message}`
        : `the kubelet refused to register ${resource}: ${err.details || err.message}`, {
        hint: unreachable ? 'the kubelet is not running or restarting; vgpud retries, and registers as soon as it answers'
          : 'see the kubelet log for why; vgpud retries with backoff',
        details: { grpcCode: grpc.status[err.code], resource }, cause: err,
      }));
    });
  });
  return { done, cancel: () => { call?.cancel(); client.close(); } };
}
