/**
 * NodeApi over @kubernetes/client-node. The library (and its HTTP stack) is imported on first use only: a daemon
 * whose Node watch is off never loads it (1.5 s of start-up on these machines).
 *
 * Credentials: a kubeconfig file when one is named; in a pod the service account (the DaemonSet's
 * ServiceAccount, RBAC in deploy/kubernetes/rbac.yaml); else $KUBECONFIG or ~/.kube/config, as kubectl does.
 */
import { ErrorCode, VgpuError } from '../../core/contracts/exceptions.js';
import type { NodeApi, NodeEvent, NodeObject, WatchEvent } from './node-api.js';

type ClientNode = typeof import('@kubernetes/client-node');

interface RawNode { metadata?: { name?: string; uid?: string; resourceVersion?: string; labels?: Record<string, string> } }

function toNode(raw: RawNode): NodeObject {
  const m = raw.metadata ?? {};
  return { name: m.name ?? '', uid: m.uid ?? '', resourceVersion: m.resourceVersion ?? '', labels: { ...(m.labels ?? {}) } };
}

/** The API server's answer as a VgpuError that says what failed and what to check. */
function apiError(what: string, e: unknown): VgpuError {
  const code = (e as { code?: number; statusCode?: number }).code ?? (e as { statusCode?: number }).statusCode;
  const body = (e as { body?: unknown }).body;
  const detail = typeof body === 'string' ? body.slice(0, 300) : (body as { message?: string } | undefined)?.message ?? (e as Error).message;
  return new VgpuError(ErrorCode.Busy, `${what} failed${code !== undefined ? ` (HTTP ${code})` : ''}: ${detail}`, {
    hint: code === 401 || code === 403 ? 'check the ServiceAccount and its RBAC (deploy/kubernetes/rbac.yaml: get/watch/patch nodes, create events)'
      : 'check that the API server is reachable from the node; vgpud retries with backoff',
    details: { status: code }, cause: e,
  });
}

export async function createClientNodeApi(o: { nodeName: string; kubeconfig: string; eventNamespace: string }): Promise<NodeApi> {
  const k8s: ClientNode = await import('@kubernetes/client-node');
  const kc = new k8s.KubeConfig();
  if (o.kubeconfig !== '') kc.loadFromFile(o.kubeconfig);
  else if (process.env['KUBERNETES_SERVICE_HOST'] !== undefined) kc.loadFromCluster();
  else kc.loadFromDefault();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const watcher = new k8s.Watch(kc);
  const mergePatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  return {
    async getNode() {
      try {
        return toNode(await core.readNode({ name: o.nodeName }) as RawNode);
      } catch (e) {
        throw apiError(`reading Node ${o.nodeName}`, e);
      }
    },
    async watchNode(resourceVersion, onEvent, onEnd) {
      let ended = false;
      const end = (error?: Error): void => {
        if (ended) return;
        ended = true;
        onEnd(error);
      };
      const controller = await watcher.watch('/api/v1/nodes', {
        fieldSelector: `metadata.name=${o.nodeName}`, resourceVersion, allowWatchBookmarks: true,
      }, (type: string, obj: unknown) => {
        if (type === 'ERROR') {
          const st = obj as { code?: number; message?: string };
          onEvent({ type: 'ERROR', code: st.code ?? 0, message: st.message ?? 'watch error' });
        } else if (type === 'ADDED' || type === 'MODIFIED' || type === 'DELETED' || type === 'BOOKMARK') {
          onEvent({ type, node: toNode(obj as RawNode) } as WatchEvent);
        }
      }, (err: unknown) => end(err === null || err === undefined ? undefined : err instanceof Error ? err : new Error(String(err))));
      return () => { ended = true; controller.abort(); };
    },
    async patchLabels(labels) {
      try {
        return toNode(await core.patchNode({ name: o.nodeName, body: { metadata: { labels } } }, mergePatch) as RawNode);
      } catch (e) {
        throw apiError(`patching the labels of Node ${o.nodeName}`, e);
      }
    },
    async postEvent(node: NodeObject, ev: NodeEvent) {
      const now = new Date();
      try {
        await core.createNamespacedEvent({
          namespace: o.eventNamespace,
          body: {
            metadata: { generateName: `${node.name}.vgpud.`, namespace: o.eventNamespace },
            involvedObject: { apiVersion: 'v1', kind: 'Node', name: node.name, uid: node.uid },
            reason: ev.reason, message: ev.message.slice(0, 1024), type: ev.type,
            source: { component: 'vgpud', host: node.name }, reportingComponent: 'vgpud', reportingInstance: node.name,
            firstTimestamp: now, lastTimestamp: now, count: 1,
          },
        });
      } catch (e) {
        throw apiError(`posting an Event about Node ${node.name}`, e);
      }
    },
  };
}
