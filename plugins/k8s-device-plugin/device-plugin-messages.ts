/**
 * The device-plugin API messages as @grpc/proto-loader hands them over (keepCase: the .proto's field names;
 * defaults: absent repeated fields are empty arrays) — only the fields vgpud reads or writes.
 */
export interface DevicePluginOptions {
  pre_start_required: boolean;
  get_preferred_allocation_available: boolean;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resource_name: string;
  options: DevicePluginOptions;
}

export interface DeviceMessage {
  ID: string;
  health: string;
  topology?: { nodes: { ID: number }[] };
}

export interface ListAndWatchResponse {
  devices: DeviceMessage[];
}

export interface AllocateRequest {
  container_requests: { devices_ids: string[] }[];
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: { container_path: string; host_path: string; read_only: boolean }[];
  devices: { container_path: string; host_path: string; permissions: string }[];
  annotations: Record<string, string>;
  cdi_devices: { name: string }[];
}

export interface PreferredAllocationRequest {
  container_requests: { available_deviceIDs: string[]; must_include_deviceIDs: string[]; allocation_size: number }[];
}
