"""Build of the optional C flattener (collector/codecs/_otlp_flat.c); everything else is in pyproject.toml.

optional=True: without a C compiler the install still succeeds and the collector uses the Python
flattener (same results, slower).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "collector.codecs._otlp_flat",
            ["collector/codecs/_otlp_flat.c"],
            extra_compile_args=["-O2", "-Wall", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    ]
)
