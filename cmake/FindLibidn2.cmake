# FindLibidn2.cmake — libidn2, IDNA2008 / UTS #46 (Debian libidn2-dev, vcpkg, Conan).
# Provides `Libidn2::Libidn2`. Accepts an existing target, Conan's config package
# (libidn2::libidn2), then pkg-config (libidn2.pc), then a plain header and library search.
if(TARGET Libidn2::Libidn2)
  set(Libidn2_FOUND TRUE)
  return()
endif()
find_package(libidn2 CONFIG QUIET NO_MODULE)
if(TARGET libidn2::libidn2)
  add_library(Libidn2::Libidn2 INTERFACE IMPORTED)
  set_target_properties(Libidn2::Libidn2 PROPERTIES INTERFACE_LINK_LIBRARIES libidn2::libidn2)
  set(Libidn2_FOUND TRUE)
  return()
endif()
find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_Libidn2 QUIET libidn2)
endif()
find_path(Libidn2_INCLUDE_DIR NAMES idn2.h HINTS ${PC_Libidn2_INCLUDE_DIRS})
find_library(Libidn2_LIBRARY NAMES idn2 libidn2 HINTS ${PC_Libidn2_LIBRARY_DIRS})
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Libidn2 REQUIRED_VARS Libidn2_LIBRARY Libidn2_INCLUDE_DIR)
if(Libidn2_FOUND AND NOT TARGET Libidn2::Libidn2)
  add_library(Libidn2::Libidn2 UNKNOWN IMPORTED)
  set_target_properties(Libidn2::Libidn2 PROPERTIES
    IMPORTED_LOCATION "${Libidn2_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Libidn2_INCLUDE_DIR}")
  # A static libidn2 needs what its pkg-config file lists privately (libunistring).
  if(Libidn2_LIBRARY MATCHES "\\.a$" AND PC_Libidn2_STATIC_LIBRARIES)
    list(REMOVE_ITEM PC_Libidn2_STATIC_LIBRARIES idn2)
    set_property(TARGET Libidn2::Libidn2 APPEND PROPERTY
      INTERFACE_LINK_LIBRARIES ${PC_Libidn2_STATIC_LIBRARIES})
  endif()
endif()
mark_as_advanced(Libidn2_INCLUDE_DIR Libidn2_LIBRARY)
