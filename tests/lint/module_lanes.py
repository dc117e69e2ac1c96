#!/usr/bin/env python3
"""Fails when a source file includes a module (or a library) its module may
not use: the table in DESIGN.md, as docs/architecture.md amends it.

Usage: module_lanes.py SRC_DIR
"""
import pathlib
import re
import sys

# module -> the other modules it may include
MODULES = {
    "util": set(),
    "crypto": {"util"},
    "nix": {"util", "crypto"},
    "nar": {"util", "crypto"},
    "codec": {"util"},
    "chunk": {"util"},
    "blob": {"util"},
    "sqlite": {"util"},
    "db": {"util", "nix", "sqlite"},
    "upstream": {"util"},
    "cache": {"util", "crypto", "nix", "nar", "codec", "chunk", "blob", "db", "upstream"},
    "http": {"util", "nix", "cache"},
    "client": {"util", "crypto", "nix", "nar", "codec", "chunk", "sqlite"},
    "app": None,  # wires everything
}
# third-party headers -> the modules that may include them
LIBRARIES = {
    "openssl/": {"crypto", "blob", "http"},
    "zstd.h": {"codec"},
    "lzma.h": {"codec"},
    "bzlib.h": {"codec"},
    "sqlite3.h": {"sqlite", "db"},
    "libpq-fe.h": {"db"},
    "curl/": {"blob", "client", "upstream"},
    "boost/": {"http", "app"},
    "nlohmann/": {"cache", "http", "client", "app"},
    "toml++/": {"client", "app"},
    "CLI/": {"app"},
}

src = pathlib.Path(sys.argv[1])
include = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
errors = []
for path in sorted(src.rglob("*")):
    if path.suffix not in (".hpp", ".cpp"):
        continue
    module = path.relative_to(src).parts[0]
    allowed = MODULES.get(module, set())
    for kind, name in include.findall(path.read_text()):
        first = name.split("/")[0]
        if kind == '"' and first in MODULES:
            if allowed is not None and first != module and first not in allowed:
                errors.append(f"{path.relative_to(src)}: module '{module}' may not include {name}")
        for prefix, users in LIBRARIES.items():
            if name.startswith(prefix) and module not in users:
                errors.append(f"{path.relative_to(src)}: module '{module}' may not use {name}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"module lanes kept ({len(MODULES)} modules)")
