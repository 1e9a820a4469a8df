"""The parity suite: the tests every hutch backend must pass, shipped as a pytest plugin.

Run it against any backend with one command::

    pytest --pyargs hutch.testing --hutch-url file:///tmp/parity

The plugin (:mod:`hutch.testing.plugin`, registered through the ``pytest11``
entry point) only adds options, a marker and fixtures; the tests themselves live
in the ``test_parity_*`` modules of this package and run only when the package
is named on the command line. See ``docs/testing-backends.md``.
"""

from hutch.testing.plugin import CAPABILITY_NAMES, Opener, default_fresh_url, requires

__all__ = ["CAPABILITY_NAMES", "Opener", "default_fresh_url", "requires"]
