"""Package discovery only (everything else is in pyproject.toml): the repository root is the package
`contrasat`, so every folder below it holding an __init__.py ships as `contrasat.<folder>` without a
hand-kept list."""

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

NOT_SHIPPED = [
    f"{folder}{sub}"
    for folder in ("tests", "bench", "scripts", "docs", "build", "dist")
    for sub in ("", ".*")
]


class BuildPy(build_py):
    """The root package's modules, without this build script (it sits in the package folder)."""

    def find_package_modules(self, package, package_dir):
        modules = super().find_package_modules(package, package_dir)
        return [m for m in modules if not (package == "contrasat" and m[1] == "setup")]


setup(
    packages=["contrasat", *(f"contrasat.{p}" for p in find_packages(".", exclude=NOT_SHIPPED))],
    cmdclass={"build_py": BuildPy},
)
