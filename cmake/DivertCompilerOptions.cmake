# Warnings and sanitizers shared by every target of this project (not exported).
add_library(divert_warnings INTERFACE)
if(CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(divert_warnings INTERFACE -Wall -Wextra -Wpedantic)
endif()

if(DIVERT_SANITIZE)
  add_compile_options(-fsanitize=${DIVERT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=${DIVERT_SANITIZE})
endif()
