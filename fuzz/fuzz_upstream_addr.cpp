// Fuzz UpstreamAddr::parse and try_from_domain: never crash; whatever parses
// writes a canonical text that parses back to an equal value (with and without
// a default port), and the throwing and non-throwing parsers agree.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "divert/error.hpp"
#include "divert/upstream.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First two bytes: the default port; the rest: the text.
  auto default_port = static_cast<std::uint16_t>((data[0] << 8) | data[1]);
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  // try_from_domain (the TLS verify name's canonical form): whatever it takes
  // writes a canonical text that parses back to an equal value.
  if (auto h = divert::UpstreamAddr::try_from_domain(text, default_port)) {
    auto back = divert::UpstreamAddr::try_parse(h.addr->to_string(), 0);
    if (!back || !(*back.addr == *h.addr)) std::abort();
  } else if (h.reason.empty()) {
    std::abort();
  }

  auto r = divert::UpstreamAddr::try_parse(text, default_port);
  bool threw = false;
  try {
    auto a = divert::UpstreamAddr::parse(text, default_port);
    if (!r || !(a == *r.addr)) std::abort();
  } catch (const divert::config_error&) {
    threw = true;
  }
  if (threw != !r) std::abort();
  if (!r) {
    if (r.reason.empty()) std::abort();
    return 0;
  }
  const auto& a = *r.addr;
  if (a.port() == 0) std::abort();
  auto canon = a.to_string();
  auto again = divert::UpstreamAddr::try_parse(canon, 0);
  if (!again || !(*again.addr == a) || again.addr->to_string() != canon) std::abort();
  if (again.addr->is_ip() != a.is_ip()) std::abort();
  if (std::hash<divert::UpstreamAddr>{}(*again.addr) != std::hash<divert::UpstreamAddr>{}(a)) {
    std::abort();
  }
  return 0;
}
