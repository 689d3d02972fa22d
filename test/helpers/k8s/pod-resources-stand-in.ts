/**
 * The kubelet's PodResources API (v1) for tests, over a real Unix socket with its own gRPC wiring. Its copy of the
 * API carries fields vgpud's copy leaves out (cpu_ids, memory, device topology, GetAllocatableResources), as a real
 * kubelet's answers do, so the test also shows vgpud skips what it does not know.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const API = `
syntax = "proto3";
package v1;
service PodResourcesLister {
  rpc List(ListPodResourcesRequest) returns (ListPodResourcesResponse) {}
  rpc GetAllocatableResources(AllocatableResourcesRequest) returns (AllocatableResourcesResponse) {}
}
message AllocatableResourcesRequest {}
message AllocatableResourcesResponse { repeated ContainerDevices devices = 1; repeated int64 cpu_ids = 2; }
message ListPodResourcesRequest {}
message ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
message PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3; }
message ContainerResources { string name = 1; repeated ContainerDevices devices = 2; repeated int64 cpu_ids = 3; repeated ContainerMemory memory = 4; }
message ContainerMemory { string memory_type = 1; uint64 size = 2; TopologyInfo topology = 3; }
message ContainerDevices { string resource_name = 1; repeated string device_ids = 2; TopologyInfo topology = 3; }
message TopologyInfo { repeated NUMANode nodes = 1; }
message NUMANode { int64 ID = 1; }
`;

export interface StandInPod { namespace: string; name: string; containers: { name: string; devices: { resource: string; ids: string[] }[] }[] }

export class PodResourcesStandIn {
  private server: grpc.Server | undefined;
  pods: StandInPod[] = [];
  /** List calls answered. */
  calls = 0;

  constructor(readonly socket: string) {}

  async start(): Promise<void> {
    const d = mkdtempSync(join(tmpdir(), 'podres-api-'));
    writeFileSync(join(d, 'api.proto'), API);
    const def = protoLoader.loadSync(join(d, 'api.proto'), { keepCase: false, defaults: true });
    rmSync(d, { recursive: true, force: true });
    const svc = ((grpc.loadPackageDefinition(def)['v1'] as grpc.GrpcObject)['PodResourcesLister'] as grpc.ServiceClientConstructor).service;
    const server = new grpc.Server();
    server.addService(svc, {
      List: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => {
        this.calls++;
        cb(null, {
          podResources: this.pods.map((p) => ({
            name: p.name, namespace: p.namespace,
            containers: p.containers.map((c) => ({
              name: c.name, cpuIds: [2, 3], memory: [{ memoryType: 'memory', size: 1 << 30 }],
              devices: c.devices.map((x) => ({ resourceName: x.resource, deviceIds: x.ids, topology: { nodes: [{ ID: 0 }] } })),
            })),
          })),
        });
      },
      GetAllocatableResources: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    });
    await new Promise<void>((res, rej) => server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    this.server = server;
  }

  async stop(): Promise<void> {
    this.server?.forceShutdown();
    this.server = undefined;
    rmSync(this.socket, { force: true });
  }
}
