// Fuzz the forward proxy's request-head parser (examples/common/http_request):
// never crashes; a complete head's length lies within the input and the
// parser is deterministic; an error carries one of the documented statuses;
// the accessors of a parsed head (authority, origin form, header lookup) hold,
// and the origin-form request sent upstream has no lone CR/LF or NUL.
// fuzz/CMakeLists.txt links only divert::divert, so the parser's source is
// compiled into this fuzzer directly (it includes its header as a sibling).
#include "../examples/common/http_request.cpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using namespace divert::examples;
  // First byte picks the head limit (64 bytes .. 16 KiB), the rest is the data.
  std::size_t max_head = 64 + static_cast<std::size_t>(data[0]) * 64;
  std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  RequestHead head;
  auto r = parse_request_head(text, head, max_head);
  RequestHead head2;
  auto r2 = parse_request_head(text, head2, max_head);
  if (r.status != r2.status || r.head_length != r2.head_length || r.http_status != r2.http_status)
    std::abort();
  switch (r.status) {
    case ParseResult::Status::need_more:
      break;
    case ParseResult::Status::error:
      switch (r.http_status) {
        case 400:
        case 405:
        case 414:
        case 431:
        case 501:
        case 505:
          break;
        default:
          std::abort();
      }
      break;
    case ParseResult::Status::complete: {
      if (r.head_length == 0 || r.head_length > text.size() || r.head_length > max_head)
        std::abort();
      // The head is complete on its own: parsing exactly its bytes gives the same length.
      RequestHead head3;
      auto r3 = parse_request_head(text.substr(0, r.head_length), head3, max_head);
      if (r3.status != ParseResult::Status::complete || r3.head_length != r.head_length)
        std::abort();
      if (head.host.empty()) std::abort();
      (void)head.authority();
      // The request sent upstream has CRLF line ends only: no lone CR or LF
      // (which a lenient upstream could take for a line end: injection).
      auto req = head.origin_form_request();
      for (std::size_t i = 0; i < req.size(); ++i) {
        if (req[i] == '\r' && (i + 1 >= req.size() || req[i + 1] != '\n')) std::abort();
        if (req[i] == '\n' && (i == 0 || req[i - 1] != '\r')) std::abort();
        if (req[i] == '\0') std::abort();
      }
      (void)head.header("host");
      if (auto v = head.header("proxy-authorization")) (void)parse_basic_auth(*v);
      break;
    }
  }
  (void)parse_basic_auth(text);
  return 0;
}
