// PickPolicy names and make_pick_key.
#include "divert/select/policy.hpp"
#include "divert/error.hpp"
#include "divert/select/pick_key.hpp"
#include "support/catch.hpp"

using divert::PickPolicy;

TEST_CASE("pick policy names and aliases, case-insensitive") {
  struct Row {
    const char* name;
    PickPolicy policy;
  };
  const Row rows[] = {
      {"random", PickPolicy::random},          {"RANDOM", PickPolicy::random},
      {"serial", PickPolicy::serial},          {"sequence", PickPolicy::serial},
      {"Sequence", PickPolicy::serial},        {"round_robin", PickPolicy::round_robin},
      {"roundrobin", PickPolicy::round_robin}, {"rr", PickPolicy::round_robin},
      {"RR", PickPolicy::round_robin},         {"Round_Robin", PickPolicy::round_robin},
      {"ketama", PickPolicy::ketama},          {"KETAMA", PickPolicy::ketama},
      {"rendezvous", PickPolicy::rendezvous},  {"Rendezvous", PickPolicy::rendezvous},
      {"jump_hash", PickPolicy::jump_hash},    {"jumphash", PickPolicy::jump_hash},
      {"jump", PickPolicy::jump_hash},         {"JUMP_HASH", PickPolicy::jump_hash},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(divert::parse_pick_policy(r.name) == r.policy);
    CHECK(divert::try_parse_pick_policy(r.name) == r.policy);
  }
  CHECK(divert::kDefaultPickPolicy == PickPolicy::random);
}

TEST_CASE("pick policy canonical names round-trip") {
  for (auto p : {PickPolicy::random, PickPolicy::serial, PickPolicy::round_robin,
                 PickPolicy::ketama, PickPolicy::rendezvous, PickPolicy::jump_hash}) {
    CHECK(divert::parse_pick_policy(divert::to_string(p)) == p);
  }
  CHECK(divert::to_string(PickPolicy::round_robin) == "round_robin");
  CHECK(divert::to_string(PickPolicy::jump_hash) == "jump_hash");
}

TEST_CASE("unknown pick policy names are refused with the accepted list") {
  for (const char* bad : {"", "round-robin", "consistent", "ketama ", "hash", "rr2"}) {
    INFO(bad);
    CHECK_FALSE(divert::try_parse_pick_policy(bad));
  }
  CHECK_THROWS_WITH(divert::parse_pick_policy("fastest"),
                    "divert config: proxy_addr_pick_policy = \"fastest\": unknown pick policy; "
                    "expected random, serial (sequence), round_robin (roundrobin, rr), ketama, "
                    "rendezvous or jump_hash (jumphash, jump)");
  try {
    divert::parse_pick_policy("x", "escaper.pick");
    FAIL("no exception");
  } catch (const divert::config_error& e) {
    CHECK(e.key() == "escaper.pick");
    CHECK(e.value() == "x");
  }
}

TEST_CASE("make_pick_key formats <client-ip>[-<username>]-<upstream-host>") {
  using asio::ip::make_address;
  CHECK(divert::make_pick_key(make_address("192.0.2.1"), std::nullopt, "example.com") ==
        "192.0.2.1-example.com");
  CHECK(divert::make_pick_key(make_address("192.0.2.1"), "alice", "example.com") ==
        "192.0.2.1-alice-example.com");
  CHECK(divert::make_pick_key(make_address("2001:DB8::7"), "alice", "10.1.2.3") ==
        "2001:db8::7-alice-10.1.2.3");
  CHECK(divert::make_pick_key(make_address("::ffff:10.9.8.7"), std::nullopt, "2001:db8::1") ==
        "10.9.8.7-2001:db8::1");
  CHECK(divert::make_pick_key(make_address("::1:80"), std::nullopt, "h") == "::1:80-h");
  // An empty username is still a username (auth enabled, empty name).
  CHECK(divert::make_pick_key(make_address("10.0.0.1"), "", "h") == "10.0.0.1--h");
}
