"""A synthetic PiWardrive rig: a generated database (:mod:`.generate`, from PiWardrive's
schema in :mod:`pwtop.database.piwardrive`), the demo app that runs on it (:mod:`.app`)
and the runner that starts both (:mod:`.run`).

``pwtop demo`` uses this to give pwtop something real to watch without a rig; the tests
and benchmarks use it as their fixture. This file imports nothing, so loading one part
does not load the others.
"""
