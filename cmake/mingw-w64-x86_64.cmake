# Cross-compiling for Windows x64 on Debian with mingw-w64 (package g++-mingw-w64-x86-64-posix).
# The posix thread model, not win32: std::thread, std::mutex and std::condition_variable need it.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_VERSION 10.0)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_AR x86_64-w64-mingw32-ar CACHE FILEPATH "")
set(CMAKE_RANLIB x86_64-w64-mingw32-ranlib CACHE FILEPATH "")

# Libraries and headers come from the mingw sysroot and the prefixes that
# deploy/windows/build-deps.sh adds to CMAKE_FIND_ROOT_PATH; never from the build machine's
# /usr (glibc's headers break the cross compiler). Programs (pkg-config, python) are the host's.
list(APPEND CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# Windows 10 / Server 2016 is the oldest target: it has every socket option the probes use.
add_compile_definitions(_WIN32_WINNT=0x0A00 WINVER=0x0A00)
# One self-contained .exe: no libstdc++/libgcc/winpthread DLLs to ship beside it.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# Release builds are stripped: 9.6 MB instead of 17 MB (symbols only; there is no debug info).
set(CMAKE_EXE_LINKER_FLAGS_RELEASE_INIT "-s")
# Tests built for Windows run under wine64 (Debian's wine64 puts its loader here).
set(CMAKE_CROSSCOMPILING_EMULATOR /usr/lib/wine/wine64)
