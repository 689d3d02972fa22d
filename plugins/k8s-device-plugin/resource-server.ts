/**
 * One resource's DevicePlugin gRPC server on its own Unix socket in the device-plugin directory (one server per
 * resource, as the kubelet expects: it dials the endpoint a Register named). It streams the resource's device list
 * on ListAndWatch and answers Allocate, GetPreferredAllocation, GetDevicePluginOptions and PreStartContainer.
 *
 * Bad input (a malformed protobuf, a message over maxMessageBytes, more container requests or ids than any pod
 * has, unknown or unhealthy ids) gets a gRPC error naming what is wrong; the server keeps serving.
 */
import { lstat, unlink } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { EventBus } from '../../core/contracts/events.js';
import type { Logger } from '../../core/contracts/logger.js';
import { allocateContainer } from './allocate.js';
import type { AdvertisedDevice } from './device-inventory.js';
import { DP_API } from './device-plugin-config.js';
import type {
  AllocateRequest, ContainerAllocateResponse, DeviceMessage, DevicePluginOptions, ListAndWatchResponse, PreferredAllocationRequest,
} from './device-plugin-messages.js';
import { devicePluginApi, grpcError } from './device-plugin-proto.js';
import { preferredAllocation, type AllocationPolicy } from './preferred-allocation.js';

/** No pod has more containers, nor asks for more devices of one resource (a node has at most a few hundred VFs). */
const MAX_CONTAINER_REQUESTS = 128;
const MAX_IDS = 1024;

export const PLUGIN_OPTIONS: DevicePluginOptions = { pre_start_required: false, get_preferred_allocation_available: true };

export interface ResourceServerOptions {
  resource: string;
  /** Absolute path of the socket. */
  socketPath: string;
  policy: AllocationPolicy;
  maxMessageBytes: number;
  bus: EventBus;
  log: Logger;
}

export class ResourceServer {
  private server: grpc.Server | undefined;
  private devices = new Map<string, AdvertisedDevice>();
  private readonly streams = new Set<grpc.ServerWritableStream<unknown, ListAndWatchResponse>>();
  /** Inode of the socket this server bound: a file at the path with another inode is not ours. */
  private ino: number | undefined;

  constructor(readonly o: ResourceServerOptions) {}

  get resource(): string {
    return this.o.resource;
  }

  get listening(): boolean {
    return this.server !== undefined;
  }

  /** The inode of the socket we bound (undefined when not listening). */
  get socketIno(): number | undefined {
    return this.ino;
  }

  get streamCount(): number {
    return this.streams.size;
  }

  async start(): Promise<void> {
    if (this.server !== undefined) return;
    // A socket left by an earlier run of this daemon (kill -9 leaves it) would make the bind fail with EADDRINUSE.
    await unlink(this.o.socketPath).catch(() => {});
    const server = new grpc.Server({
      'grpc.max_receive_message_length': this.o.maxMessageBytes,
      // The kubelet holds one ListAndWatch per plugin for as long as both run: keep it open without idling out.
      'grpc.keepalive_permit_without_calls': 1,
    });
    server.addService(devicePluginApi().DevicePlugin.service, {
      GetDevicePluginOptions: (_call: unknown, cb: grpc.sendUnaryData<DevicePluginOptions>) => cb(null, PLUGIN_OPTIONS),
      ListAndWatch: (call: grpc.ServerWritableStream<unknown, ListAndWatchResponse>) => this.listAndWatch(call),
      GetPreferredAllocation: (call: grpc.ServerUnaryCall<PreferredAllocationRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => this.preferred(call, cb),
      Allocate: (call: grpc.ServerUnaryCall<AllocateRequest, unknown>, cb: grpc.sendUnaryData<unknown>) => this.allocate(call, cb),
      PreStartContainer: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}),
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${this.o.socketPath}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    }).catch((cause: unknown) => {
      server.forceShutdown();
      throw new VgpuError(ErrorCode.Internal, `cannot listen on ${this.o.socketPath} for ${this.o.resource}: ${(cause as Error).message}`, {
        hint: 'check that the device-plugin directory exists and is writable by vgpud', cause,
      });
    });
    this.server = server;
    this.ino = (await lstat(this.o.socketPath)).ino;
  }

  /** Stop serving; ends the ListAndWatch streams and removes the socket if it is still ours. */
  async stop(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    for (const s of this.streams) s.end();
    this.streams.clear();
    server.forceShutdown();
    const ino = this.ino;
    this.ino = undefined;
    const st = await lstat(this.o.socketPath).catch(() => undefined);
    if (st !== undefined && st.ino === ino) await unlink(this.o.socketPath).catch(() => {});
  }

  /** Replace the device list and stream it to every ListAndWatch. */
  update(devices: readonly AdvertisedDevice[]): void {
    this.devices = new Map(devices.map((d) => [d.id, d]));
    this.broadcast();
  }

  private message(): ListAndWatchResponse {
    return {
      devices: [...this.devices.values()].map((d): DeviceMessage => ({
        ID: d.id, health: d.health, ...(d.numaNode !== undefined ? { topology: { nodes: [{ ID: d.numaNode }] } } : {}),
      })),
    };
  }

  private broadcast(): void {
    const msg = this.message();
    for (const s of this.streams) s.write(msg);
  }

  private listAndWatch(call: grpc.ServerWritableStream<unknown, ListAndWatchResponse>): void {
    this.streams.add(call);
    const drop = (): void => { this.streams.delete(call); };
    call.on('cancelled', drop);
    call.on('close', drop);
    call.on('error', drop);
    this.o.log.info('the kubelet is watching the resource', { resource: this.o.resource, devices: this.devices.size });
    call.write(this.message());
  }

  private allocate(call: grpc.ServerUnaryCall<AllocateRequest, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    try {
      const reqs = call.request.container_requests;
      checkCounts(reqs.length, reqs.reduce((n, r) => n + r.devices_ids.length, 0), this.o.resource);
      const responses: ContainerAllocateResponse[] = reqs.map((r) => allocateContainer(this.o.resource, r.devices_ids, this.devices));
      const ids = reqs.flatMap((r) => r.devices_ids);
      const vgpus = ids.map((id) => this.devices.get(id)!.vgpu);
      this.o.log.info('allocated vGPUs to a container', { resource: this.o.resource, devices: ids, vgpus });
      this.o.bus.emit('device:allocated', { resource: this.o.resource, vgpus });
      cb(null, { container_responses: responses });
    } catch (e) {
      this.o.log.warn('refused an Allocate', { resource: this.o.resource, error: e });
      // api.proto: on a failed Allocate, send a ListAndWatch update (the kubelet re-reads the devices' health).
      this.broadcast();
      cb(grpcError(e), null);
    }
  }

  private preferred(call: grpc.ServerUnaryCall<PreferredAllocationRequest, unknown>, cb: grpc.sendUnaryData<unknown>): void {
    try {
      const reqs = call.request.container_requests;
      checkCounts(reqs.length, reqs.reduce((n, r) => n + r.available_deviceIDs.length + r.must_include_deviceIDs.length, 0), this.o.resource);
      // Only Healthy devices are worth preferring; an Unhealthy one in the kubelet's list is left for it to drop.
      const healthy = new Map([...this.devices.values()].filter((d) => d.health === DP_API.healthy).map((d) => [d.id, d]));
      const all = new Map([...this.devices.values()].map((d) => [d.id, d]));
      const container_responses = reqs.map((r) => {
        const offered = r.available_deviceIDs.filter((id) => healthy.has(id));
        const deviceIDs = preferredAllocation({ available: offered, mustInclude: r.must_include_deviceIDs, size: r.allocation_size }, all, this.o.policy);
        return { deviceIDs };
      });
      cb(null, { container_responses });
    } catch (e) {
      this.o.log.warn('refused a GetPreferredAllocation', { resource: this.o.resource, error: e });
      cb(grpcError(e), null);
    }
  }
}

function checkCounts(containers: number, ids: number, resource: string): void {
  if (containers > MAX_CONTAINER_REQUESTS || ids > MAX_IDS) {
    throw new VgpuError(ErrorCode.TooLarge, `a request for ${resource} names ${containers} container(s) and ${ids} device id(s); at most ${MAX_CONTAINER_REQUESTS} and ${MAX_IDS} are taken`, {
      hint: 'no pod asks for that many: check the client', details: { containers, ids },
    });
  }
}
