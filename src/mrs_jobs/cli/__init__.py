"""The ``mrs-jobs`` command line (serve, admin). Imports are lazy so ``--help`` is instant."""
