"""Where a job's data lives, apart from how a job runs: object stores (``objectstore``) and
listings of a cluster's directories (``files`` on local disk, ``objectfiles`` in a bucket).

Engines use it to hand a job its inputs and credentials; the files API lists a cluster's
directories through it. It imports only ``domain``.
"""
