// What a test needs that only Linux gives it, said where the test starts. On Windows (the
// unit tests cross-built with mingw-w64 and run under wine) such a test skips with the reason;
// on Linux SKIP_ON_WINDOWS is nothing at all.
#pragma once

#include <gtest/gtest.h>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>  // before windows.h: after it, a later <winsock2.h> warns
#include <windows.h>
#endif

#include <fstream>
#include <string>

namespace connectivity::testing {

// The reason for a test whose peer is a Linux server process (openssl s_server, nginx,
// tinyproxy, slapd, yaz-ztest): a Windows test program cannot start and supervise one.
#define CONNECTIVITY_LINUX_PEER(what)                                                                              \
  what ": a Linux server process; the Windows end-to-end test under wine runs this probe against it"

#ifdef _WIN32
inline constexpr bool kWindows = true;
// Skips the current test (from a TEST body, SetUp or SetUpTestSuite) on Windows, saying why.
#define SKIP_ON_WINDOWS(reason) GTEST_SKIP() << "on Windows: " << (reason)
#else
inline constexpr bool kWindows = false;
#define SKIP_ON_WINDOWS(reason) static_cast<void>(0)
#endif

// Whether this Windows program runs under wine (its ntdll exports wine_get_version), which maps
// Winsock onto Linux's sockets and cannot emulate every Windows behaviour: a test that meets one
// of those skips, saying which. False on Linux and on Windows itself.
inline bool under_wine() {
#ifdef _WIN32
  const HMODULE ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll != nullptr && GetProcAddress(ntdll, "wine_get_version") != nullptr;
#else
  return false;
#endif
}

// The Linux programs the tests use, each as a skip reason.
inline constexpr const char* kNeedsOpensslServer = CONNECTIVITY_LINUX_PEER("openssl s_server");
inline constexpr const char* kNeedsNginx = CONNECTIVITY_LINUX_PEER("nginx");
inline constexpr const char* kNeedsTinyproxy = CONNECTIVITY_LINUX_PEER("nginx behind tinyproxy");
inline constexpr const char* kNeedsSlapd = CONNECTIVITY_LINUX_PEER("OpenLDAP's slapd");
inline constexpr const char* kNeedsYazZtest = CONNECTIVITY_LINUX_PEER("yaz-ztest");
inline constexpr const char* kNeedsTshark =
    "tshark and text2pcap decode what the probe sent: Linux programs (the Linux build runs this test)";

// The system's empty device: what reads as an empty file.
inline constexpr const char* kNullDevice = kWindows ? "NUL" : "/dev/null";

// What reads on past the 16 MiB cap of config and profile files: Linux's /dev/zero, which never
// ends. Windows has no endless device: there a file of 16 MiB and one byte, written into `dir`
// (which the caller removes), stands in for it.
inline std::string endless_file([[maybe_unused]] const std::string& dir) {
#ifdef _WIN32
  const std::string path = dir + "/endless.bin";
  std::ofstream out(path, std::ios::binary);
  const std::string mebibyte(std::size_t{1} << 20, '#');
  for (int i = 0; i < 16; ++i) out << mebibyte;
  out << '#';
  return path;
#else
  return "/dev/zero";
#endif
}

}  // namespace connectivity::testing
