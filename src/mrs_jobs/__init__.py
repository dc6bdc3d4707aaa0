"""mrs-jobs: a self-hosted job-execution service speaking the MRS API v2."""

__all__ = ["__version__"]

__version__ = "0.1.0"
