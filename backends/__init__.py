"""The built-in backends; each registers itself through the ``hutch`` entry-point group."""
