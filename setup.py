"""
The package is declared in setup.cfg. This file only adds one step to
building it: the page (web/, bundled by Node.js) is built into
xmppnetgraph/http/static/ when it is not there yet, so that a wheel made
by "pip wheel ." or "pip install ." from a clean checkout or an sdist
carries it and an installed node serves the page without Node.js.
"""

import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithPage(build_py):
    """
    build_py that first builds the page if the checkout has no build.
    """

    def run(self) -> None:
        index = HERE / "xmppnetgraph" / "http" / "static" / "index.html"
        web = HERE / "web"
        if not index.is_file():
            if not (web / "package.json").is_file():
                raise SystemExit("xmppnetgraph: neither a built page nor its source (web/) is here")
            try:
                subprocess.run(
                    ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=web, check=True
                )
                subprocess.run(["npm", "run", "--silent", "build"], cwd=web, check=True)
            except FileNotFoundError:
                raise SystemExit(
                    "xmppnetgraph: building the page needs Node.js and npm "
                    "(Debian: apt-get install nodejs npm)"
                ) from None
            # The package data was listed before the build made it.
            self.data_files = self._get_data_files()
        super().run()


setup(cmdclass={"build_py": BuildPyWithPage})
