"""Command groups of the ``civitai-study`` CLI; each module has ``register(subparsers)``."""
