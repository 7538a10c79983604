// ProxyUsers and constant_time_equal (examples/common/auth.*).
#include "common/auth.hpp"

#include "support/catch.hpp"

using namespace divert::examples;

TEST_CASE("constant_time_equal", "[examples][auth]") {
  CHECK(constant_time_equal("", ""));
  CHECK(constant_time_equal("s3cret", "s3cret"));
  CHECK_FALSE(constant_time_equal("s3cret", "s3creT"));
  CHECK_FALSE(constant_time_equal("s3cre", "s3cret"));         // a prefix
  CHECK_FALSE(constant_time_equal("s3crets3cret", "s3cret"));  // the secret read cyclically
  CHECK_FALSE(constant_time_equal("", "x"));
  CHECK_FALSE(constant_time_equal("x", ""));
  CHECK_FALSE(constant_time_equal(std::string(1, '\0'), ""));
}

TEST_CASE("ProxyUsers::authenticate: Basic credentials of a known user only", "[examples][auth]") {
  ProxyUsers users;
  CHECK(users.empty());
  users.add("alice", "s3cret");
  users.add("bob", "hunter2");
  users.add("bob", "hunter3");  // replaces
  CHECK_FALSE(users.empty());
  using Name = std::optional<std::string>;
  CHECK(users.authenticate("Basic YWxpY2U6czNjcmV0") == Name("alice"));  // alice:s3cret
  CHECK(users.authenticate("basic  Ym9iOmh1bnRlcjM=") == Name("bob"));   // bob:hunter3
  CHECK_FALSE(users.authenticate("Basic Ym9iOmh1bnRlcjI="));             // bob:hunter2, replaced
  CHECK_FALSE(users.authenticate("Basic YWxpY2U6czNjcmVU"));             // alice:s3creT
  CHECK_FALSE(users.authenticate("Basic Ym9iOnMzY3JldA=="));  // bob:s3cret (alice's password)
  CHECK_FALSE(users.authenticate("Basic ZXZlOnMzY3JldA=="));  // eve:s3cret
  CHECK_FALSE(users.authenticate("Basic YWxpY2U="));          // no colon
  CHECK_FALSE(users.authenticate("Bearer abc"));
  CHECK_FALSE(users.authenticate(std::nullopt));
  ProxyUsers empty_password;
  empty_password.add("carol", "");
  CHECK(empty_password.authenticate("Basic Y2Fyb2w6") == Name("carol"));  // carol:
  CHECK_FALSE(empty_password.authenticate("Basic Y2Fyb2w6eA=="));         // carol:x
}
