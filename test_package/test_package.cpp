#include <divert/divert.hpp>

#include <cstdio>

int main() {
  divert::ppv2::HeaderSpec spec;
  spec.src = *divert::ppv2::Endpoint::ip_literal("192.0.2.1", 40000);
  spec.dst = *divert::ppv2::Endpoint::ip_literal("192.0.2.2", 3128);
  spec.upstream = "example.com:443";
  divert::ppv2::HeaderBuffer wire;
  if (divert::ppv2::encode(spec, wire)) return 1;
  // divert/config.hpp: the Asio the package was built with (option asio).
  std::printf("divert %s (%s Asio): %zu-byte PROXY v2 header\n", DIVERT_VERSION_STRING,
              DIVERT_ASIO_BOOST ? "Boost" : "standalone", wire.size());
  return 0;
}
