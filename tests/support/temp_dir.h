// A fresh private directory under the system temp directory, for one test's files.
#pragma once

#include <stdlib.h>  // mkdtemp

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>

namespace connectivity::testing {

// Creates "<tmp>/<stem>-<6 random characters>" (mode 0700) and returns its path; the caller
// removes it.
inline std::string make_temp_dir(const std::string& stem) {
  std::string pattern = (std::filesystem::temp_directory_path() / (stem + "-")).string() + std::string(6, 'X');
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp " + pattern + ": " + std::strerror(errno));  // NOLINT(concurrency-mt-unsafe)
  return pattern;
}

}  // namespace connectivity::testing
