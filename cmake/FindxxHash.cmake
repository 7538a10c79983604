# FindxxHash.cmake — the xxHash library (Debian libxxhash-dev, vcpkg, Conan).
# Provides `xxHash::xxhash`. Accepts an existing target or a config package first.
if(TARGET xxHash::xxhash)
  set(xxHash_FOUND TRUE)
  return()
endif()
find_package(xxHash CONFIG QUIET NO_MODULE)
if(TARGET xxHash::xxhash)
  set(xxHash_FOUND TRUE)
  return()
endif()
find_path(xxHash_INCLUDE_DIR NAMES xxhash.h)
find_library(xxHash_LIBRARY NAMES xxhash)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(xxHash REQUIRED_VARS xxHash_LIBRARY xxHash_INCLUDE_DIR)
if(xxHash_FOUND AND NOT TARGET xxHash::xxhash)
  add_library(xxHash::xxhash UNKNOWN IMPORTED)
  set_target_properties(xxHash::xxhash PROPERTIES
    IMPORTED_LOCATION "${xxHash_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${xxHash_INCLUDE_DIR}")
endif()
mark_as_advanced(xxHash_INCLUDE_DIR xxHash_LIBRARY)
