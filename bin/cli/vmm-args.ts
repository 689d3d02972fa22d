/**
 * The VMM options that give a VM a vGPU through its vfio-user socket (docs/vfio-user.md "Attaching a VM"):
 *
 * - QEMU ≥ 10.1: `-device '{"driver":"vfio-user-pci","socket":{"path":…,"type":"unix"}}'`
 *   (https://www.qemu.org/docs/master/system/devices/vfio-user.html)
 * - cloud-hypervisor: `--user-device socket=…` (its docs/vfio-user.md)
 * - libvirt: the QEMU argument through `<qemu:commandline>`, guest RAM shared through `<memoryBacking>`.
 *
 * Guest RAM must be shared memory (memfd / shared=on): the VMM then passes its descriptors with DMA_MAP and the
 * device reads and writes guest memory directly; without it every DMA is a message on the socket.
 */
export interface VmmArgs {
  qemu: string[];
  cloudHypervisor: string[];
  libvirt: string;
  notes: string[];
}

const xmlAttr = (s: string): string => s.replace(/&/g, '&amp;').replace(/'/g, '&apos;').replace(/</g, '&lt;');

export function vmmArgs(socket: string): VmmArgs {
  const device = JSON.stringify({ driver: 'vfio-user-pci', socket: { path: socket, type: 'unix' } });
  const shq = `'${device.replace(/'/g, `'\\''`)}'`;
  return {
    qemu: ['-device', shq],
    cloudHypervisor: ['--user-device', `socket=${socket}`],
    libvirt: [
      "<!-- in <domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'> -->",
      '<memoryBacking>',
      "  <source type='memfd'/>",
      "  <access mode='shared'/>",
      '</memoryBacking>',
      '<qemu:commandline>',
      "  <qemu:arg value='-device'/>",
      `  <qemu:arg value='${xmlAttr(device)}'/>`,
      '</qemu:commandline>',
    ].join('\n'),
    notes: [
      'QEMU 10.1 or later (vfio-user-pci); guest RAM shared: -object memory-backend-memfd,id=mem,size=<RAM>,share=on -machine memory-backend=mem',
      'cloud-hypervisor: --memory size=<RAM>,shared=on',
      'the VMM user needs read/write on the socket (plugins.vfio-user.group / mode)',
    ],
  };
}
