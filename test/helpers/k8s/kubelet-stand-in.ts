/**
 * A kubelet stand-in for tests: the device-manager half of a kubelet, speaking the real device-plugin API v1beta1
 * over real Unix sockets. Its gRPC wiring is its own — its own copy of the API (below, typed from
 * kubernetes/kubelet pkg/apis/deviceplugin/v1beta1/api.proto), loaded with camelCase field names where the plugin
 * uses the .proto's — so a test passing here means the plugin speaks the wire protocol, not that it agrees with
 * itself.
 *
 * What it does, as the kubelet does: serves Registration on <dir>/kubelet.sock; checks a Register (version, an
 * extended resource name, an endpoint file in <dir>); then dials the endpoint, asks GetDevicePluginOptions and
 * opens ListAndWatch, keeping the last list per resource. `restart()` is a kubelet restart: the old server goes,
 * every other socket in <dir> is deleted, a new kubelet.sock is served.
 */
import { EventEmitter } from 'node:events';
import { mkdirSync, readdirSync, rmSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const API = `
syntax = "proto3";
package v1beta1;
service Registration { rpc Register(RegisterRequest) returns (Empty) {} }
message DevicePluginOptions { bool pre_start_required = 1; bool get_preferred_allocation_available = 2; }
message RegisterRequest { string version = 1; string endpoint = 2; string resource_name = 3; DevicePluginOptions options = 4; }
message Empty {}
service DevicePlugin {
  rpc GetDevicePluginOptions(Empty) returns (DevicePluginOptions) {}
  rpc ListAndWatch(Empty) returns (stream ListAndWatchResponse) {}
  rpc GetPreferredAllocation(PreferredAllocationRequest) returns (PreferredAllocationResponse) {}
  rpc Allocate(AllocateRequest) returns (AllocateResponse) {}
  rpc PreStartContainer(PreStartContainerRequest) returns (PreStartContainerResponse) {}
}
message ListAndWatchResponse { repeated Device devices = 1; }
message TopologyInfo { repeated NUMANode nodes = 1; }
message NUMANode { int64 ID = 1; }
message Device { string ID = 1; string health = 2; TopologyInfo topology = 3; }
message PreStartContainerRequest { repeated string devices_ids = 1; }
message PreStartContainerResponse {}
message PreferredAllocationRequest { repeated ContainerPreferredAllocationRequest container_requests = 1; }
message ContainerPreferredAllocationRequest { repeated string available_deviceIDs = 1; repeated string must_include_deviceIDs = 2; int32 allocation_size = 3; }
message PreferredAllocationResponse { repeated ContainerPreferredAllocationResponse container_responses = 1; }
message ContainerPreferredAllocationResponse { repeated string deviceIDs = 1; }
message AllocateRequest { repeated ContainerAllocateRequest container_requests = 1; }
message ContainerAllocateRequest { repeated string devices_ids = 1; }
message CDIDevice { string name = 1; }
message AllocateResponse { repeated ContainerAllocateResponse container_responses = 1; }
message ContainerAllocateResponse {
  map<string, string> envs = 1; repeated Mount mounts = 2; repeated DeviceSpec devices = 3;
  map<string, string> annotations = 4; repeated CDIDevice cdi_devices = 5;
}
message Mount { string container_path = 1; string host_path = 2; bool read_only = 3; }
message DeviceSpec { string container_path = 1; string host_path = 2; string permissions = 3; }
`;

let loaded: { Registration: grpc.ServiceClientConstructor; DevicePlugin: grpc.ServiceClientConstructor } | undefined;
function api() {
  if (loaded) return loaded;
  const d = mkdtempSync(join(tmpdir(), 'kubelet-api-'));
  const file = join(d, 'api.proto');
  writeFileSync(file, API);
  const def = protoLoader.loadSync(file, { keepCase: false, longs: Number, defaults: true });
  rmSync(d, { recursive: true, force: true });
  const pkg = grpc.loadPackageDefinition(def)['v1beta1'] as grpc.GrpcObject;
  return (loaded = { Registration: pkg['Registration'] as grpc.ServiceClientConstructor, DevicePlugin: pkg['DevicePlugin'] as grpc.ServiceClientConstructor });
}

export interface StandInDevice { id: string; health: string; numa?: number[] }
export interface Registration { resource: string; endpoint: string; version: string; options: { preStartRequired: boolean; getPreferredAllocationAvailable: boolean }; at: number }
export interface AllocateResult { envs: Record<string, string>; mounts: { containerPath: string; hostPath: string; readOnly: boolean }[] }

interface PluginConn { client: grpc.Client & Record<string, (...a: unknown[]) => unknown>; stream?: grpc.ClientReadableStream<unknown>; endpoint: string }

const EVENTS = ['update', 'registered', 'refused', 'stream-end', 'options'] as const;
const RESOURCE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

export class KubeletStandIn extends EventEmitter {
  readonly socket: string;
  private server: grpc.Server | undefined;
  private readonly plugins = new Map<string, PluginConn>();
  /** Every Register accepted, in order. */
  readonly registrations: Registration[] = [];
  /** Register calls refused so far (by `refuseNext`). */
  refused = 0;
  private refuseCount = 0;
  /** Last ListAndWatch list per resource, and how many lists each sent. */
  readonly devices = new Map<string, StandInDevice[]>();
  readonly updates = new Map<string, number>();

  constructor(readonly dir: string) {
    super();
    this.socket = join(dir, 'kubelet.sock');
  }

  /** Refuse the next `n` Register calls with an error (as a kubelet does for a taken resource name). */
  refuseNext(n: number): void {
    this.refuseCount = n;
  }

  async start(): Promise<void> {
    mkdirSync(this.dir, { recursive: true });
    const server = new grpc.Server();
    server.addService(api().Registration.service, {
      Register: (call: grpc.ServerUnaryCall<{ version: string; endpoint: string; resourceName: string; options?: Registration['options'] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        const r = call.request;
        if (this.refuseCount > 0) {
          this.refuseCount--;
          this.refused++;
          this.emit('refused', r.resourceName);
          return cb({ code: grpc.status.UNKNOWN, details: `stand-in refuses ${r.resourceName} on purpose` }, null);
        }
        if (r.version !== 'v1beta1') return cb({ code: grpc.status.UNKNOWN, details: `unsupported version ${r.version}` }, null);
        if (!RESOURCE_NAME.test(r.resourceName)) return cb({ code: grpc.status.UNKNOWN, details: `invalid extended resource name ${r.resourceName}` }, null);
        if (!readdirSync(this.dir).includes(r.endpoint)) return cb({ code: grpc.status.UNKNOWN, details: `no endpoint ${r.endpoint} in ${this.dir}` }, null);
        const reg: Registration = {
          resource: r.resourceName, endpoint: r.endpoint, version: r.version,
          options: r.options ?? { preStartRequired: false, getPreferredAllocationAvailable: false }, at: performance.now(),
        };
        this.registrations.push(reg);
        this.emit('registered', reg);
        cb(null, {});
        // The kubelet answers the Register first, then connects to the plugin (devicemanager runEndpoint).
        setImmediate(() => this.connect(reg));
      },
    });
    await new Promise<void>((res, rej) => server.bindAsync(`unix://${this.socket}`, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())));
    this.server = server;
  }

  private connect(reg: Registration): void {
    const old = this.plugins.get(reg.resource);
    old?.stream?.cancel();
    old?.client.close();
    const client = new (api().DevicePlugin)(`unix://${join(this.dir, reg.endpoint)}`, grpc.credentials.createInsecure()) as PluginConn['client'];
    const conn: PluginConn = { client, endpoint: reg.endpoint };
    this.plugins.set(reg.resource, conn);
    (client['GetDevicePluginOptions'] as (r: unknown, cb: (e: grpc.ServiceError | null, o: unknown) => void) => void)({}, (e, o) => {
      if (e === null) this.emit('options', reg.resource, o);
    });
    type Law = { devices: { ID: string; health: string; topology?: { nodes: { ID: number }[] } }[] };
    const stream = (client['ListAndWatch'] as (r: unknown) => grpc.ClientReadableStream<Law>)({});
    conn.stream = stream;
    stream.on('data', (m: Law) => {
      const list = m.devices.map((d) => ({ id: d.ID, health: d.health, ...(d.topology ? { numa: d.topology.nodes.map((n) => Number(n.ID)) } : {}) }));
      this.devices.set(reg.resource, list);
      this.updates.set(reg.resource, (this.updates.get(reg.resource) ?? 0) + 1);
      this.emit('update', reg.resource, list);
    });
    stream.on('error', () => {});
    stream.on('end', () => this.emit('stream-end', reg.resource));
  }

  private conn(resource: string): PluginConn {
    const c = this.plugins.get(resource);
    if (!c) throw new Error(`the stand-in has no plugin for ${resource}`);
    return c;
  }

  /** Allocate for one container per entry of `containers`. Rejects with the plugin's gRPC error. */
  allocate(resource: string, ...containers: string[][]): Promise<AllocateResult[]> {
    return new Promise((res, rej) => {
      (this.conn(resource).client['Allocate'] as (r: unknown, cb: (e: grpc.ServiceError | null, o: { containerResponses: AllocateResult[] }) => void) => void)(
        { containerRequests: containers.map((devicesIds) => ({ devicesIds })) }, (e, o) => (e ? rej(e) : res(o.containerResponses)));
    });
  }

  preferred(resource: string, available: string[], mustInclude: string[], size: number): Promise<string[]> {
    return new Promise((res, rej) => {
      (this.conn(resource).client['GetPreferredAllocation'] as (r: unknown, cb: (e: grpc.ServiceError | null, o: { containerResponses: { deviceIDs: string[] }[] }) => void) => void)(
        { containerRequests: [{ availableDeviceIDs: available, mustIncludeDeviceIDs: mustInclude, allocationSize: size }] },
        (e, o) => (e ? rej(e) : res(o.containerResponses[0]!.deviceIDs)));
    });
  }

  /** Call any method with raw bytes (for malformed/oversized input): resolves with the gRPC status code. */
  raw(resource: string, method: string, bytes: Buffer): Promise<{ code: number; details: string }> {
    const c = this.conn(resource);
    const raw = new grpc.Client(`unix://${join(this.dir, c.endpoint)}`, grpc.credentials.createInsecure());
    return new Promise((res) => {
      raw.makeUnaryRequest(`/v1beta1.DevicePlugin/${method}`, (b: Buffer) => b, (b: Buffer) => b, bytes, (e) => {
        raw.close();
        res({ code: e ? e.code : 0, details: e ? e.details : '' });
      });
    });
  }

  /** Resolve when `pred` holds (checked now and at every event). */
  until(pred: () => boolean): Promise<void> {
    if (pred()) return Promise.resolve();
    return new Promise((res) => {
      const check = (): void => {
        if (!pred()) return;
        for (const ev of EVENTS) this.off(ev, check);
        res();
      };
      for (const ev of EVENTS) this.on(ev, check);
    });
  }

  /** Registrations accepted for `resource`. */
  registrationsOf(resource: string): Registration[] {
    return this.registrations.filter((r) => r.resource === resource);
  }

  /** A kubelet restart: stop serving, delete every socket in the directory but its own, serve a new kubelet.sock. */
  async restart(): Promise<void> {
    await this.stop();
    for (const f of readdirSync(this.dir)) if (f.endsWith('.sock')) rmSync(join(this.dir, f), { force: true });
    await this.start();
  }

  async stop(): Promise<void> {
    for (const c of this.plugins.values()) {
      c.stream?.cancel();
      c.client.close();
    }
    this.plugins.clear();
    this.devices.clear();
    const s = this.server;
    this.server = undefined;
    if (s) s.forceShutdown();
    rmSync(this.socket, { force: true });
  }
}
