"""Build of the optional C extensions; everything else is in pyproject.toml.

- collector/codecs/_otlp_flat.c: OTLP spans -> Arrow column buffers.
- collector/codecs/_lp_fast.c: Influx line protocol bodies -> sample columns.

optional=True: without a C compiler the install still succeeds and the collector uses the Python
code paths (same results, slower).
"""

from setuptools import Extension, setup

_FLAGS = ["-O2", "-Wall", "-Werror=implicit-function-declaration"]

setup(
    ext_modules=[
        Extension(f"collector.codecs.{name}", [f"collector/codecs/{name}.c"], extra_compile_args=_FLAGS, optional=True)
        for name in ("_otlp_flat", "_lp_fast")
    ]
)
