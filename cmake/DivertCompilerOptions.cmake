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

# Intel's JCC erratum microcode (Skylake through Cascade Lake) keeps a jump that
# crosses or ends on a 32-byte boundary out of the uop cache; the assembler can
# pad such jumps instead. Off by default: it changes nothing measurable at the
# scale of a diverted connection. -DDIVERT_JCC_PADDING=ON pads the library's
# sources (PRIVATE) and the benchmarks, on x86-64 with GCC or Clang.
option(DIVERT_JCC_PADDING "Pad jumps against Intel's JCC erratum (x86-64 GCC/Clang)" OFF)
set(DIVERT_JCC_FLAGS "")
if(DIVERT_JCC_PADDING AND CMAKE_SYSTEM_PROCESSOR MATCHES "^(x86_64|AMD64|amd64)$")
  include(CheckCXXCompilerFlag)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    check_cxx_compiler_flag("-Wa,-mbranches-within-32B-boundaries" DIVERT_HAVE_JCC_PADDING)
    if(DIVERT_HAVE_JCC_PADDING)
      set(DIVERT_JCC_FLAGS "-Wa,-mbranches-within-32B-boundaries")
    endif()
  elseif(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    check_cxx_compiler_flag("-mbranches-within-32B-boundaries" DIVERT_HAVE_JCC_PADDING)
    if(DIVERT_HAVE_JCC_PADDING)
      set(DIVERT_JCC_FLAGS "-mbranches-within-32B-boundaries")
    endif()
  endif()
endif()
