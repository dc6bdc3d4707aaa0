"""Where a job's data lives, apart from how a job runs: object stores today (``objectstore``).

Engines use it to hand a job its inputs and credentials; the files API lists a
cluster's directories through it (``files``). It imports only ``domain``.
"""
