"""The ``system`` component: host CPU, memory, heat, the database's disk, network and the
monitored app's process, measured with psutil (no Textual here)."""

from pwtop.system.component import SystemComponent, SystemDetail

__all__ = ["SystemComponent", "SystemDetail"]
