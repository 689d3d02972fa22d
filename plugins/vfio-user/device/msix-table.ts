/**
 * The MSI-X table and pending-bit array in BAR0 (where the VF's MSI-X capability puts them: table at BAR0 +
 * 0xB90000, PBA at + 0xBA0000). A VMM usually emulates the table itself (QEMU's vfio-pci does, and forwards PBA
 * reads to the device); a client that programs the table here gets its per-vector mask honoured: an interrupt of a
 * masked vector (or while the function is masked) sets its pending bit instead and fires when unmasked (PCI Local
 * Bus 3.0 §6.8.2.9). Table entries: u32 address low, u32 address high, u32 data, u32 vector control (bit 0 mask);
 * all entries start masked.
 */
export const MSIX_ENTRY = 16;

export class MsixTable {
  private readonly table: Uint8Array;
  private pending = 0n;

  constructor(readonly vectors: number, readonly tableOffset: number, readonly pbaOffset: number) {
    this.table = new Uint8Array(vectors * MSIX_ENTRY);
    for (let v = 0; v < vectors; v++) this.table[v * MSIX_ENTRY + 12] = 1;
  }

  /** True when [offset, offset+len) of BAR0 is in the table or the PBA. */
  covers(offset: number, len: number): boolean {
    return (offset >= this.tableOffset && offset + len <= this.tableOffset + this.table.length) ||
      (offset >= this.pbaOffset && offset + len <= this.pbaOffset + this.pbaBytes);
  }

  get pbaBytes(): number {
    return Math.ceil(this.vectors / 64) * 8;
  }

  read(offset: number, len: number): Uint8Array {
    if (offset >= this.pbaOffset) {
      const pba = new Uint8Array(this.pbaBytes);
      for (let v = 0; v < this.vectors; v++) if (((this.pending >> BigInt(v)) & 1n) === 1n) pba[v >> 3] = pba[v >> 3]! | (1 << (v & 7));
      return pba.slice(offset - this.pbaOffset, offset - this.pbaOffset + len);
    }
    return this.table.slice(offset - this.tableOffset, offset - this.tableOffset + len);
  }

  /** A table write; returns the vectors that became unmasked with an interrupt pending (to fire now). */
  write(offset: number, data: Uint8Array, functionMasked: boolean): number[] {
    if (offset >= this.pbaOffset) return []; // the PBA is read-only
    this.table.set(data, offset - this.tableOffset);
    return functionMasked ? [] : this.releasable();
  }

  masked(vector: number): boolean {
    return (this.table[vector * MSIX_ENTRY + 12]! & 1) === 1;
  }

  /**
   * The device signals `vector`: deliver now (true) or keep it pending (false). `tableInUse`: the client has
   * programmed our table (otherwise its own emulation decides and we always deliver).
   */
  signal(vector: number, functionMasked: boolean, tableInUse: boolean): boolean {
    if (!tableInUse) return true;
    if (functionMasked || this.masked(vector)) {
      this.pending |= 1n << BigInt(vector);
      return false;
    }
    return true;
  }

  /** Vectors pending and no longer masked (after an unmask or a function unmask); their pending bits clear. */
  releasable(): number[] {
    const out: number[] = [];
    for (let v = 0; v < this.vectors; v++) {
      if (((this.pending >> BigInt(v)) & 1n) === 1n && !this.masked(v)) {
        this.pending &= ~(1n << BigInt(v));
        out.push(v);
      }
    }
    return out;
  }

  reset(): void {
    this.table.fill(0);
    for (let v = 0; v < this.vectors; v++) this.table[v * MSIX_ENTRY + 12] = 1;
    this.pending = 0n;
  }
}
