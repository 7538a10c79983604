// Fuzz DivertTcpConnector::Builder::set(key, value): the input is split at its
// first '=' (or first byte 0 when there is no '='); whatever the key and value,
// set() either applies them or throws divert::config_error naming the key — it
// never crashes or throws anything else. After a successful set() the builder
// may be built (build() throws config_error on an incomplete configuration).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "divert/connector.hpp"
#include "divert/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto split = in.find('=');
  if (split == std::string_view::npos) split = in.find('\0');
  std::string_view key = split == std::string_view::npos ? in : in.substr(0, split);
  std::string_view value =
      split == std::string_view::npos ? std::string_view{} : in.substr(split + 1);

  auto b = divert::DivertTcpConnector::builder();
  try {
    b.set(key, value);
  } catch (const divert::config_error& e) {
    if (std::string_view(e.what()).empty()) std::abort();
    return 0;
  }
  // Accepted: building must either succeed or report a config_error.
  try {
    b.proxy_addr("127.0.0.1:3128");
    (void)b.build();
  } catch (const divert::config_error&) {
  }
  return 0;
}
