"""Sub-commands of ``python -m dltl_core``; each module here is discovered by ``dltl_core.cli``."""
