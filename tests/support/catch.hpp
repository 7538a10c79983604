// tests/support/catch.hpp — one include for Catch2 v2 (Debian) and v3 (vcpkg, Conan).
#pragma once
#if defined(DIVERT_CATCH_V3)
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
