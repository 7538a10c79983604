#include <asio/error.hpp>

#include "divert/asio.hpp"
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

// The condition table, code by code (error.hpp): what a connector call may
// return, classified by hop.
TEST_CASE("divert::condition classifies connector codes by hop") {
  using divert::condition;
  using divert::errc;
  const auto next = condition::next_proxy_failed;
  const auto up = condition::upstream_failed;
  const auto timeout = condition::timeout;
  // Asio's own code type (boost::system::error_code with Boost.Asio), as a host gets it
  using Codes = std::initializer_list<divert::error_code>;

  SECTION("next proxy unreachable, refused, gone: Asio's and the resolver's codes") {
    for (divert::error_code ec : Codes{
             divert::error_code(asio::error::connection_refused),
             divert::error_code(asio::error::timed_out),
             divert::error_code(asio::error::host_unreachable),
             divert::error_code(asio::error::network_unreachable),
             divert::error_code(asio::error::network_down),
             divert::error_code(asio::error::connection_reset),
             divert::error_code(asio::error::connection_aborted),
             divert::error_code(asio::error::broken_pipe),
             divert::error_code(asio::error::not_connected), divert::error_code(asio::error::eof),
             divert::error_code(asio::error::host_not_found),
             divert::error_code(asio::error::host_not_found_try_again),
             divert::error_code(asio::error::no_data), divert::error_code(asio::error::no_recovery),
             std::make_error_code(std::errc::connection_refused),
             divert::make_error_code(errc::resolve_failed),
             divert::make_error_code(errc::no_next_proxy_available),
             divert::make_error_code(errc::bad_status_reply)}) {
      INFO(ec.category().name() << ": " << ec.message());
      CHECK(ec == next);
      CHECK(ec != up);
    }
  }
  SECTION("the next proxy's report about the upstream") {
    for (auto e :
         {errc::upstream_refused, errc::upstream_timed_out, errc::upstream_unreachable,
          errc::upstream_resolve_failed, errc::upstream_denied, errc::upstream_failed_other}) {
      std::error_code ec = e;
      INFO(ec.message());
      CHECK(ec == up);
      CHECK(ec != next);
    }
  }
  SECTION("every timeout") {
    for (divert::error_code ec : Codes{divert::error_code(asio::error::timed_out),
                                       std::make_error_code(std::errc::timed_out),
                                       divert::make_error_code(errc::tls_handshake_timeout),
                                       divert::make_error_code(errc::upstream_timed_out),
                                       divert::make_error_code(errc::header_timeout),
                                       divert::make_error_code(errc::idle_timeout)}) {
      INFO(ec.message());
      CHECK(ec == timeout);
    }
    CHECK(divert::error_code(asio::error::timed_out) == next);  // a next proxy timed out: both
    CHECK(std::error_code(errc::upstream_timed_out) == up);
    CHECK(std::error_code(errc::tls_handshake_timeout) != next);
  }
  SECTION("codes of no hop") {
    for (divert::error_code ec :
         Codes{std::error_code(), divert::error_code(asio::error::operation_aborted),
               divert::error_code(asio::error::invalid_argument),
               divert::make_error_code(errc::header_too_large),
               divert::make_error_code(errc::tls_handshake_failed),
               divert::make_error_code(errc::config_conflict),
               std::error_code(static_cast<int>(asio::error::connection_refused),
                               divert::divert_category())}) {
      INFO(ec.category().name() << " " << ec.value());
      CHECK(ec != next);
      CHECK(ec != up);
      CHECK(ec != timeout);
    }
  }
  SECTION("conditions have a category and messages") {
    std::error_condition c = next;
    CHECK(c.category().name() == std::string("divert.condition"));
    CHECK(c.message() == "no next proxy could be reached");
  }
}
