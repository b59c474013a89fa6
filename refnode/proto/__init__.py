"""Generated code for refnode.proto; regenerate with ``python -m refnode.proto.generate``."""
