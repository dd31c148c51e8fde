# The header-only dependencies of the Windows cross build: Debian's own installed headers
# (Boost 1.81, toml++, CLI11), reached through deploy/windows/build-deps.sh's directory of links
# to just them. Their CMake packages describe the Linux install (toml++'s even a shared
# library), so the targets the project links are defined here instead, with the same names.
find_path(CONNECTIVITY_BOOST_INCLUDE_DIR boost/version.hpp REQUIRED)
file(STRINGS "${CONNECTIVITY_BOOST_INCLUDE_DIR}/boost/version.hpp" boost_version_line REGEX "^#define BOOST_VERSION [0-9]+")
string(REGEX REPLACE "^#define BOOST_VERSION ([0-9]+).*" "\\1" boost_version "${boost_version_line}")
if(boost_version LESS 108100)
  message(FATAL_ERROR "Boost 1.81 or later is needed (found ${boost_version} in ${CONNECTIVITY_BOOST_INCLUDE_DIR})")
endif()
add_library(Boost::headers INTERFACE IMPORTED)
set_target_properties(Boost::headers PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CONNECTIVITY_BOOST_INCLUDE_DIR}"
                                                INTERFACE_COMPILE_DEFINITIONS BOOST_ALL_NO_LIB)

find_path(CONNECTIVITY_TOMLPLUSPLUS_INCLUDE_DIR toml++/toml.h REQUIRED)
add_library(tomlplusplus::tomlplusplus INTERFACE IMPORTED)
set_target_properties(tomlplusplus::tomlplusplus PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CONNECTIVITY_TOMLPLUSPLUS_INCLUDE_DIR}")

find_path(CONNECTIVITY_CLI11_INCLUDE_DIR CLI/CLI.hpp REQUIRED)
add_library(CLI11::CLI11 INTERFACE IMPORTED)
set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${CONNECTIVITY_CLI11_INCLUDE_DIR}")
