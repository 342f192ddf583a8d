# Shared by the layer Makefiles: compile a layer's Python to hash-checked bytecode.
#
# Lambda's /opt is read-only, so a layer without bytecode compiles every module it imports on
# every cold start. The bytecode must be hash-based (PEP 552): `sam build` zips files with
# 1980 timestamps, so timestamp-based .pyc files never validate and are recompiled anyway.
# It must be compiled by the runtime's Python version (python3.11 in template.yaml).

PYTHON ?= python3.11

# $(call compile-bytecode,DIR)
define compile-bytecode
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "layer bytecode needs python3.11, not " + sys.version.split()[0])'
	$(PYTHON) -m compileall -q -f -j 0 --invalidation-mode checked-hash "$(1)"
endef
