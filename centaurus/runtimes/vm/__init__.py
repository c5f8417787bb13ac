"""``vm`` runtime: Arktos VM pods as qemu guests restored from template snapshots."""

from centaurus.runtimes.vm.runtime import VmRuntime, kvm_usable

__all__ = ["VmRuntime", "kvm_usable"]
