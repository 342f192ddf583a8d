"""Example flows used by the demo, the docs and the tests. Each module defines ``flow``."""
