// The k8s plugins' config sections (validated with their key paths), docs/vgpud.example.yaml, and the manifests in
// deploy/kubernetes: what they configure must be what the daemon accepts, and the DaemonSet must mount every path
// the config names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { isVgpuError } from '../../../core/contracts/exceptions.js';
import { parseConfig } from '../../../core/config/load-config.js';
import { parseLayoutText } from '../../../core/layout/layout-file.js';
import { parseConfigSection } from '../../../core/validation/parse-section.js';
import { k8sConfigSchema } from '../../../plugins/k8s/k8s-config.js';
import { devicePluginConfigSchema } from '../../../plugins/k8s-device-plugin/device-plugin-config.js';
import { resourceNameFor, resourceNameProblem } from '../../../plugins/k8s-device-plugin/resource-names.js';

const root = resolve(import.meta.dirname, '../../..');
const deploy = (f: string): Record<string, any>[] => parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes', f), 'utf8')).map((d) => d.toJS() as Record<string, any>);

test('a misspelt key in plugins.k8s or plugins.k8s.devicePlugin is a config error naming its path', () => {
  assert.throws(() => parseConfigSection(k8sConfigSchema, { nodeNmae: 'x' }, 'plugins.k8s'),
    (e) => isVgpuError(e, 'VGPU_ECONFIG') && /plugins\.k8s\.nodeNmae: unknown key/.test(e.message));
  assert.throws(() => parseConfigSection(devicePluginConfigSchema, { resourcePrefix: 'NVIDIA.com', allocationPolicy: 'random' }, 'plugins.k8s.devicePlugin'),
    (e) => isVgpuError(e, 'VGPU_ECONFIG') && /plugins\.k8s\.devicePlugin\.resourcePrefix: expected a lower-case DNS name/.test(e.message)
      && /allocationPolicy/.test(e.message));
});

test('docs/vgpud.example.yaml: its k8s section is valid and shows the defaults', () => {
  const example = parse(readFileSync(join(root, 'docs/vgpud.example.yaml'), 'utf8')) as { plugins: { k8s: Record<string, unknown> & { devicePlugin: unknown } } };
  parseConfig(example);
  const k8s = parseConfigSection(k8sConfigSchema, example.plugins.k8s, 'plugins.k8s');
  const { devicePlugin, ...rest } = k8s;
  assert.deepEqual(rest, (({ devicePlugin: _d, ...x }) => x)(k8sConfigSchema.parse({})));
  assert.deepEqual(parseConfigSection(devicePluginConfigSchema, devicePlugin, 'plugins.k8s.devicePlugin'), devicePluginConfigSchema.parse({}));
});

test('deploy/kubernetes: the ConfigMap is a valid daemon config and layout file; the DaemonSet mounts what it names', () => {
  const [cm] = deploy('configmap.yaml');
  const config = parseConfig(parse(cm!['data']['vgpud.yaml'] as string));
  const k8s = parseConfigSection(k8sConfigSchema, (config.plugins as Record<string, unknown>)['k8s'], 'plugins.k8s');
  const dp = parseConfigSection(devicePluginConfigSchema, k8s.devicePlugin, 'plugins.k8s.devicePlugin');
  const layouts = parseLayoutText(cm!['data']['layouts.yaml'] as string);
  assert.ok(Object.hasOwn(layouts['vgpu-configs'], k8s.defaultConfig), 'the default config is in the layout file');
  assert.equal(k8s.nodeName, '', 'the node name comes from $NODE_NAME');

  const [ds] = deploy('daemonset.yaml');
  const pod = ds!['spec']['template']['spec'];
  const c = pod['containers'][0];
  assert.deepEqual(c['env'].find((e: { name: string }) => e.name === 'NODE_NAME').valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
  assert.equal(c['command'].at(-1), '/etc/vgpud/vgpud.yaml');
  const mounts: string[] = c['volumeMounts'].map((m: { mountPath: string }) => m.mountPath);
  for (const needed of [dirname(k8s.layoutFile), dp.devicePluginDir, dirname(k8s.podResources.socket), dirname(k8s.nfd.featureFile),
    dirname(config.api.socket), config.api.stateDir]) {
    assert.ok(mounts.includes(needed), `${needed} is mounted`);
  }
  assert.ok(k8s.health.enabled);
  assert.deepEqual([c['livenessProbe']['httpGet']['path'], c['ports'][0]['containerPort']], ['/healthz', k8s.health.port]);
  assert.equal(pod['serviceAccountName'], 'vgpud');

  const rbac = deploy('rbac.yaml');
  const role = rbac.find((d) => d['kind'] === 'ClusterRole')!;
  const verbs = (res: string): string[] => role['rules'].find((r: { resources: string[] }) => r.resources.includes(res)).verbs;
  for (const v of ['get', 'watch', 'patch']) assert.ok(verbs('nodes').includes(v));
  assert.ok(verbs('events').includes('create'));
  assert.equal(rbac.find((d) => d['kind'] === 'ClusterRoleBinding')!['subjects'][0].name, 'vgpud');

  // every type the layouts create is permitted in KubeVirt, under the name the device plugin registers
  const types = new Set(Object.values(layouts['vgpu-configs']).flatMap((entries) => entries.flatMap((e) => Object.keys(e['vgpu-devices']))));
  const permitted: string[] = deploy('kubevirt-permitted-host-devices.yaml')[0]!['spec']['configuration']['permittedHostDevices']['pciHostDevices']
    .map((p: { resourceName: string; externalResourceProvider: boolean }) => { assert.equal(p.externalResourceProvider, true); return p.resourceName; });
  assert.deepEqual([...types].map((t) => resourceNameFor(dp.resourcePrefix, `NVIDIA ${t}`)).sort(), [...permitted].sort());
  for (const p of permitted) assert.equal(resourceNameProblem(p), undefined);
  const vmi = deploy('vmi-example.yaml')[0]!;
  assert.ok(permitted.includes(vmi['spec']['domain']['devices']['gpus'][0].deviceName));
  assert.deepEqual(deploy('kustomization.yaml')[0]!['resources'], ['namespace.yaml', 'rbac.yaml', 'configmap.yaml', 'daemonset.yaml']);
});

test('the .proto data files are found from the package root (the same from the sources and from compiled JS)', async () => {
  const { DEVICE_PLUGIN_PROTO } = await import('../../../plugins/k8s-device-plugin/device-plugin-proto.js');
  const { POD_RESOURCES_PROTO } = await import('../../../plugins/k8s/pod-resources-client.js');
  const { packageRoot } = await import('../../../core/runtime/package-root.js');
  assert.equal(packageRoot(), root);
  for (const p of [DEVICE_PLUGIN_PROTO, POD_RESOURCES_PROTO]) {
    assert.ok(p.startsWith(root) && !p.includes(`${join('dist', '')}`), p);
    assert.match(readFileSync(p, 'utf8'), /^syntax = "proto3";$/m);
  }
});
