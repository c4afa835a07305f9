#!/usr/bin/env bash
# Installs club-provider as a systemd service: checks Node.js, installs the package with npm,
# then `club-provider service install` creates the system user, puts the key in a 0600 file,
# writes the hardened unit and enables it. Run it again to update or change settings.
#
#   sudo ./install.sh --relay wss://club.example --key-file key.txt [--service http://127.0.0.1:8080]
#
# --root DIR installs into DIR instead of / (a throwaway root, an image): the user goes into
# DIR/etc/passwd, files under DIR, and systemctl is not called.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: install.sh --relay URL [--key-file FILE] [options]

  --relay URL       the club's relay (or CLUB_RELAY_URL)
  --key-file FILE   your API key, in a file only you can read (or CLUB_API_KEY; asked for
                    when run in a terminal; kept when already installed)
  --name NAME       provider name shown to the club (default: the hostname)
  --service URL     an engine to serve, e.g. http://127.0.0.1:8080 (repeatable)
  --package SPEC    what npm installs (default: this checkout when run from one, else
                    club-provider from the npm registry)
  --no-build        from a checkout, install its existing dist/ instead of building it first
  --prefix DIR      npm global prefix (default /usr/local)
  --root DIR        install into DIR instead of / (no systemctl; for images and tests)
  --no-start        enable the service but do not start it now
  -h, --help        this help
EOF
}

die() {
  printf 'install.sh: %s\n' "$*" >&2
  exit 1
}

relay="${CLUB_RELAY_URL:-}"
key_file=""
package=""
prefix="/usr/local"
root="/"
build=1
service_args=()

while [ $# -gt 0 ]; do
  case "$1" in
    --relay) relay="${2:?--relay needs a URL}"; shift 2 ;;
    --key-file) key_file="${2:?--key-file needs a file}"; shift 2 ;;
    --name) service_args+=(--name "${2:?--name needs a name}"); shift 2 ;;
    --service) service_args+=(--service "${2:?--service needs a URL}"); shift 2 ;;
    --package) package="${2:?--package needs an npm spec}"; shift 2 ;;
    --no-build) build=0; shift ;;
    --prefix) prefix="${2:?--prefix needs a directory}"; shift 2 ;;
    --root) root="${2:?--root needs a directory}"; shift 2 ;;
    --no-start) service_args+=(--no-start); shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

[ -n "$relay" ] || die "pass the relay URL: --relay wss://club.example (or set CLUB_RELAY_URL)"
if [ "$root" = "/" ] && [ "$(id -u)" != 0 ]; then
  die "run as root (sudo ./install.sh ...): it creates a system user and a systemd unit"
fi
mkdir -p "$root"
root="$(cd "$root" && pwd -P)"
dest="${root%/}$prefix"

# 1. Node.js >= 22.19, installed system-wide: the service cannot see a home directory.
need_node() {
  cat >&2 <<EOF
install.sh: club-provider needs Node.js 22.19 or newer ($1).
Install it system-wide, for example:
  Debian/Ubuntu:  curl -fsSL https://deb.nodesource.com/setup_22.x | sudo -E bash - && sudo apt-get install -y nodejs
  Fedora/RHEL:    sudo dnf install nodejs
  any Linux:      https://nodejs.org/en/download (unpack under /usr/local)
A Node.js under your home directory (nvm) is hidden from the service (ProtectHome=yes).
EOF
  exit 1
}
node_bin="$(command -v node || true)"
[ -n "$node_bin" ] || need_node "none found on PATH"
node_bin="$(readlink -f "$node_bin")"
node_version="$("$node_bin" -p process.versions.node)"
IFS=. read -r major minor _ <<<"$node_version"
if [ "$major" -lt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -lt 19 ]; }; then
  need_node "this is $node_version"
fi
command -v npm >/dev/null || die "npm is missing: it comes with Node.js; install Node.js from the links above"
echo "== Node.js $node_version at $node_bin"

# 2. The package. From a checkout: build it, then install a copy (not a link into the checkout).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
if [ -z "$package" ]; then
  if [ -d "$here/src" ] && grep -q '"name": "club-provider"' "$here/package.json" 2>/dev/null; then
    package="$here"
    if [ "$build" = 1 ] || [ ! -f "$here/dist/src/cli/main.js" ]; then
      echo "== building the checkout at $here"
      [ -d "$here/node_modules" ] || (cd "$here" && npm ci --no-audit --no-fund)
      (cd "$here" && npm run build --silent)
    fi
  else
    package="club-provider"
  fi
fi
echo "== installing $package into $dest"
npm install --global --install-links --no-audit --no-fund --prefix "$dest" "$package"
cli="$dest/lib/node_modules/club-provider/bin/club-provider"
[ -f "$cli" ] || die "npm did not install $cli"

# 3. The key: from --key-file, CLUB_API_KEY, or asked for; never on a command line.
key_args=()
if [ -n "$key_file" ]; then
  key_args=(--api-key-file "$key_file")
elif [ -z "${CLUB_API_KEY:-}" ] && [ ! -f "$root/etc/club-provider/key" ]; then
  [ -t 0 ] || die "no API key: pass --key-file FILE or set CLUB_API_KEY"
  read -rsp "API key for $relay: " CLUB_API_KEY
  echo
  export CLUB_API_KEY
fi

# 4. User, key file, unit, systemctl: the same code as `club-provider service install`.
echo "== installing the service"
"$node_bin" "$cli" service install --root "$root" --relay "$relay" --node "$node_bin" \
  --bin "$dest/bin/club-provider" ${key_args[@]+"${key_args[@]}"} \
  ${service_args[@]+"${service_args[@]}"}
echo "== done: \`club-provider service status\` and \`club-provider doctor\` check it"
