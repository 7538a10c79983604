# vcpkg overlay port for divert: vcpkg install divert --overlay-ports=<repo>/ports
vcpkg_from_github(
  OUT_SOURCE_PATH SOURCE_PATH
  REPO divert-project/divert
  REF "v${VERSION}"
  SHA512 0
  HEAD_REF main)

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    tls DIVERT_WITH_TLS
    idn DIVERT_WITH_IDN)

# Asio flavour: boost-asio wins over the (default) asio feature.
if("boost-asio" IN_LIST FEATURES)
  list(APPEND FEATURE_OPTIONS -DDIVERT_ASIO=boost)
else()
  list(APPEND FEATURE_OPTIONS -DDIVERT_ASIO=standalone)
endif()

# Keep these options in sync with ports/divert/check-layout.sh (run in CI).
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DDIVERT_BUILD_TESTS=OFF
    -DDIVERT_BUILD_EXAMPLES=OFF
    -DDIVERT_BUILD_BENCHMARKS=OFF
    -DDIVERT_FUZZ=OFF
    -DDIVERT_CMAKE_DIR=share/divert)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(PACKAGE_NAME divert CONFIG_PATH share/divert)
vcpkg_fixup_pkgconfig()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
