// tests/support/pch.hpp — precompiled once and reused by every test binary
// (tests/CMakeLists.txt, DIVERT_TEST_PCH): the headers most tests include and
// that dominate their compile time (Asio's, Catch2's). Only a build speed-up:
// each test still includes what it uses; a build with -DDIVERT_TEST_PCH=OFF
// shows it (.ci/run builds the relay tests that way, in its no-splice stage).
#pragma once

#if __has_include(<asio_alias.hpp>)  // Boost.Asio flavour: `namespace asio = boost::asio`
#include <asio_alias.hpp>            // (tests/CMakeLists.txt, divert_use_test_pch)
#endif

#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "support/catch.hpp"
