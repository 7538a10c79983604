// The translation unit that builds tests/support/pch.hpp's precompiled header
// (target divert_test_pch in tests/CMakeLists.txt); it has no code of its own.
