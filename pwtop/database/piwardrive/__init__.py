"""What pwtop knows of PiWardrive's database: its schema and the queries the app runs.

The database component times and explains :func:`.workload.default_workload` when a file
has PiWardrive's tables and no workload is configured; ``pwtop demo`` builds its synthetic
rig from :mod:`.schema`. Plain data and stdlib ``sqlite3`` only.
"""
