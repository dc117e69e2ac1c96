#!/usr/bin/env bash
# Builds realistic store paths from files on this machine (no network):
#   make_corpus.sh small|medium [variant]
# prints the root store path. small: ~6 MB in 25 paths; medium: ~500 MB in
# 205 paths. A different variant changes one file per package, like a rebuild.
set -euo pipefail
size=${1:-small}
variant=${2:-1}
export NIX_CONFIG=${NIX_CONFIG:-$'sandbox = false\nbuild-users-group =\nexperimental-features = nix-command\nsubstituters ='}
py=$(ls -d /usr/lib/python3.* | head -1)
case "$size" in
  small)  sources="python=$py/json python-email=$py/email headers=/usr/include/linux"; leaves=20 ;;
  medium) sources="python=$py headers=/usr/include gcc=/usr/lib/gcc docs=/usr/share/doc"; leaves=200 ;;
  *) echo "usage: $0 small|medium [variant]" >&2; exit 2 ;;
esac

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
packages=""
names=""
for s in $sources; do
  packages+="  ${s%%=*} = mk \"${s%%=*}\" \"${s#*=}\" [ base ];"$'\n'
  names+=" ${s%%=*}"
done
cat > "$dir/corpus.nix" <<NIX
let
  system = builtins.currentSystem;
  variant = "$variant";
  mk = name: src: deps: derivation {
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" "/bin/mkdir -p \$out/share && /bin/cp -a \${src}/. \$out/share/ 2>/dev/null; /bin/chmod -R u+w \$out; echo variant-\${variant} > \$out/share/VERSION; for d in \${toString deps}; do echo \$d >> \$out/deps; done" ];
  };
  leaf = i: derivation {
    name = "leaf-\${toString i}"; inherit system; builder = "/bin/sh";
    args = [ "-c" "echo leaf \${toString i} variant \${variant} > \$out" ];
  };
  base = mk "base" "/usr/share/common-licenses" (builtins.genList leaf $leaves);
$packages
in mk "corpus-root" "/usr/share/common-licenses" [$names ]
NIX
nix-build --no-out-link "$dir/corpus.nix" 2>/dev/null
