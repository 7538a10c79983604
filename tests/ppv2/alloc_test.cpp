// No heap allocation for headers up to 536 bytes: a counting global operator new.
#include <atomic>
#include <cstdlib>
#include <new>
#include <string>

#include "divert/ppv2/decoder.hpp"
#include "divert/ppv2/encoder.hpp"
#include "support/catch.hpp"
#include "test_util.hpp"

namespace {
std::atomic<long> g_news{0};
}

#if defined(__SANITIZE_ADDRESS__)
#define DIVERT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DIVERT_ASAN 1
#endif
#endif

#if DIVERT_ASAN
// ASan owns operator new/delete; replacing them mixes allocators. Count through the
// sanitizer's allocation hook instead (it sees every new and malloc).
#include <sanitizer/allocator_interface.h>
namespace {
void on_malloc(const volatile void*, std::size_t) {
  ++g_news;
}
void on_free(const volatile void*) {}
const int g_hooks = __sanitizer_install_malloc_and_free_hooks(on_malloc, on_free);
}  // namespace
#else
void* operator new(std::size_t n) {
  ++g_news;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
  std::free(p);
}
void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}
#endif

using namespace divert::ppv2;
using namespace divert::ppv2::test;

TEST_CASE("encode and decode of a 536-byte header allocate nothing") {
  const Endpoint src = ep("2001:db8::1", 1), dst = ep("192.0.2.2", 2);  // promoted: 36-byte block
  // 0xE0 is at most 253 + ":port" bytes: a long username fills the header.
  const std::string up = "example.com:443";
  const std::string user(536 - 16 - 36 - (3 + up.size()) - 19 - 7 - 3, 'u');
  Uuid id;
  id.bytes[0] = 1;
  // Set up everything that may allocate before counting.
  HeaderSpec s;
  s.src = src;
  s.dst = dst;
  s.upstream = up;
  s.username = user;
  s.task_id = id;
  s.crc32c = true;
  HeaderBuffer buf;
  std::uint8_t raw[536];
  Decoder dec;
  DivertTlvs d;
  (void)encode(s, buf);  // warm up (function-local statics in the CRC dispatch)

  const long before = g_news.load();
  std::error_code ec = encode(s, buf);
  auto r1 = encode(s, raw);
  auto p = parse(buf.bytes());
  auto f1 = dec.feed(buf.bytes().first(100));
  auto f2 = dec.feed(buf.bytes().subspan(100));
  std::error_code ec2 = read_divert_tlvs(f2.header, d);
  const long after = g_news.load();

  REQUIRE_FALSE(ec);
  CHECK(buf.size() == 536);
  CHECK_FALSE(buf.on_heap());
  CHECK(r1.size == 536);
  CHECK(p.complete());
  CHECK(f1.need_more());
  CHECK(f2.complete());
  CHECK_FALSE(ec2);
  CHECK(d.upstream->port == 443);
  CHECK(d.username->size() == user.size());
  CHECK(after - before == 0);

  // Above 536 the buffer goes to the heap (and the counter sees it).
  const std::string longer_user = user + "u";
  s.username = longer_user;
  const long b2 = g_news.load();
  REQUIRE_FALSE(encode(s, buf));
  CHECK(buf.on_heap());
  CHECK(g_news.load() - b2 >= 1);
}
