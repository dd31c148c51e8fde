// A fresh private directory under the system temp directory, for one test's files.
#pragma once

#ifndef _WIN32
#include <stdlib.h>  // mkdtemp
#endif

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <system_error>

namespace connectivity::testing {

// Creates "<tmp>/<stem>-<6 random characters>" (mode 0700) and returns its path; the caller
// removes it. On Windows the path has forward slashes ("C:/Users/.../Temp/stem-abc123"), which
// Windows takes as well, so that tests can put it in a TOML string, where a backslash would
// start an escape.
inline std::string make_temp_dir(const std::string& stem) {
#ifdef _WIN32
  std::string pattern = (std::filesystem::temp_directory_path() / (stem + "-")).generic_string() + std::string(6, 'X');
  // No mkdtemp: random names until create_directory makes a new one (it fails on one that
  // exists). The directory inherits the temp directory's ACL, which is the user's own.
  static constexpr char kLetters[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  thread_local std::mt19937 random{std::random_device{}()};
  std::uniform_int_distribution<std::size_t> pick(0, sizeof kLetters - 2);
  for (int attempt = 0; attempt < 100; ++attempt) {
    for (std::size_t i = pattern.size() - 6; i < pattern.size(); ++i) pattern[i] = kLetters[pick(random)];
    std::error_code error;
    if (std::filesystem::create_directory(pattern, error)) return pattern;
    if (error) throw std::runtime_error("create_directory " + pattern + ": " + error.message());
  }
  throw std::runtime_error("no new directory name for " + pattern);
#else
  std::string pattern = (std::filesystem::temp_directory_path() / (stem + "-")).string() + std::string(6, 'X');
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
  return pattern;
#endif
}

}  // namespace connectivity::testing
