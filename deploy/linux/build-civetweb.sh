#!/usr/bin/env bash
# Builds CivetWeb for the Linux build from Debian's own source package, as a static library, and
# prints the prefix it is installed in. CMake runs it at configure time (CMakeLists.txt).
#
# Why not Debian's libcivetweb1: it is built without IPv6 (`[::]:9470` cannot be listened on)
# and loads OpenSSL at run time by the names libssl.so and libcrypto.so (present only with
# libssl-dev), looking up SSL_get_peer_certificate, which OpenSSL 3 no longer exports: the first
# TLS connection then calls a null pointer and the agent dies (upstream issue civetweb#1334).
# Built here from the same Debian source, with IPv6 on and OpenSSL linked at build time (its
# headers map the old name to the new function), both work.
#
# The build lands in CACHE/civetweb-<version>-<recipe>, <recipe> hashing this script and the
# compiler's version: later runs, and CI runs after one, reuse it. Nothing here downloads
# anything but the Debian source package.
#
# Usage: build-civetweb.sh       (env: CONNECTIVITY_LINUX_CACHE, JOBS)
set -euo pipefail
# /var/cache when this user may write there (root, CI); else the user's own cache, so a build
# run without root (after `sudo deploy/install-deps.sh`) works too.
default_cache=/var/cache/connectivity-agent/linux
if ! mkdir -p "$default_cache" 2> /dev/null || [ ! -w "$default_cache" ]; then
  default_cache=${XDG_CACHE_HOME:-$HOME/.cache}/connectivity-agent/linux
fi
cache=${CONNECTIVITY_LINUX_CACHE:-$default_cache}
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
jobs=${JOBS:-$(nproc)}
log() { echo "civetweb from source: $*" >&2; }

recipe=$({ cat "$0"; c++ -dumpfullversion; } | sha256sum | cut -c1-10)
# The version Debian's installed -dev package has: the source that matches what apt resolves.
version=$(dpkg-query -W -f='${source:Version}' libcivetweb-dev 2>/dev/null || true)
[ -n "$version" ] || version=$(apt-cache showsrc civetweb | awk '/^Version:/ {print $2}' | sort -V -r | head -n 1)
prefix=$cache/civetweb-$version-$recipe
if [ -f "$prefix/.complete" ]; then
  echo "$prefix"
  exit 0
fi

mkdir -p "$cache/src"
# apt-get source needs deb-src entries: the same mirrors and suites as the deb entries.
if ! apt-cache showsrc civetweb 2>/dev/null | grep -q '^Version:'; then
  list=/etc/apt/sources.list.d/connectivity-agent-deb-src
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $sudo tee "$list.sources" > /dev/null
  else
    grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | sed 's/^deb /deb-src /' |
      $sudo tee "$list.list" > /dev/null
  fi
  $sudo apt-get update -qq >&2
fi
work=$(mktemp -d "$cache/src/civetweb.XXXXXX")
trap 'rm -rf "$work"' EXIT
log "building $version into $prefix"
(cd "$work" && apt-get source -qq "civetweb=$version" > apt.log 2>&1) || { tail -n 5 "$work/apt.log" >&2; exit 1; }
source_dir=$(cd "$work" && ls -d civetweb-*/ | head -n 1)
rm -rf "$prefix"
# Static, position-independent (the agent may be a PIE), no executable, no tests, no
# dynamic loading of OpenSSL, IPv6 and the C++ wrapper on.
if ! cmake -S "$work/$source_dir" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON -DBUILD_SHARED_LIBS=OFF -DCIVETWEB_BUILD_TESTING=OFF \
    -DCIVETWEB_ENABLE_SERVER_EXECUTABLE=OFF -DCIVETWEB_INSTALL_EXECUTABLE=OFF -DCIVETWEB_ENABLE_CXX=ON \
    -DCIVETWEB_ENABLE_IPV6=ON -DCIVETWEB_ENABLE_SSL=ON -DCIVETWEB_ENABLE_SSL_DYNAMIC_LOADING=OFF \
    -DCIVETWEB_SSL_OPENSSL_API_1_1=ON -DCIVETWEB_ENABLE_WEBSOCKETS=ON -DCIVETWEB_ENABLE_ASAN=OFF \
    > "$work/build.log" 2>&1 ||
  ! cmake --build "$work/build" -j "$jobs" >> "$work/build.log" 2>&1 ||
  ! cmake --install "$work/build" >> "$work/build.log" 2>&1; then
  tail -n 40 "$work/build.log" >&2
  log "build failed"
  exit 1
fi
echo "civetweb $version" > "$prefix/.complete"
for stale in "$cache"/civetweb-[0-9]*; do
  [ "$stale" != "$prefix" ] && [ -f "$stale/.complete" ] && rm -rf "$stale"
done
echo "$prefix"
