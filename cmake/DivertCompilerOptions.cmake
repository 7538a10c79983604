# Warnings and sanitizers shared by every target of this project (not exported:
# the library takes DIVERT_WARNING_FLAGS directly, tests and examples link
# the divert_warnings interface target).
set(DIVERT_WARNING_FLAGS "")
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  list(APPEND DIVERT_WARNING_FLAGS -Wall -Wextra -Wpedantic)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 false positive on Asio's coroutine frame allocator (recycling
  # allocator's aligned new paired with its sized delete).
  list(APPEND DIVERT_WARNING_FLAGS -Wno-mismatched-new-delete)
endif()
add_library(divert_warnings INTERFACE)
target_compile_options(divert_warnings INTERFACE ${DIVERT_WARNING_FLAGS})

if(DIVERT_SANITIZE)
  add_compile_options(-fsanitize=${DIVERT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${DIVERT_SANITIZE})
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang" AND DIVERT_SANITIZE MATCHES "undefined")
    # clang <= 16: -fsanitize=function on coroutine resume/destroy clones fails
    # in the backend ("Cannot represent a difference across sections",
    # llvm-project#49689). Every other UBSan check stays on.
    add_compile_options(-fno-sanitize=function)
  endif()
endif()
