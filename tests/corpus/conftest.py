"""The corpus modules are flows, not tests: pytest does not collect them (their docstrings are
not doctests, and importing one outside a prepared environment would make a ``LocalResult``'s
default directory in the user's home)."""

collect_ignore_glob = ["*.py"]
