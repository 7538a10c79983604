// A consumer of divert: one include, a connector built, a header encoded.
// It defines nothing about Asio (no ASIO_NO_DEPRECATED or other policy macro)
// and uses deprecated Asio API (io_context::work): divert's package must leave
// the host's Asio configuration alone.
#include <divert/divert.hpp>

#include <cstdio>
#include <system_error>

#if DIVERT_ASIO_BOOST
#include <boost/asio/io_context.hpp>
namespace net = boost::asio;
#else
#include <asio/io_context.hpp>
namespace net = asio;
#endif

int main() {
  net::io_context io;
  net::io_context::work work(io);  // deprecated: gone under (BOOST_)ASIO_NO_DEPRECATED
  if (io.stopped()) return 1;
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
  // Errors cross the library boundary intact (type info and categories are exported
  // from a shared libdivert): a config_error thrown inside is caught here by type,
  // and an error_code made inside compares equal to the enum here.
  try {
    (void)divert::UpstreamAddr::parse("0.0.0.0:80");
    std::printf("UpstreamAddr::parse accepted 0.0.0.0\n");
    return 1;
  } catch (const divert::config_error& e) {
    if (e.key() != "upstream") {
      std::printf("config_error key '%s'\n", e.key().c_str());
      return 1;
    }
  }
  // A static libdivert built with IDN needs libidn2 at link time: the package
  // (CMake config, pkg-config) must bring it.
  if (divert::UpstreamAddr::idn_supported() &&
      divert::UpstreamAddr::parse("b\xc3\xbc"
                                  "cher.example:443")
              .to_string() != "xn--bcher-kva.example:443") {
    std::printf("IDN conversion failed\n");
    return 1;
  }
  divert::ppv2::EncodeOptions tiny;
  tiny.max_size = 16;
  if (divert::ppv2::encode(spec, wire, tiny) != divert::ppv2::errc::header_too_large) {
    std::printf("encode with max_size 16 did not report header_too_large\n");
    return 1;
  }
  if (auto ec = divert::ppv2::encode(spec, wire)) {
    std::printf("encode failed: %s\n", ec.message().c_str());
    return 1;
  }
  auto parsed = divert::ppv2::parse(wire.bytes());
  std::printf("divert %s: %zu next proxies, %zu-byte header, decoded %s\n", DIVERT_VERSION_STRING,
              connector.config().proxy_addr.size(), wire.size(),
              parsed.complete() ? "ok" : "FAILED");
  return parsed.complete() ? 0 : 1;
}
