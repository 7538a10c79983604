# FindAsio.cmake — standalone (non-Boost) Asio, header only.
#
# Accepts, in order:
#   1. an existing `asio::asio` target (vcpkg's or Conan's package already loaded);
#   2. a CMake config package named `asio` (find_package(asio CONFIG));
#   3. the headers on the include path (Debian's libasio-dev has no config file).
# Provides the imported target `asio::asio` and Asio_FOUND / Asio_VERSION.
# The target carries no policy defines (ASIO_NO_DEPRECATED, ASIO_STANDALONE:
# Asio defines that one itself in C++11 and later); a consumer keeps its own.
# Only what divert's headers need: Asio 1.22 detects C++20 coroutines on GCC
# but, on Clang, only the Coroutines TS, so with Clang the target adds
# ASIO_HAS_CO_AWAIT / ASIO_HAS_STD_COROUTINE (asio::awaitable is in divert's
# public API). GCC needs nothing.

if(TARGET asio::asio)
  set(Asio_FOUND TRUE)
  return()
endif()

find_package(asio CONFIG QUIET)
if(TARGET asio::asio)
  set(Asio_FOUND TRUE)
  set(Asio_VERSION "${asio_VERSION}")
  return()
endif()

find_path(Asio_INCLUDE_DIR NAMES asio.hpp PATH_SUFFIXES include)
if(Asio_INCLUDE_DIR AND EXISTS "${Asio_INCLUDE_DIR}/asio/version.hpp")
  file(STRINGS "${Asio_INCLUDE_DIR}/asio/version.hpp" _asio_version_line
       REGEX "^#define ASIO_VERSION [0-9]+")
  string(REGEX REPLACE "^#define ASIO_VERSION ([0-9]+).*" "\\1" _asio_v "${_asio_version_line}")
  math(EXPR _asio_major "${_asio_v} / 100000")
  math(EXPR _asio_minor "${_asio_v} / 100 % 1000")
  math(EXPR _asio_patch "${_asio_v} % 100")
  set(Asio_VERSION "${_asio_major}.${_asio_minor}.${_asio_patch}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Asio
  REQUIRED_VARS Asio_INCLUDE_DIR
  VERSION_VAR Asio_VERSION)

if(Asio_FOUND AND NOT TARGET asio::asio)
  find_package(Threads REQUIRED)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${Asio_INCLUDE_DIR}"
    INTERFACE_COMPILE_DEFINITIONS
      "$<$<COMPILE_LANG_AND_ID:CXX,Clang,AppleClang>:ASIO_HAS_CO_AWAIT=1;ASIO_HAS_STD_COROUTINE=1>"
    INTERFACE_LINK_LIBRARIES Threads::Threads)
endif()
mark_as_advanced(Asio_INCLUDE_DIR)
