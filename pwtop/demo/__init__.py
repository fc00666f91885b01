"""A synthetic PiWardrive: its schema, a generated database and its query workload.

``pwtop demo`` uses this to give pwtop something real to watch without a rig; the tests
and benchmarks use it as their fixture. Importing this package is cheap (stdlib only).
"""

from pwtop.demo.generate import DemoSummary, create_demo_database
from pwtop.demo.workload import WorkloadQuery, default_workload

__all__ = ["DemoSummary", "WorkloadQuery", "create_demo_database", "default_workload"]
