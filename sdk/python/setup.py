"""Builds the floatd package with the C library inside it.

`pip install ./sdk/python` (from a floatd checkout) runs cargo to build
libfloatd_client.so (profile release-sdk) and puts it in the wheel, which
is then specific to this platform. FLOATD_CLIENT_LIB=/path/to/the.so uses
a library built already instead.
"""

import os
import shutil
import subprocess

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.dist import Distribution

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70
    from wheel.bdist_wheel import bdist_wheel

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LIBRARY = "libfloatd_client.so"
PROFILE = "release-sdk"


def build_library():
    manifest = os.path.join(REPO, "Cargo.toml")
    if not os.path.exists(os.path.join(REPO, "sdk", "Cargo.toml")):
        raise SystemExit(
            "floatd: build from a floatd checkout (sdk/python), "
            "or set FLOATD_CLIENT_LIB to a built libfloatd_client.so"
        )
    cargo = os.environ.get("CARGO", "cargo")
    command = [cargo, "build", "--quiet", "-p", "floatd-client", "--lib",
               "--profile", PROFILE, "--manifest-path", manifest]
    try:
        subprocess.check_call(command)
    except OSError as e:
        raise SystemExit(f"floatd: cannot run cargo ({e}); install Rust or set FLOATD_CLIENT_LIB")
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
    return os.path.join(target, PROFILE, LIBRARY)


class BuildWithLibrary(build_py):
    """Copies the C library into the package."""

    def run(self):
        super().run()
        library = os.environ.get("FLOATD_CLIENT_LIB") or build_library()
        destination = os.path.join(self.build_lib, "floatd", LIBRARY)
        os.makedirs(os.path.dirname(destination), exist_ok=True)
        shutil.copyfile(library, destination)


class BinaryDistribution(Distribution):
    """The wheel holds a native library: it is for one platform."""

    def has_ext_modules(self):
        return True


class PlatformWheel(bdist_wheel):
    """Any Python 3 on this platform: the library is loaded with ctypes."""

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


setup(
    distclass=BinaryDistribution,
    cmdclass={"build_py": BuildWithLibrary, "bdist_wheel": PlatformWheel},
)
