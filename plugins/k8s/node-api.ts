/**
 * What the node agent needs of the Kubernetes API server, and nothing more: its own Node (get, watch, merge-patch
 * of labels) and Events about it. The label flow is written against this interface; client-node-api.ts implements
 * it with @kubernetes/client-node, and tests drive the flow over HTTP against an API-server stand-in.
 */
export interface NodeObject {
  name: string;
  uid: string;
  resourceVersion: string;
  labels: Record<string, string>;
}

export type WatchEvent = { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; node: NodeObject } | { type: 'ERROR'; code: number; message: string };

export interface NodeEvent {
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, short (e.g. "VgpuConfigApplied"). */
  reason: string;
  message: string;
}

export interface NodeApi {
  getNode(): Promise<NodeObject>;
  /**
   * Watch the Node from `resourceVersion`. `onEvent` gets each event; `onEnd` is called once when the watch ends
   * (the server closed it — API servers end watches every few minutes by design — or an error). Returns a stop
   * function.
   */
  watchNode(resourceVersion: string, onEvent: (e: WatchEvent) => void, onEnd: (error?: Error) => void): Promise<() => void>;
  /** JSON merge patch of the Node's labels (null removes one). */
  patchLabels(labels: Record<string, string | null>): Promise<NodeObject>;
  /** Post an Event whose involved object is the Node. */
  postEvent(node: NodeObject, event: NodeEvent): Promise<void>;
}
