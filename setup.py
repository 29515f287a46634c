"""Build and install rnnjit: the ``engine`` and ``converters`` packages and the ``rnnjit`` command.

The Cython call layer (engine/_ext/_stepcore.pyx) is built when Cython and a C compiler are available.
Without them the install still succeeds and the engine runs on the pure-Python twin of the call layer,
saying so once at import (a warning, not a crash).
"""

import os
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


def _extensions():
    if os.environ.get("RNNJIT_NO_EXTENSION", "").strip() not in ("", "0"):
        return []
    try:
        import numpy
        from Cython.Build import cythonize
        from setuptools import Extension
    except ImportError as exc:
        print(f"rnnjit: not building the compiled call layer ({exc}); the pure-Python twin will be used",
              file=sys.stderr)
        return []
    ext = Extension(
        "engine._ext._stepcore",
        ["engine/_ext/_stepcore.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=["-O2"],
    )
    return cythonize([ext], language_level=3, quiet=True)


class OptionalBuildExt(build_ext):
    """build_ext that warns and carries on when the compiler fails: the twin covers a missing extension."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any build failure means "use the twin"
            self._warn(exc)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:  # noqa: BLE001
            self._warn(exc)

    @staticmethod
    def _warn(exc):
        print(f"rnnjit: WARNING: could not build the compiled call layer ({exc}); installing without it. "
              f"rnnjit will run on the pure-Python twin (slower per step).", file=sys.stderr)


TORCH = "torch==2.13.0"

setup(
    name="rnnjit",
    version="0.1.0",
    description="CPU inference engine for recurrent neural networks (LSTM, GRU, RNN) with numba kernels",
    long_description=open(os.path.join(HERE, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["engine", "engine.*", "converters", "converters.*"]),
    # the heartbeat demo's trained network (native, ONNX and state_dict) and its held-out ECG recording, < 1 MB
    package_data={"engine._ext": ["*.pyx"], "engine.demo": ["data/heartbeat.npz", "data/heartbeat.onnx",
                                                           "data/heartbeat_state_dict.pt", "data/recording.npz"]},
    ext_modules=_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
    install_requires=["numpy>=1.24", "numba>=0.59", "onnx>=1.16", "safetensors>=0.4", "h5py>=3.8"],
    extras_require={
        # keras runs on the torch backend in the tests; g2p-en ships a trained GRU encoder/decoder
        # silero-vad ships an LSTM voice-activity model (its core deps: torch, packaging); onnxscript lets
        # torch.onnx.export(dynamo=True) run
        "test": ["pytest>=7", "hypothesis>=6", "onnxruntime>=1.17", TORCH, "keras>=3", "g2p-en>=2.1",
                 "silero-vad==6.2.3", "onnxscript>=0.3", "matplotlib>=3.7", "ray>=2.9"],
        "plot": ["matplotlib>=3.7"],  # rnnjit demo --plot
        "ray": ["ray>=2.9"],  # engine.distributed.StreamPool
        "bench": ["onnxruntime>=1.17", TORCH],
    },
    entry_points={"console_scripts": ["rnnjit = engine.cli:main"]},
    zip_safe=False,
)
