# Install rules: headers, the library, a CMake package (config, version,
# targets, our Find modules), a pkg-config file; and export() for use of the
# build tree. DIVERT_CMAKE_DIR is a cache variable so packagers can move it.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(DIVERT_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/divert" CACHE STRING
    "Where divertConfig.cmake is installed (relative to the prefix)")
set(DIVERT_PKGCONFIG_DIR "${CMAKE_INSTALL_LIBDIR}/pkgconfig" CACHE STRING
    "Where divert.pc is installed (relative to the prefix)")

install(TARGETS divert EXPORT divertTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/divert" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.hpp")
install(FILES "${PROJECT_BINARY_DIR}/include/divert/version.hpp"
              "${PROJECT_BINARY_DIR}/include/divert/config.hpp"
              "${PROJECT_BINARY_DIR}/include/divert/export.hpp"
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/divert)

install(EXPORT divertTargets NAMESPACE divert:: DESTINATION ${DIVERT_CMAKE_DIR})
configure_package_config_file(cmake/divertConfig.cmake.in
  "${PROJECT_BINARY_DIR}/divertConfig.cmake" INSTALL_DESTINATION ${DIVERT_CMAKE_DIR})
write_basic_package_version_file("${PROJECT_BINARY_DIR}/divertConfigVersion.cmake"
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES "${PROJECT_BINARY_DIR}/divertConfig.cmake"
              "${PROJECT_BINARY_DIR}/divertConfigVersion.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/FindAsio.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/FindxxHash.cmake"
              "${PROJECT_SOURCE_DIR}/cmake/FindLibidn2.cmake"
        DESTINATION ${DIVERT_CMAKE_DIR})

# Build tree: find_package(divert) with divert_DIR=<build dir> works too.
export(EXPORT divertTargets NAMESPACE divert:: FILE "${PROJECT_BINARY_DIR}/divertTargets.cmake")
configure_file("${PROJECT_SOURCE_DIR}/cmake/FindAsio.cmake" "${PROJECT_BINARY_DIR}/FindAsio.cmake" COPYONLY)
configure_file("${PROJECT_SOURCE_DIR}/cmake/FindxxHash.cmake" "${PROJECT_BINARY_DIR}/FindxxHash.cmake" COPYONLY)
configure_file("${PROJECT_SOURCE_DIR}/cmake/FindLibidn2.cmake" "${PROJECT_BINARY_DIR}/FindLibidn2.cmake" COPYONLY)

# pkg-config: relocatable (prefix found from the .pc file's own directory).
if(IS_ABSOLUTE "${DIVERT_PKGCONFIG_DIR}")
  set(DIVERT_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH _divert_pc_up "/prefix/${DIVERT_PKGCONFIG_DIR}" "/prefix")
  set(DIVERT_PC_PREFIX "\${pcfiledir}/${_divert_pc_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(DIVERT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(DIVERT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(DIVERT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(DIVERT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
# A static libdivert needs xxHash (and libidn2 when built with it) at link
# time (plain `pkg-config --libs` does not read Requires.private), a shared
# one does not.
set(_divert_pc_private "libxxhash")
if(DIVERT_WITH_IDN)
  string(APPEND _divert_pc_private " libidn2")
endif()
if(BUILD_SHARED_LIBS)
  set(DIVERT_PC_REQUIRES "")
  set(DIVERT_PC_REQUIRES_PRIVATE "${_divert_pc_private}")
else()
  set(DIVERT_PC_REQUIRES "${_divert_pc_private}")
  set(DIVERT_PC_REQUIRES_PRIVATE "")
endif()
unset(_divert_pc_private)
# No Asio policy defines (ASIO_NO_DEPRECATED...): the host keeps its own. With
# standalone Asio 1.22, Clang needs ASIO_HAS_CO_AWAIT / ASIO_HAS_STD_COROUTINE
# for divert's asio::awaitable API (Asio detects only GCC's C++20 coroutines;
# the values are the ones it picks on GCC). Boost.Asio 1.81 needs nothing.
set(DIVERT_PC_CFLAGS "")
if(DIVERT_ASIO STREQUAL "standalone")
  set(DIVERT_PC_CFLAGS "-DASIO_HAS_CO_AWAIT=1 -DASIO_HAS_STD_COROUTINE=1")
endif()
if(DIVERT_WITH_TLS)
  string(APPEND DIVERT_PC_REQUIRES " openssl")
  string(APPEND DIVERT_PC_CFLAGS " -DDIVERT_WITH_TLS=1")
endif()
if(NOT BUILD_SHARED_LIBS)
  set(DIVERT_PC_CFLAGS "${DIVERT_PC_CFLAGS} -DDIVERT_STATIC_DEFINE")
endif()
configure_file(cmake/divert.pc.in "${PROJECT_BINARY_DIR}/divert.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/divert.pc" DESTINATION ${DIVERT_PKGCONFIG_DIR})
