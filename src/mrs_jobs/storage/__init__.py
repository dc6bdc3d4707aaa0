"""Where a job's data lives, apart from how a job runs: object stores today (``objectstore``).

Engines use it to hand a job its inputs and credentials; the service will use it to list a
cluster's files. It imports only ``domain``.
"""
