#include "divert/error.hpp"
#include "divert/version.hpp"
#include "support/catch.hpp"

TEST_CASE("config_error names the key and quotes the value") {
  divert::config_error e("tcp_connect.max_retry", "-1", "must be >= 0");
  CHECK(std::string(e.what()) == "divert config: tcp_connect.max_retry = \"-1\": must be >= 0");
  CHECK(e.key() == "tcp_connect.max_retry");
  CHECK(e.value() == "-1");
}

TEST_CASE("divert error codes have a category and messages") {
  std::error_code ec = divert::errc::header_timeout;
  CHECK(ec.category().name() == std::string("divert"));
  CHECK(ec.message() == "no complete PROXY header within the header timeout");
  CHECK(ec != std::error_code{});
}

TEST_CASE("version macros are generated") {
  CHECK(DIVERT_VERSION_MAJOR >= 0);
  CHECK(std::string(DIVERT_VERSION_STRING).find('.') != std::string::npos);
}
