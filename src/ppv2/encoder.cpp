#include "divert/ppv2/encoder.hpp"

#include <algorithm>
#include <bit>
#include <cstring>

#include "divert/ppv2/crc32c.hpp"
#include "divert/ppv2/errc.hpp"
#include "ppv2/text.hpp"

namespace divert::ppv2 {

namespace {

constexpr std::size_t kTlvHeader = 3;

// Addresses as they will be sent, after folding and promotion. Pointers refer to
// the spec's endpoints or to the promotion scratch space (no Endpoint copies).
struct WireAddresses {
  std::uint8_t fam = 0x00;
  std::size_t block = 0;  // address block size: 0, 12, 36 or 216
  const std::uint8_t* src_ip = nullptr;
  const std::uint8_t* dst_ip = nullptr;
  std::uint16_t src_port = 0, dst_port = 0;
  std::string_view src_path, dst_path;
  std::uint8_t mapped[2][16];  // v4-mapped forms when promoting
};

// IPv4 address bytes of an endpoint that is IPv4 or v4-mapped IPv6, else nullptr.
inline const std::uint8_t* as_v4(const Endpoint& e) noexcept {
  if (e.kind == Endpoint::Kind::ipv4) return e.ip.data();
  if (e.is_v4_mapped()) return e.ip.data() + 12;
  return nullptr;
}

inline const std::uint8_t* as_v6(const Endpoint& e, std::uint8_t (&scratch)[16]) noexcept {
  if (e.kind == Endpoint::Kind::ipv6) return e.ip.data();
  std::memset(scratch, 0, 10);
  scratch[10] = scratch[11] = 0xff;
  std::memcpy(scratch + 12, e.ip.data(), 4);
  return scratch;
}

inline errc wire_addresses(const HeaderSpec& s, WireAddresses& w) noexcept {
  if (s.command == Command::local) return errc{};  // UNSPEC, no addresses
  using K = Endpoint::Kind;
  const K ks = s.src.kind, kd = s.dst.kind;
  if (ks == K::none && kd == K::none) return errc{};  // PROXY + UNSPEC
  if (ks == K::none || kd == K::none) return errc::address_family_mismatch;
  const std::uint8_t tr = s.transport == Transport::dgram ? 0x2 : 0x1;
  if (ks == K::unix_path || kd == K::unix_path) {
    if (ks != kd) return errc::address_family_mismatch;
    if (s.src.path.size() > kUnixPathSize || s.dst.path.size() > kUnixPathSize)
      return errc::unix_path_too_long;
    w.fam = static_cast<std::uint8_t>(0x30 | tr);
    w.block = 2 * kUnixPathSize;
    w.src_path = s.src.path;
    w.dst_path = s.dst.path;
    return errc{};
  }
  w.src_port = s.src.port;
  w.dst_port = s.dst.port;
  const std::uint8_t* s4 = as_v4(s.src);
  const std::uint8_t* d4 = as_v4(s.dst);
  if (s4 && d4) {
    w.fam = static_cast<std::uint8_t>(0x10 | tr);
    w.block = 12;
    w.src_ip = s4;
    w.dst_ip = d4;
  } else {
    w.fam = static_cast<std::uint8_t>(0x20 | tr);
    w.block = 36;
    w.src_ip = as_v6(s.src, w.mapped[0]);
    w.dst_ip = as_v6(s.dst, w.mapped[1]);
  }
  return errc{};
}

struct Plan {
  WireAddresses addr;
  std::size_t size = 0;
};

// Inline loop: E0 values are short, and a memchr call costs more than the scan.
inline bool has_nul(std::string_view s) noexcept {
  bool nul = false;
  for (char c : s) nul |= c == '\0';
  return nul;
}

// errc{} (0) is success: internal steps avoid building std::error_code (a library call).
inline errc plan(const HeaderSpec& s, const EncodeOptions& o, Plan& p) noexcept {
  if (auto e = wire_addresses(s, p.addr); e != errc{}) return e;
  std::size_t body = p.addr.block;
  bool too_big = false;
  auto add = [&](std::size_t value_len) {
    if (value_len > 0xFFFF) too_big = true;
    body += kTlvHeader + value_len;
  };
  if (s.upstream) {
    if (s.upstream->empty() || has_nul(*s.upstream)) return errc::invalid_tlv_value;
    add(s.upstream->size());
  }
  if (s.tls_name && !detail::tls_name_ok(*s.tls_name)) return errc::invalid_tlv_value;
  if (s.username && !detail::username_ok(*s.username)) return errc::invalid_tlv_value;
  if (s.tls_name) add(s.tls_name->size());
  if (s.username) add(s.username->size());
  if (s.task_id) add(16);
  if (s.status_reply) add(1);
  if (s.authority) add(s.authority->size());
  if (s.unique_id) add(s.unique_id->size());
  for (const auto& t : s.extra) add(t.value.size());
  if (s.noop_padding) add(*s.noop_padding);
  if (s.crc32c) add(4);
  if (too_big) return errc::tlv_value_too_large;
  if (body > 0xFFFF) return errc::length_overflow;
  p.size = kFixedHeaderSize + body;
  if (p.size > o.max_size) return errc::header_too_large;
  return errc{};
}

// memcpy for the variable-length values of a header without a libc call: the
// encoder's fast path makes no call at all, so it keeps nothing in registers that
// would have to be saved and restored around one.
inline void copy_small(std::uint8_t* d, const void* src, std::size_t n) noexcept {
  const auto* s = static_cast<const std::uint8_t*>(src);
  if (n > 16) {
    // 16-byte blocks, the last one ending at n (overlapping the one before).
    std::uint8_t block[16];
    for (std::size_t i = 0; i + 16 < n; i += 16) {
      std::memcpy(block, s + i, 16);
      std::memcpy(d + i, block, 16);
      asm("" : "+r"(i));  // keeps the compiler from turning the loop back into memcpy()
    }
    std::memcpy(block, s + n - 16, 16);
    std::memcpy(d + n - 16, block, 16);
  } else if (n >= 8) {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
  } else if (n >= 4) {
    std::uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(d, &a, 4);
    std::memcpy(d + n - 4, &b, 4);
  } else {
    for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
  }
}

inline std::uint8_t* put_tlv(std::uint8_t* w, std::uint8_t type, const void* v,
                             std::size_t n) noexcept {
  w[0] = type;
  w[1] = static_cast<std::uint8_t>(n >> 8);
  w[2] = static_cast<std::uint8_t>(n);
  copy_small(w + 3, v, n);
  return w + 3 + n;
}

inline std::uint8_t* put_ip(std::uint8_t* w, const WireAddresses& a) noexcept {
  const std::size_t n = a.block == 12 ? 4 : 16;
  std::memcpy(w, a.src_ip, n);
  std::memcpy(w + n, a.dst_ip, n);
  w += 2 * n;
  w[0] = static_cast<std::uint8_t>(a.src_port >> 8);
  w[1] = static_cast<std::uint8_t>(a.src_port);
  w[2] = static_cast<std::uint8_t>(a.dst_port >> 8);
  w[3] = static_cast<std::uint8_t>(a.dst_port);
  return w + 4;
}

// One pass: writes the header into [out, out + cap) and returns its size, or 0 when
// anything does not fit or is invalid (the caller then asks plan() for the exact
// error). Each field of the spec is looked at once.
[[gnu::noinline]] std::size_t write_general(const HeaderSpec& s, std::uint8_t* out,
                                            std::size_t cap) noexcept {
  WireAddresses a;
  if (wire_addresses(s, a) != errc{}) return 0;
  if (cap < kFixedHeaderSize + a.block) return 0;
  std::memcpy(out, kSignature.data(), kSignature.size());
  out[12] = static_cast<std::uint8_t>(0x20 | static_cast<std::uint8_t>(s.command));
  out[13] = a.fam;
  std::uint8_t* w = out + kFixedHeaderSize;
  if (a.block == 2 * kUnixPathSize) {
    std::memset(w, 0, 2 * kUnixPathSize);
    if (!a.src_path.empty()) std::memcpy(w, a.src_path.data(), a.src_path.size());
    if (!a.dst_path.empty()) std::memcpy(w + kUnixPathSize, a.dst_path.data(), a.dst_path.size());
    w += 2 * kUnixPathSize;
  } else if (a.block) {
    w = put_ip(w, a);
  }
  const std::uint8_t* const end = out + cap;
  bool ok = true;
  auto put = [&](std::uint8_t type, const void* v, std::size_t n) {
    if (n > 0xFFFF || static_cast<std::size_t>(end - w) < kTlvHeader + n) {
      ok = false;
      return;
    }
    w = put_tlv(w, type, v, n);
  };
  if (s.upstream) {
    if (s.upstream->empty() || has_nul(*s.upstream)) return 0;
    put(tlv::divert_upstream, s.upstream->data(), s.upstream->size());
  }
  if (s.tls_name && !detail::tls_name_ok(*s.tls_name)) return 0;
  if (s.username && !detail::username_ok(*s.username)) return 0;
  if (s.tls_name) put(tlv::divert_tls_name, s.tls_name->data(), s.tls_name->size());
  if (s.username) put(tlv::divert_username, s.username->data(), s.username->size());
  if (s.task_id) put(tlv::divert_task_id, s.task_id->bytes.data(), 16);
  static constexpr std::uint8_t kStatusReplyVersion = 0x01;
  if (s.status_reply) put(tlv::divert_status_reply, &kStatusReplyVersion, 1);
  if (s.authority) put(tlv::authority, s.authority->data(), s.authority->size());
  if (s.unique_id) put(tlv::unique_id, s.unique_id->data(), s.unique_id->size());
  for (const auto& t : s.extra) {
    if (!ok) break;
    put(t.type, t.value.data(), t.value.size());
  }
  if (s.noop_padding && ok) {
    const std::size_t n = *s.noop_padding;
    if (static_cast<std::size_t>(end - w) < kTlvHeader + n) return 0;
    w[0] = tlv::noop;
    w[1] = static_cast<std::uint8_t>(n >> 8);
    w[2] = static_cast<std::uint8_t>(n);
    std::memset(w + 3, 0, n);
    w += 3 + n;
  }
  static constexpr std::uint8_t zero[4] = {0, 0, 0, 0};
  if (s.crc32c) put(tlv::crc32c, zero, 4);
  if (!ok) return 0;
  const std::size_t size = static_cast<std::size_t>(w - out);
  const std::size_t len = size - kFixedHeaderSize;
  if (len > 0xFFFF) return 0;
  out[14] = static_cast<std::uint8_t>(len >> 8);
  out[15] = static_cast<std::uint8_t>(len);
  if (s.crc32c) {
    const std::uint32_t c = crc32c({out, size});
    w[-4] = static_cast<std::uint8_t>(c >> 24);
    w[-3] = static_cast<std::uint8_t>(c >> 16);
    w[-2] = static_cast<std::uint8_t>(c >> 8);
    w[-1] = static_cast<std::uint8_t>(c);
  }
  return size;
}

constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
constexpr std::uint64_t kHighs = 0x8080808080808080ULL;
// Non-zero iff some byte of x is zero (exact as a whole-word test).
constexpr std::uint64_t zero_byte(std::uint64_t x) noexcept {
  return (x - kOnes) & ~x & kHighs;
}

// copy_small() that also says whether the value contains a NUL byte (0xE0 may not).
inline bool copy_has_nul(std::uint8_t* d, const char* s, std::size_t n) noexcept {
  if (n >= 8 && n <= 16) [[likely]] {
    std::uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(d, &a, 8);
    std::memcpy(d + n - 8, &b, 8);
    return (zero_byte(a) | zero_byte(b)) != 0;
  }
  copy_small(d, s, n);
  return has_nul({s, n});
}

inline void put_be16(std::uint8_t* w, std::size_t v) noexcept {
  const std::uint16_t x = static_cast<std::uint16_t>(v);
  if constexpr (std::endian::native == std::endian::little) {
    const std::uint16_t be = static_cast<std::uint16_t>(x << 8 | x >> 8);
    std::memcpy(w, &be, 2);
  } else {
    std::memcpy(w, &x, 2);
  }
}

// The common shape a divert host proxy sends: PROXY, both endpoints plain IPv4 or
// both plain (not v4-mapped) IPv6, only the divert TLVs 0xE0-0xE3, no CRC. Such a
// header needs no folding, promotion or CRC pass, so it is written with fixed
// offsets. Produces exactly the bytes write_general() produces (tested on random
// specs against detail::encode_general).
inline bool fast_shape(const HeaderSpec& s) noexcept {
  using K = Endpoint::Kind;
  if (s.command != Command::proxy || s.src.kind != s.dst.kind) return false;
  if (s.status_reply || s.authority || s.unique_id || !s.extra.empty() || s.noop_padding ||
      s.crc32c)
    return false;
  if (s.src.kind == K::ipv4) return true;
  return s.src.kind == K::ipv6 && !s.src.is_v4_mapped() && !s.dst.is_v4_mapped();
}

// What write_shape() knows of a part of the header at compile time.
enum class Known { no, yes, ask };  // absent / present / read it from the spec
constexpr bool has(Known k, bool asked) noexcept {
  return k == Known::ask ? asked : k == Known::yes;
}

// Writes a fast_shape() header with fixed offsets; returns its size, or 0 when
// it does not fit in cap, a value is invalid, or 0xE1/0xE2 is not plain ASCII
// (the caller then tries the general writer, and asks plan() for the exact error). V4: IPv4 (yes)
// or IPv6 (no); Up, Tls, User, Id: TLVs 0xE0- 0xE3. A part known at compile time costs no test: the
// connector's eight shapes (0xE0 and 0xE3 always, 0xE1 for https, 0xE2 with a user) are each one
// straight line; Known::ask everywhere covers any fast_shape() header.
template <Known V4, Known Up, Known Tls, Known User, Known Id>
[[gnu::always_inline]] inline std::size_t write_shape(const HeaderSpec& s, std::uint8_t* out,
                                                      std::size_t cap) noexcept {
  const bool v4 = has(V4, s.src.kind == Endpoint::Kind::ipv4);
  const bool up = has(Up, s.upstream.has_value()), tls = has(Tls, s.tls_name.has_value());
  const bool user = has(User, s.username.has_value()), id = has(Id, s.task_id.has_value());
  const std::size_t n_up = up ? s.upstream->size() : 0;
  const std::size_t n_tls = tls ? s.tls_name->size() : 0;
  const std::size_t n_user = user ? s.username->size() : 0;
  const std::size_t len = (v4 ? 12 : 36) + (up ? 3 + n_up : 0) + (tls ? 3 + n_tls : 0) +
                          (user ? 3 + n_user : 0) + (id ? 3 + 16 : 0);
  // len alone bounds every value (each is part of it); an empty 0xE0 is invalid.
  if (kFixedHeaderSize + len > cap || len > 0xFFFF || (up && n_up == 0)) [[unlikely]]
    return 0;
  std::memcpy(out, kSignature.data(), 8);
  const std::uint8_t tail[8] = {
      kSignature[8], kSignature[9], kSignature[10], kSignature[11], 0x21,
      static_cast<std::uint8_t>((v4 ? 0x10 : 0x20) | (s.transport == Transport::dgram ? 2 : 1)),
      static_cast<std::uint8_t>(len >> 8), static_cast<std::uint8_t>(len)};
  std::memcpy(out + 8, tail, 8);
  std::uint8_t* w = out + kFixedHeaderSize;
  if (v4) {
    std::memcpy(w, s.src.ip.data(), 4);
    std::memcpy(w + 4, s.dst.ip.data(), 4);
    w += 8;
  } else {
    std::memcpy(w, s.src.ip.data(), 16);
    std::memcpy(w + 16, s.dst.ip.data(), 16);
    w += 32;
  }
  put_be16(w, s.src.port);
  put_be16(w + 2, s.dst.port);
  w += 4;
  if (up) {
    w[0] = tlv::divert_upstream;
    put_be16(w + 1, n_up);
    if (copy_has_nul(w + 3, s.upstream->data(), n_up)) [[unlikely]]
      return 0;
    w += 3 + n_up;
  }
  // A value that is not plain ASCII (UTF-8 beyond it, or an error) is left to
  // the general writer, which makes the whole check.
  if (tls) {
    if (!detail::tls_name_ascii_ok(*s.tls_name)) [[unlikely]]
      return 0;
    w[0] = tlv::divert_tls_name;
    put_be16(w + 1, n_tls);
    copy_small(w + 3, s.tls_name->data(), n_tls);
    w += 3 + n_tls;
  }
  if (user) {
    if (!detail::username_ascii_ok(*s.username)) [[unlikely]]
      return 0;
    w[0] = tlv::divert_username;
    put_be16(w + 1, n_user);
    copy_small(w + 3, s.username->data(), n_user);
    w += 3 + n_user;
  }
  if (id) {
    static constexpr std::uint8_t kTaskIdHeader[3] = {tlv::divert_task_id, 0, 16};
    std::memcpy(w, kTaskIdHeader, 3);
    std::memcpy(w + 3, s.task_id->bytes.data(), 16);
  }
  return kFixedHeaderSize + len;
}

// The rarer fast shapes (no 0xE0 or no 0xE3), every part read from the spec;
// out of line so that encode() needs no saved registers.
[[gnu::noinline]] std::size_t write_fast_other(const HeaderSpec& s, std::uint8_t* out,
                                               std::size_t cap) noexcept {
  using K = Known;
  return write_shape<K::ask, K::ask, K::ask, K::ask, K::ask>(s, out, cap);
}

// The connector's shape number `Key` (bit 2: IPv4, bit 1: 0xE1, bit 0: 0xE2).
template <unsigned Key>
[[gnu::always_inline]] inline std::size_t write_connector_shape(const HeaderSpec& s,
                                                                std::uint8_t* out,
                                                                std::size_t cap) noexcept {
  constexpr auto bit = [](unsigned b) { return Key & b ? Known::yes : Known::no; };
  return write_shape<bit(4), Known::yes, bit(2), bit(1), Known::yes>(s, out, cap);
}

// Picks the connector's shape one bit at a time (IPv4, then 0xE1, then 0xE2):
// three predictable branches, fewer instructions than building the shape number
// and jumping through a table.
template <unsigned Key, unsigned Bit>
[[gnu::always_inline]] inline std::size_t write_connector_shape_by_bits(const HeaderSpec& s,
                                                                        std::uint8_t* out,
                                                                        std::size_t cap) noexcept {
  if constexpr (Bit == 0) {
    return write_connector_shape<Key>(s, out, cap);
  } else {
    const bool set = Bit == 4   ? s.src.kind == Endpoint::Kind::ipv4
                     : Bit == 2 ? s.tls_name.has_value()
                                : s.username.has_value();
    return set ? write_connector_shape_by_bits<Key | Bit, Bit / 2>(s, out, cap)
               : write_connector_shape_by_bits<Key, Bit / 2>(s, out, cap);
  }
}

// A fast_shape() header with 0xE0 and 0xE3 is one of the connector's eight.
inline bool connector_shape(const HeaderSpec& s) noexcept {
  return s.upstream.has_value() & s.task_id.has_value();
}

[[gnu::always_inline]] inline std::size_t write_connector_shapes(const HeaderSpec& s,
                                                                 std::uint8_t* out,
                                                                 std::size_t cap) noexcept {
  return write_connector_shape_by_bits<0, 4>(s, out, cap);
}

[[gnu::always_inline]] inline std::size_t write_fast_shape(const HeaderSpec& s, std::uint8_t* out,
                                                           std::size_t cap) noexcept {
  if (connector_shape(s)) [[likely]]
    return write_connector_shapes(s, out, cap);
  return write_fast_other(s, out, cap);
}

[[gnu::always_inline]] inline std::size_t write(const HeaderSpec& s, std::uint8_t* out,
                                                std::size_t cap) noexcept {
  if (fast_shape(s)) [[likely]] {
    // 0: too big for `cap` (the general writer then fails too) or a value the
    // fast shape leaves to the general writer (0xE1/0xE2 beyond ASCII).
    if (const std::size_t n = write_fast_shape(s, out, cap)) [[likely]]
      return n;
  }
  return write_general(s, out, cap);
}

}  // namespace

EncodedSize encoded_size(const HeaderSpec& spec, const EncodeOptions& opts) noexcept {
  Plan p;
  if (auto e = plan(spec, opts, p); e != errc{}) return {0, e};
  return {p.size};
}

namespace {
// encode() for every header but the connector's shapes, and for any error: the
// other fast shapes, else the general writer and its diagnosis (a connector
// shape that encode() could not write is not tried again here).
[[gnu::noinline]] EncodedSize encode_rest(const HeaderSpec& spec, std::span<std::uint8_t> out,
                                          const EncodeOptions& opts) noexcept {
  if (fast_shape(spec) && !connector_shape(spec)) {
    const std::size_t cap = std::min(out.size(), opts.max_size);
    if (const std::size_t n = write_fast_other(spec, out.data(), cap)) return {n};
  }
  return detail::encode_general(spec, out, opts);
}
}  // namespace

EncodedSize encode(const HeaderSpec& spec, std::span<std::uint8_t> out,
                   const EncodeOptions& opts) noexcept {
  // The connector's shapes inline; every other header, and any error, through
  // encode_rest(), out of line.
  if (fast_shape(spec) && connector_shape(spec)) [[likely]] {
    const std::size_t cap = std::min(out.size(), opts.max_size);
    if (const std::size_t n = write_connector_shapes(spec, out.data(), cap)) [[likely]]
      return {n};
  }
  return encode_rest(spec, out, opts);
}

namespace detail {
// Everything but the fast path; out of line so that encode() keeps a small frame.
[[gnu::noinline]] EncodedSize encode_general(const HeaderSpec& spec, std::span<std::uint8_t> out,
                                             const EncodeOptions& opts) noexcept {
  const std::size_t cap = std::min(out.size(), opts.max_size);
  if (const std::size_t n = write_general(spec, out.data(), cap)) return {n};
  // Something did not fit or is invalid: find out exactly what.
  Plan p;
  if (auto e = plan(spec, opts, p); e != errc{}) return {0, e};
  return {p.size, errc::buffer_too_small};
}
}  // namespace detail

std::span<std::uint8_t> HeaderBuffer::prepare(std::size_t n) {
  size_ = 0;
  if (n <= kInlineHeaderSize) {
    heap_.reset();
    heap_cap_ = 0;
    return {inline_, n};
  }
  if (heap_cap_ < n) {
    heap_ = std::make_unique<std::uint8_t[]>(n);
    heap_cap_ = n;
  }
  return {heap_.get(), n};
}

void HeaderBuffer::assign(std::span<const std::uint8_t> b) {
  auto dst = prepare(b.size());
  if (!b.empty()) std::memcpy(dst.data(), b.data(), b.size());
  size_ = b.size();
}

std::error_code encode(const HeaderSpec& spec, HeaderBuffer& out, const EncodeOptions& opts) {
  // Try the inline buffer first; only a header above 536 bytes needs the size first.
  const std::size_t cap = std::min(kInlineHeaderSize, opts.max_size);
  if (const std::size_t n = write(spec, out.prepare(cap).data(), cap)) {
    out.commit(n);
    return {};
  }
  Plan p;
  if (auto e = plan(spec, opts, p); e != errc{}) return e;
  const std::size_t n = write(spec, out.prepare(p.size).data(), p.size);
  out.commit(n);
  return n == p.size ? std::error_code{} : std::error_code(errc::buffer_too_small);
}

}  // namespace divert::ppv2
