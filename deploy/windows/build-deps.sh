#!/usr/bin/env bash
# Builds the agent's compiled dependencies for Windows x64 from Debian's own source packages
# (OpenSSL, CivetWeb, prometheus-cpp, yaz, libxcrypt, yaml-cpp) and GoogleTest from Debian's
# googletest package, with the mingw-w64 cross compiler, as static libraries. Writes a CMake
# toolchain file to OUT that includes cmake/mingw-w64-x86_64.cmake and adds every prefix, so
# the project's cross build finds exactly these.
#
# Each build lands in CACHE/<package>-<version>-<recipe>, where <recipe> hashes this script's
# build function for it, the compiler's version and the prefixes of the builds it is built
# against (CivetWeb: OpenSSL's): a second run on the same machine, or a CI run after one, reuses
# it; a new Debian version, a changed recipe, a new compiler or a rebuilt dependency builds it
# again. An epoch's colon is '_' in <version> (a colon would split PKG_CONFIG_LIBDIR). Nothing
# here downloads anything but Debian source packages.
#
# Usage: build-deps.sh OUT_TOOLCHAIN_FILE      (env: CONNECTIVITY_WINDOWS_CACHE, JOBS)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${1:?usage: build-deps.sh OUT_TOOLCHAIN_FILE}
cache=${CONNECTIVITY_WINDOWS_CACHE:-/var/cache/connectivity-agent/windows}
jobs=${JOBS:-$(nproc)}
host=x86_64-w64-mingw32
toolchain=$repo/cmake/mingw-w64-x86_64.cmake
mkdir -p "$cache/src"
log() { echo "windows deps: $*" >&2; }

# apt-get source needs deb-src entries: the same mirrors, suites, components and keyrings as
# the machine's deb entries (deb822 or one-line format), in a file of our own.
ensure_deb_src() {
  local list=/etc/apt/sources.list.d/connectivity-agent-deb-src
  if apt-cache showsrc prometheus-cpp 2>/dev/null | grep -q '^Version:'; then return; fi
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources > "$list.sources"
  else
    grep -h '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      sed 's/^deb /deb-src /' > "$list.list"
  fi
  apt-get update -qq
}

# The versions Debian lists for a source package, newest first.
source_versions() { apt-cache showsrc "$1" | awk '/^Version:/ {print $2}' | sort -u -V -r; }

# recipe_key FUNCTION [DEPENDENCY_PREFIX...]: hash of the build function, the compiler and the
# dependencies' prefixes (none: the same key as before dependencies were keyed).
recipe_key() {
  { declare -f "$1"; "$host-g++-posix" -dumpfullversion; if [ $# -gt 1 ]; then printf '%s\n' "${@:2}"; fi; } |
    sha256sum | cut -c1-10
}

# unpack PACKAGE VERSION DIR: apt-get source (Debian's patches applied) into DIR. A security
# upload's .dsc may be missing from the mirror while its tarball is there: then it fails, and
# the caller tries the next version.
unpack() {
  local package=$1 version=$2 dir=$3 work
  work=$(mktemp -d "$cache/src/unpack.XXXXXX")
  if ! (cd "$work" && apt-get source -qq "$package=$version" > "$work/apt.log" 2>&1); then
    log "$package $version: source not available ($(tail -n 1 "$work/apt.log"))"
    rm -rf "$work"
    return 1
  fi
  rm -rf "$dir"
  mv "$work/$(cd "$work" && ls -d "$package"-*/ | head -n 1)" "$dir"
  rm -rf "$work"
}

build_openssl() {  # SOURCE PREFIX
  # Debian's own openssl.cnf raises the default security level to 2 on Linux; no config file is
  # read on Windows (no-autoload-config), so the same level is compiled in instead, and the
  # probes accept and refuse the same certificates and ciphers on both.
  (cd "$1" && ./Configure mingw64 no-shared no-tests no-autoload-config -DOPENSSL_TLS_SECURITY_LEVEL=2 \
      --prefix="$2" --libdir=lib --openssldir=/nonexistent \
      CC=$host-gcc-posix AR=$host-ar RANLIB=$host-ranlib RC=$host-windres &&
    make -j "$jobs" build_libs && make install_dev)
}

build_civetweb() {  # SOURCE PREFIX OPENSSL_PREFIX
  # With TLS (the web config's tls_server_config; the agent hands CivetWeb its own SSL_CTX),
  # linked statically against the OpenSSL built above: no DLL to load at run time. CivetWeb
  # 1.15's CMake has no switch for the OpenSSL 3 API (1.16's CIVETWEB_SSL_OPENSSL_API_3_0): its
  # 1.1 switch, on by default, is turned off and OPENSSL_API_3_0 defined instead, as 1.16 does.
  # OpenSSL's prefix is a find root, or the cross build's find would look for it under the
  # mingw sysroot. CivetWeb's CMake package then names OpenSSL's two libraries by path; what
  # they need themselves (crypt32, ws2_32) the project adds (CMakeLists.txt, WIN32).
  cmake -S "$1" -B "$1.build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$2" -DBUILD_SHARED_LIBS=OFF -DCIVETWEB_BUILD_TESTING=OFF -DCIVETWEB_ENABLE_CXX=ON \
    -DCIVETWEB_ENABLE_SSL=ON -DCIVETWEB_ENABLE_SSL_DYNAMIC_LOADING=OFF -DCIVETWEB_SSL_OPENSSL_API_1_0=OFF \
    -DCIVETWEB_SSL_OPENSSL_API_1_1=OFF -DCMAKE_C_FLAGS=-DOPENSSL_API_3_0 \
    -DCMAKE_FIND_ROOT_PATH="$3" -DOPENSSL_ROOT_DIR="$3" -DOPENSSL_USE_STATIC_LIBS=TRUE \
    -DCIVETWEB_ENABLE_SERVER_EXECUTABLE=OFF -DCIVETWEB_INSTALL_EXECUTABLE=OFF \
    -DCIVETWEB_ENABLE_WEBSOCKETS=ON -DCIVETWEB_ENABLE_ASAN=OFF
  cmake --build "$1.build" -j "$jobs" && cmake --install "$1.build"
}

build_zlib() {  # SOURCE PREFIX
  # Only the static library, compiled file by file: Debian's source leaves out zlib's win32
  # makefiles, and its CMake build would also make a DLL whose import library find_package(ZLIB)
  # could pick, so that the .exe would need zlib1.dll. These are the files of zlib's own libz.a.
  local file objects=()
  mkdir -p "$2/lib" "$2/include" "$1.build" || return 1
  for file in adler32 compress crc32 deflate gzclose gzlib gzread gzwrite infback inffast inflate inftrees \
      trees uncompr zutil; do
    $host-gcc-posix -O2 -I"$1" -c "$1/$file.c" -o "$1.build/$file.o" || return 1
    objects+=("$1.build/$file.o")
  done
  $host-ar rcs "$2/lib/libz.a" "${objects[@]}" && cp "$1/zlib.h" "$1/zconf.h" "$2/include/"
}

build_prometheus_cpp() {  # SOURCE PREFIX
  # Only the core (registry, metric families): the agent serves /metrics through CivetWeb itself.
  cmake -S "$1" -B "$1.build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$2" -DBUILD_SHARED_LIBS=OFF -DUSE_THIRDPARTY_LIBRARIES=OFF -DENABLE_PUSH=OFF \
    -DENABLE_PULL=OFF -DENABLE_COMPRESSION=OFF -DENABLE_TESTING=OFF -DGENERATE_PKGCONFIG=OFF
  cmake --build "$1.build" -j "$jobs" && cmake --install "$1.build"
}

build_yaz() {  # SOURCE PREFIX
  # Only libyaz, for its Z39.50 and ILL codecs and PQF parser: no XML, ICU or TLS. Threads off:
  # with the posix thread model yaz would take both its pthread and its Win32 paths at once.
  # getaddrinfo lives in ws2_32, which the configure check does not link. yaz's headers mark
  # every symbol for a DLL on Windows (its own sources too); in a static library the marks must
  # be empty, here and in every program that includes them (the .pc below).
  (cd "$1" && ./configure --host=$host CC=$host-gcc-posix LIBS=-lws2_32 ac_cv_func_getaddrinfo=yes \
      CFLAGS="-O2 -DYAZ_EXPORT= -DYAZ_IMPORT=" \
      --prefix="$2" --disable-shared --enable-static --disable-threads --without-xml2 --without-xslt \
      --without-exslt --without-gnutls --without-icu --without-redis --without-memcached --without-iconv \
      --disable-tcpd > configure.out &&
    make -C src -j "$jobs" libyaz.la)
  mkdir -p "$2/lib/pkgconfig" "$2/include/yaz"
  cp "$1/src/.libs/libyaz.a" "$2/lib/"
  cp "$1"/src/yaz/*.h "$2/include/yaz/"
  # yaz's own yaz.pc names libxslt and pthread flags this build does not have: the project finds
  # yaz through pkg-config on both platforms, so this one says what was built.
  cat > "$2/lib/pkgconfig/yaz.pc" << EOF
prefix=$2
Name: YAZ
Description: YAZ's Z39.50 and ILL codecs, built for Windows
Version: $(sed -n 's/^Version: //p' "$1/yaz.pc")
Libs: -L\${prefix}/lib -lyaz -lws2_32
Cflags: -I\${prefix}/include -DYAZ_EXPORT= -DYAZ_IMPORT=
EOF
}

build_libxcrypt() {  # SOURCE PREFIX
  # For crypt_r, which checks the web config's bcrypt password hashes: only the bcrypt hashes
  # ($2a$, $2b$, $2y$), no obsolete API, no symbol versioning (an ELF feature). Its configure is
  # not shipped generated, hence autoreconf. Its own libxcrypt.pc (pkg-config finds it, as on
  # Linux) names just -lcrypt.
  (cd "$1" && autoreconf -fi > autoreconf.out 2>&1 &&
    ./configure --host=$host CC=$host-gcc-posix --prefix="$2" --disable-shared --enable-static \
      --enable-hashes=bcrypt,bcrypt_y,bcrypt_a --enable-obsolete-api=no --disable-symvers --disable-werror \
      --disable-xcrypt-compat-files > configure.out &&
    make -j "$jobs" libcrypt.la && make install-libLTLIBRARIES install-nodist_includeHEADERS install-pkgconfigDATA)
}

build_yaml_cpp() {  # SOURCE PREFIX
  # The web config's YAML. Static, and then yaml-cpp 0.7's headers need nothing defined: they
  # mark symbols for a DLL only under YAML_CPP_DLL, which only its shared build sets.
  cmake -S "$1" -B "$1.build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$2" -DBUILD_SHARED_LIBS=OFF -DYAML_BUILD_SHARED_LIBS=OFF -DYAML_CPP_BUILD_TESTS=OFF \
    -DYAML_CPP_BUILD_TOOLS=OFF -DYAML_CPP_BUILD_CONTRIB=ON -DYAML_CPP_INSTALL=ON
  cmake --build "$1.build" -j "$jobs" && cmake --install "$1.build"
}

build_googletest() {  # SOURCE PREFIX
  cmake -S "$1" -B "$1.build" -G Ninja -DCMAKE_TOOLCHAIN_FILE="$toolchain" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$2" -DBUILD_GMOCK=OFF
  cmake --build "$1.build" -j "$jobs" && cmake --install "$1.build"
}

prefixes=()

# from_source PACKAGE FUNCTION [DEPENDENCY_PREFIX...]: the newest version Debian has a source for,
# built once; FUNCTION gets the dependencies' prefixes after its SOURCE and PREFIX.
from_source() {
  local package=$1 recipe=$2 key version prefix
  key=$(recipe_key "$recipe" "${@:3}")
  for version in $(source_versions "$package"); do
    prefix=$cache/$package-${version//:/_}-$key
    if [ -f "$prefix/.complete" ]; then
      log "$package $version: cached in $prefix"
      prefixes+=("$prefix")
      return
    fi
    # A version whose source the mirror lacks is remembered, not downloaded again every run.
    [ -f "$cache/src/$package-$version.unavailable" ] && continue
    if ! unpack "$package" "$version" "$cache/src/$package"; then
      touch "$cache/src/$package-$version.unavailable"
      continue
    fi
    log "$package $version: building into $prefix"
    rm -rf "$prefix"
    if ! "$recipe" "$cache/src/$package" "$prefix" "${@:3}" > "$cache/src/$package.log" 2>&1; then
      tail -n 40 "$cache/src/$package.log" >&2
      log "$package $version: build failed (log: $cache/src/$package.log)"
      exit 1
    fi
    echo "$package $version" > "$prefix/.complete"
    rm -rf "$cache/src/$package" "$cache/src/$package.build"
    # Builds of other versions or recipes of this package are stale now: the cache keeps one.
    for stale in "$cache/$package"-[0-9]*; do
      [ "$stale" != "$prefix" ] && [ -f "$stale/.complete" ] && rm -rf "$stale"
    done
    prefixes+=("$prefix")
    return
  done
  log "$package: no source version could be fetched"
  exit 1
}

# The header-only libraries are Debian's installed -dev packages, seen through a directory of
# links to just them, because the cross compiler must never see /usr/include as a whole.
header_only_prefix() {
  local boost toml cli prefix
  boost=$(dpkg-query -W -f='${Version}' libboost1.81-dev)
  toml=$(dpkg-query -W -f='${Version}' libtomlplusplus-dev)
  cli=$(dpkg-query -W -f='${Version}' libcli11-dev)
  prefix=$cache/headers-boost$boost-toml$toml-cli$cli
  mkdir -p "$prefix/include"
  ln -sfn /usr/include/boost "$prefix/include/boost"
  ln -sfn /usr/include/toml++ "$prefix/include/toml++"
  ln -sfn /usr/include/CLI "$prefix/include/CLI"
  prefixes+=("$prefix")
}

ensure_deb_src
from_source openssl build_openssl
openssl_prefix=${prefixes[-1]}
from_source civetweb build_civetweb "$openssl_prefix"
from_source prometheus-cpp build_prometheus_cpp
from_source zlib build_zlib
from_source yaz build_yaz
from_source libxcrypt build_libxcrypt
from_source yaml-cpp build_yaml_cpp
# GoogleTest's sources are what Debian's googletest package installs (/usr/src/googletest).
gtest_version=$(dpkg-query -W -f='${Version}' googletest)
gtest_prefix=$cache/googletest-$gtest_version-$(recipe_key build_googletest)
if [ ! -f "$gtest_prefix/.complete" ]; then
  log "googletest $gtest_version: building into $gtest_prefix"
  rm -rf "$cache/src/googletest" "$gtest_prefix"
  cp -r /usr/src/googletest "$cache/src/googletest"
  build_googletest "$cache/src/googletest" "$gtest_prefix" > "$cache/src/googletest.log" 2>&1 ||
    { tail -n 40 "$cache/src/googletest.log" >&2; exit 1; }
  echo "googletest $gtest_version" > "$gtest_prefix/.complete"
  rm -rf "$cache/src/googletest" "$cache/src/googletest.build"
fi
prefixes+=("$gtest_prefix")
header_only_prefix

mkdir -p "$(dirname "$out")"
{
  echo "# Written by deploy/windows/build-deps.sh: the mingw toolchain and the dependency prefixes."
  echo "include(\"$toolchain\")"
  echo "list(APPEND CMAKE_FIND_ROOT_PATH $(printf '"%s" ' "${prefixes[@]}"))"
  echo "list(APPEND CMAKE_PREFIX_PATH $(printf '"%s" ' "${prefixes[@]}"))"
  # pkg-config (yaz, libxcrypt) reads only these prefixes' .pc files, never the build machine's.
  echo "set(ENV{PKG_CONFIG_LIBDIR} \"$(printf '%s/lib/pkgconfig:' "${prefixes[@]}")\")"
  echo "set(CONNECTIVITY_WINDOWS_DEPENDENCIES \"$(for p in "${prefixes[@]}"; do [ -f "$p/.complete" ] && tr '\n' ';' < "$p/.complete"; done)\")"
} > "$out"
log "toolchain with dependencies: $out"
