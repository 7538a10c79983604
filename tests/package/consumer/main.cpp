// A consumer of divert: one include, a connector built, a header encoded.
#include <divert/divert.hpp>

#include <cstdio>

int main() {
  auto connector = divert::DivertTcpConnector::builder()
                       .proxy_addr({{"127.0.0.1:3128", 2.0}, {"[::1]", 1.0}})
                       .set("proxy_addr_pick_policy", "ketama")
                       .build();
  divert::ppv2::HeaderSpec spec;
  spec.src = *divert::ppv2::Endpoint::ip_literal("192.0.2.1", 40000);
  spec.dst = *divert::ppv2::Endpoint::ip_literal("192.0.2.2", 3128);
  spec.upstream = "example.com:443";
  spec.task_id = divert::make_task_id_v7();
  divert::ppv2::HeaderBuffer wire;
  if (auto ec = divert::ppv2::encode(spec, wire)) {
    std::printf("encode failed: %s\n", ec.message().c_str());
    return 1;
  }
  auto parsed = divert::ppv2::parse(wire.bytes());
  std::printf("divert %s: %zu next proxies, %zu-byte header, decoded %s\n", DIVERT_VERSION_STRING,
              connector.config().proxy_addr.size(), wire.size(), parsed.complete() ? "ok" : "FAILED");
  return parsed.complete() ? 0 : 1;
}
