#!/usr/bin/env bash
# Installs what building (and, with --test, testing) connectivity-agent needs, from Debian
# bookworm. Runs apt-get only when something is missing, so a second run is quick.
set -euo pipefail

build_packages=(
  cmake ninja-build g++ pkg-config  # the toolchain (pkg-config finds yaz)
  libboost1.81-dev        # Asio (with per-operation cancellation) and later Beast
  prometheus-cpp-dev      # metric model and text exposition format
  libcivetweb-dev dpkg-dev  # the HTTP server: its version; built from Debian's source (deploy/linux/build-civetweb.sh)
  libyaml-cpp-dev         # the web config (--web.config.file), YAML as every exporter reads it
  libcrypt-dev            # crypt_r: the bcrypt hashes of the web config's basic_auth_users
  libtomlplusplus-dev     # the TOML config, with source positions for errors
  libcli11-dev            # the command line
  libssl-dev              # TLS and HTTPS probes: handshake, chain inspection, verification
  zlib1g-dev              # gzip for /metrics, which Prometheus asks for on every scrape
  ca-certificates         # the system CA store the TLS probes verify against
  libyaz-dev              # Z39.50 and ISO ILL APDU codecs (ODR), the field's own toolkit
  libpcap-dev             # the inbound watch: capture with a BPF filter for one port
)
test_packages=(
  libgtest-dev            # unit tests
  nftables iproute2       # drop/reject rules inside network namespaces the tests create
  curl python3            # the end-to-end test's client and loopback peer
  openssl nginx-light     # real TLS (s_server) and HTTP/HTTPS (nginx) peers for the probe tests
  tinyproxy               # a real HTTP CONNECT proxy for the proxy tests
  tshark                  # an independent TDS decoder to check the PRELOGIN bytes we send
  clang-14 libclang-rt-14-dev  # libFuzzer for the parsers of untrusted bytes
  yaz                     # yaz-ztest: a real Z39.50 server for the z3950 probe tests
  slapd                   # a real LDAP server (throwaway config) for the ldap probe tests
  prometheus prometheus-alertmanager  # promtool, amtool, and the real engines of the alerting test
  python3-yaml            # the alerting test reads and adapts the shipped YAML configs
  dpkg-dev lintian systemd  # the .deb: shlibdeps and dpkg-buildflags, lintian, systemd-analyze verify
  prometheus-blackbox-exporter  # the benchmark's peer: the same probes, side by side (tests/bench)
  chromium                # a real browser, headless, for the status page test (DOM, scripts off, screenshots)
)

# The Windows build (deploy/windows/build.sh): the cross compiler, Debian's source packages of
# the compiled dependencies (apt-get source, dpkg-source), the autotools their builds run, and
# wine64 to run the Windows tests. The header-only libraries are the build_packages' own.
windows_packages=(
  g++-mingw-w64-x86-64-posix  # the cross compiler (posix threads: std::thread and std::mutex)
  dpkg-dev                # dpkg-source unpacks the source packages with Debian's patches
  perl make               # OpenSSL's Configure, yaz's configure (shipped generated) and make
  autoconf automake libtool  # libxcrypt's configure, which its source does not ship generated
  googletest              # GoogleTest's sources, built for Windows like the rest
  wine64                  # runs the Windows unit tests, the .exe end to end, the MSI and the service
  wixl msitools           # builds the MSI (wixl) and edits and reads its tables (msibuild, msiinfo)
)

packages=("${build_packages[@]}")
for arg in "$@"; do
  case $arg in
    --test) packages+=("${test_packages[@]}") ;;
    --windows) packages+=("${windows_packages[@]}") ;;
    *) echo "usage: install-deps.sh [--test] [--windows]" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
