"""Files the code reads at run time, found where the package is installed.

The device profiles (``firmware_profiles/`` in the source, the package ``shian_profiles``
when installed) and the unit templates (``systemd/``, installed as ``shian_units``) are
package data: ``importlib.resources`` finds them in a wheel's install, an editable install
and the source tree alike, never by a path beside the source.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _folder(package: str) -> Path:
    root = resources.files(package)
    if not isinstance(root, Path):  # a zipped install: the profiles must be real files
        raise RuntimeError(f"{package} is not installed as files ({root!r}); reinstall with pip")
    return root


def profiles_dir() -> Path:
    """The device profiles: ``scales/``, ``printers/``, ``models/``, ``boxes/``, ``cameras/``."""
    return _folder("shian_profiles")


def units_dir() -> Path:
    """The systemd unit templates and ``mosquitto/shian.conf``."""
    return _folder("shian_units")
