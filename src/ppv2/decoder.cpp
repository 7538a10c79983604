#include "divert/ppv2/decoder.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "divert/ppv2/crc32c.hpp"
#include "divert/ppv2/errc.hpp"
#include "ppv2/text.hpp"

namespace divert::ppv2 {

namespace {

ParseResult fail(errc e, std::size_t offset) noexcept {
  ParseResult r;
  r.status = ParseStatus::error;
  r.ec = e;
  r.error_offset = offset;
  return r;
}

void set_fail(ParseResult& r, errc e, std::size_t offset) noexcept {
  r.status = ParseStatus::error;
  r.ec = e;
  r.error_offset = offset;
}

void set_more(ParseResult& r, std::size_t need) noexcept {
  r.status = ParseStatus::need_more;
  r.need = need;
}

ParseResult more(std::size_t need) noexcept {
  ParseResult r;
  r.status = ParseStatus::need_more;
  r.need = need;
  return r;
}

inline std::uint16_t be16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

inline bool signature_matches(const std::uint8_t* d) noexcept {
  std::uint64_t a, ka;
  std::uint32_t b, kb;
  std::memcpy(&a, d, 8);
  std::memcpy(&b, d + 8, 4);
  std::memcpy(&ka, kSignature.data(), 8);
  std::memcpy(&kb, kSignature.data() + 8, 4);
  return a == ka && b == kb;
}

// Address block size for a family byte, or -1 if the byte is not defined.
inline int address_block(std::uint8_t fam) noexcept {
  switch (fam) {
    case 0x00:
      return 0;
    case 0x11:
    case 0x12:
      return 12;
    case 0x21:
    case 0x22:
      return 36;
    case 0x31:
    case 0x32:
      return 216;
    default:
      return -1;
  }
}

// The address field of an INET (IpLen 4) or INET6 (16) endpoint, built as a value
// so that it is stored once, straight into the result.
template <std::size_t IpLen>
[[gnu::always_inline]] inline std::array<std::uint8_t, 16> ip_field(const std::uint8_t* a) noexcept {
  std::array<std::uint8_t, 16> ip;
  if constexpr (IpLen == 4) {
    // Two words rather than a zeroed array and a 4-byte copy into it (which
    // compilers build on the stack and copy out).
    std::uint32_t v4;
    std::memcpy(&v4, a, 4);
    const std::uint64_t w[2] = {
        std::endian::native == std::endian::little ? std::uint64_t{v4} : std::uint64_t{v4} << 32,
        0};
    std::memcpy(ip.data(), w, 16);
  } else {
    std::memcpy(ip.data(), a, 16);
  }
  return ip;
}

// Endpoint `k` (0: source, 1: destination) of an INET (IpLen 4) or INET6 (16)
// address block at `a`.
template <std::size_t IpLen>
[[gnu::always_inline]] inline Endpoint ip_endpoint(const std::uint8_t* a, std::size_t k) noexcept {
  return {IpLen == 4 ? Endpoint::Kind::ipv4 : Endpoint::Kind::ipv6, ip_field<IpLen>(a + k * IpLen),
          be16(a + 2 * IpLen + 2 * k), {}};
}

// The two endpoints of an address block, into a result being filled in.
template <std::size_t IpLen>
[[gnu::always_inline]] inline void read_ip_pair(HeaderView& h, const std::uint8_t* a) noexcept {
  h.src = ip_endpoint<IpLen>(a, 0);
  h.dst = ip_endpoint<IpLen>(a, 1);
}

std::string_view unix_path(const std::uint8_t* p) noexcept {
  const auto* c = reinterpret_cast<const char*>(p);
  const void* nul = std::memchr(c, 0, kUnixPathSize);
  return {c, nul ? static_cast<std::size_t>(static_cast<const char*>(nul) - c) : kUnixPathSize};
}

}  // namespace

std::optional<TlvView> HeaderView::find(std::uint8_t type) const noexcept {
  for (auto t : tlvs())
    if (t.type == type) return t;
  return std::nullopt;
}

std::string ParseResult::message() const {
  switch (status) {
    case ParseStatus::need_more:
      return "PROXY header incomplete: need " + std::to_string(need) + " bytes";
    case ParseStatus::complete:
      return "PROXY header complete (" + std::to_string(consumed) + " bytes)";
    case ParseStatus::error:
      break;
  }
  return ec.message() + " (at byte " + std::to_string(error_offset) + ")";
}

namespace {

// Stores the CRC32C TLV value found at `crc` and verifies it (when opts.verify_crc).
// Out of line: most headers carry no CRC.
[[gnu::noinline]] bool check_crc(const std::uint8_t* d, const std::uint8_t* crc, std::size_t total,
                                 const DecoderOptions& opts, ParseResult& r) noexcept {
  const std::uint32_t stored = static_cast<std::uint32_t>(crc[0]) << 24 |
                               static_cast<std::uint32_t>(crc[1]) << 16 |
                               static_cast<std::uint32_t>(crc[2]) << 8 | crc[3];
  r.header.crc32c = stored;
  if (opts.verify_crc) {
    static constexpr std::uint8_t zero[4] = {0, 0, 0, 0};
    const std::size_t at = static_cast<std::size_t>(crc - d);
    std::uint32_t c = crc32c({d, at});
    c = crc32c(zero, c);
    c = crc32c({crc + 4, total - at - 4}, c);
    if (c != stored) {
      set_fail(r, errc::crc_mismatch, at);
      return false;
    }
  }
  return true;
}

// The TLV area [d + from, d + total) must be tiled exactly by TLVs; a CRC32C TLV
// must be 4 bytes and appear once, and match when opts.verify_crc.
// Returns false after set_fail().
[[gnu::always_inline]] inline bool check_tlvs(const std::uint8_t* d, std::size_t from,
                                              std::size_t total, const DecoderOptions& opts,
                                              ParseResult& r) noexcept {
  const std::uint8_t* const tlv0 = d + from;
  const std::uint8_t* p = tlv0;
  const std::uint8_t* const end = d + total;
  const std::uint8_t* crc = nullptr;
  HeaderView::DivertIndex& ix = r.header.divert_index;
  bool dup = false;
  while (end - p >= 3) {
    const std::size_t vlen = be16(p + 1);
    if (vlen > static_cast<std::size_t>(end - p) - 3) [[unlikely]] {
      set_fail(r, errc::tlv_overrun, static_cast<std::size_t>(p - d));
      return false;
    }
    // Index 0xE0-0xE3 for read_divert_tlvs() (value offset >= 3, so 0 means absent).
    if (const unsigned k = p[0] - 0xE0u; k < 4) {
      dup |= ix.at[k] != 0;
      ix.at[k] = static_cast<std::uint16_t>(p + 3 - tlv0);
    }
    dup |= p[0] == tlv::divert_status_reply;  // not indexed: read_divert_tlvs() walks
    if (p[0] == tlv::crc32c) [[unlikely]] {
      if (vlen != 4 || crc) {
        set_fail(r, errc::crc_bad_length, static_cast<std::size_t>(p - d));
        return false;
      }
      crc = p + 3;
    }
    p += 3 + vlen;
  }
  if (p != end) [[unlikely]] {
    set_fail(r, errc::trailing_bytes, static_cast<std::size_t>(p - d));
    return false;
  }
  if (!dup) [[likely]] {
    ix.base = tlv0;
    ix.size = static_cast<std::uint16_t>(end - tlv0);
  }
  if (crc) [[unlikely]]
    return check_crc(d, crc, total, opts, r);
  return true;
}

// The general decoder. Fills `r` in place: ParseResult is large, and returning it
// from many exits defeats NRVO (a measurable copy per header). Out of line so that
// parse() keeps a small frame for its fast path.
[[gnu::noinline]] void parse_general(std::span<const std::uint8_t> b, const DecoderOptions& opts,
                                     ParseResult& r) noexcept {
  const std::size_t n = b.size();
  const std::uint8_t* d = b.data();
  HeaderView& h = r.header;

  // Signature: whole-block compare on the fast path, first wrong byte otherwise.
  const std::size_t sig = std::min<std::size_t>(n, kSignature.size());
  if (sig < kSignature.size() || !signature_matches(d)) {
    for (std::size_t i = 0; i < sig; ++i)
      if (d[i] != kSignature[i]) return set_fail(r, errc::bad_signature, i);
  }
  if (n < 13) return set_more(r, kFixedHeaderSize);
  if ((d[12] >> 4) != 2) return set_fail(r, errc::bad_version, 12);
  const std::uint8_t cmd = d[12] & 0xF;
  if (cmd > 1) return set_fail(r, errc::bad_command, 12);
  if (n < 14) return set_more(r, kFixedHeaderSize);
  const std::uint8_t fam = d[13];
  const int block = address_block(fam);
  if (block < 0) return set_fail(r, errc::bad_family, 13);
  const bool proxy = cmd == 1;
  if (proxy && fam == 0x00 && !opts.accept_proxy_unspec)
    return set_fail(r, errc::unspec_rejected, 13);
  if (n < kFixedHeaderSize) return set_more(r, kFixedHeaderSize);
  const std::size_t len = be16(d + 14);
  const std::size_t total = kFixedHeaderSize + len;
  if (total > opts.max_size) return set_fail(r, errc::header_too_large, 14);
  if (proxy && len < static_cast<std::size_t>(block))
    return set_fail(r, errc::address_block_truncated, 14);
  if (n < total) return set_more(r, total);

  r.status = ParseStatus::complete;
  r.consumed = total;
  h.raw = b.first(total);
  h.command = static_cast<Command>(cmd);
  if (!proxy) return;  // LOCAL: family ignored, body skipped

  h.family = static_cast<AddressFamily>(fam >> 4);
  h.transport = static_cast<Transport>(fam & 0xF);
  const std::uint8_t* a = d + kFixedHeaderSize;
  switch (block) {
    case 12:
      read_ip_pair<4>(h, a);
      break;
    case 36:
      read_ip_pair<16>(h, a);
      break;
    case 216:
      h.src.kind = h.dst.kind = Endpoint::Kind::unix_path;
      h.src.path = unix_path(a);
      h.dst.path = unix_path(a + kUnixPathSize);
      break;
    default:
      break;
  }

  // TLVs: must tile [16 + block, total) exactly.
  const std::size_t tlv_start = kFixedHeaderSize + static_cast<std::size_t>(block);
  if (!check_tlvs(d, tlv_start, total, opts, r)) return;
  h.tlv_bytes = b.subspan(tlv_start, total - tlv_start);
}

}  // namespace

namespace {

// The fast path's TLV walk: true when the TLVs tile [tlv0, end) exactly with no
// CRC32C TLV and no divert TLV twice, filling ix.at (zero on entry). Anything else
// (an error, a CRC to verify, a repeated divert TLV) is left to parse_general().
[[gnu::always_inline]] inline bool index_plain_tlvs(const std::uint8_t* tlv0, std::size_t size,
                                                    HeaderView::DivertIndex& ix) noexcept {
  // Offsets, not pointers: a TLV whose length runs past the area moves `at` past
  // `size` (no pointer beyond the buffer is formed), ends the loop and fails the
  // final check, and the general decoder reports it. Only bytes below `size` are read.
  std::size_t at = 0;
  unsigned odd = 0;
  while (at + 3 <= size) {
    const std::uint8_t type = tlv0[at];
    const std::size_t vlen = be16(tlv0 + at + 1);
    if (const unsigned k = type - 0xE0u; k < 4) {
      odd |= ix.at[k];  // seen before
      ix.at[k] = static_cast<std::uint16_t>(at + 3);
    } else {
      odd |= type == tlv::crc32c || type == tlv::divert_status_reply;
    }
    at += 3 + vlen;
  }
  return at == size && odd == 0;
}

// Everything else (other shapes, incomplete input, errors). Out of line, returning
// a prvalue like parse_fast(), so neither path copies the (large) result.
[[gnu::noinline]] ParseResult parse_slow(std::span<const std::uint8_t> b,
                                         const DecoderOptions& opts) noexcept {
  ParseResult r;
  parse_general(b, opts, r);
  return r;
}

}  // namespace

template <std::size_t IpLen>
[[gnu::always_inline]] inline HeaderView::HeaderView(detail::ProxyTcp<IpLen> f) noexcept
    : command(Command::proxy),
      family(IpLen == 4 ? AddressFamily::inet : AddressFamily::inet6),
      transport(Transport::stream),
      src(ip_endpoint<IpLen>(f.d + kFixedHeaderSize, 0)),
      dst(ip_endpoint<IpLen>(f.d + kFixedHeaderSize, 1)),
      raw(f.d, f.total),
      tlv_bytes(f.d + kFixedHeaderSize + 2 * IpLen + 4, f.total - (kFixedHeaderSize + 2 * IpLen + 4)),
      divert_index{f.d + kFixedHeaderSize + 2 * IpLen + 4,
                   static_cast<std::uint16_t>(f.total - (kFixedHeaderSize + 2 * IpLen + 4)),
                   {0, 0, 0, 0}} {}

template <std::size_t IpLen>
[[gnu::always_inline]] inline ParseResult::ParseResult(detail::ProxyTcp<IpLen> f) noexcept
    : status(ParseStatus::complete), consumed(f.total), header(f) {}

namespace {

// The general decoder over the header `r` was built for (r.header.raw: all 16 +
// len bytes of it, which is all parse_general() reads of a longer input), so that
// the fast path keeps no more than `r` and `opts` alive for it.
[[gnu::noinline]] void reparse(ParseResult& r, const DecoderOptions& opts) noexcept {
  const std::span<const std::uint8_t> header = r.header.raw;
  r = ParseResult();
  parse_general(header, opts, r);
}

// The fast path for one shape: the result is built first, straight into the
// caller's memory (one object, returned from every exit, so NRVO applies), and
// the TLV walk writes the divert index into it. A walk that finds anything but
// plain TLVs starts over with the general decoder.
template <std::size_t IpLen>
[[gnu::always_inline]] inline ParseResult parse_fast(const std::uint8_t* d, std::size_t total,
                                                     const DecoderOptions& opts) noexcept {
  constexpr std::size_t tlv_start = kFixedHeaderSize + 2 * IpLen + 4;
  ParseResult r(detail::ProxyTcp<IpLen>{d, total});
  if (!index_plain_tlvs(d + tlv_start, total - tlv_start, r.header.divert_index)) [[unlikely]]
    reparse(r, opts);
  return r;
}

}  // namespace

ParseResult parse(std::span<const std::uint8_t> b, const DecoderOptions& opts) noexcept {
  const std::size_t n = b.size();
  const std::uint8_t* d = b.data();
  // Fast path: a complete PROXY header over TCP/IPv4 or TCP/IPv6 (the shape every
  // divert host proxy sends). Checks exactly what parse_general() checks, in fewer
  // steps; anything else (errors included) goes to parse_general().
  if (n >= kFixedHeaderSize && signature_matches(d) && d[12] == 0x21) [[likely]] {
    const std::uint8_t fam = d[13];
    const std::size_t len = be16(d + 14);
    const std::size_t total = kFixedHeaderSize + len;
    const std::size_t block = fam == 0x11 ? 12 : 36;
    if ((fam == 0x11 || fam == 0x21) && len >= block && total <= opts.max_size && n >= total)
        [[likely]] {
      return fam == 0x11 ? parse_fast<4>(d, total, opts) : parse_fast<16>(d, total, opts);
    }
  }
  return parse_slow(b, opts);
}

// ---------------------------------------------------------------- v1

namespace {

inline bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
  if (s.empty() || s.size() > 5) return false;
  if (s.size() > 1 && s[0] == '0') return false;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  out = static_cast<std::uint16_t>(v);
  return true;
}

}  // namespace

ParseResult parse_v1(std::span<const std::uint8_t> b) noexcept {
  static constexpr std::string_view kPrefix = "PROXY ";
  const std::size_t n = b.size();
  const char* c = reinterpret_cast<const char*>(b.data());
  for (std::size_t i = 0; i < std::min(n, kPrefix.size()); ++i)
    if (c[i] != kPrefix[i]) return fail(errc::v1_bad_format, i);
  // Find CR LF; every byte before it must be printable ASCII.
  const std::size_t scan = std::min(n, kV1MaxSize);
  std::size_t cr = 0;
  for (std::size_t i = kPrefix.size(); i < scan; ++i) {
    const unsigned char ch = static_cast<unsigned char>(c[i]);
    if (ch == '\r') {
      cr = i;
      break;
    }
    if (ch < 0x20 || ch > 0x7E) return fail(errc::v1_bad_format, i);
  }
  if (!cr) {
    if (n >= kV1MaxSize) return fail(errc::v1_too_long, kV1MaxSize - 1);
    return more(n + 1);
  }
  if (cr + 1 >= n) {
    if (cr + 1 >= kV1MaxSize) return fail(errc::v1_too_long, cr);
    return more(cr + 2);
  }
  if (c[cr + 1] != '\n') return fail(errc::v1_bad_format, cr + 1);

  ParseResult r;
  r.status = ParseStatus::complete;
  r.consumed = cr + 2;
  HeaderView& h = r.header;
  h.version = 1;
  h.raw = b.first(cr + 2);
  std::string_view rest(c + kPrefix.size(), cr - kPrefix.size());
  auto next = [&rest](std::string_view& tok) {
    const auto sp = rest.find(' ');
    tok = rest.substr(0, sp);
    rest = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    return sp != std::string_view::npos;
  };
  std::string_view proto, s, d, sp, dp;
  const bool more_tokens = next(proto);
  if (proto == "UNKNOWN") return r;  // the rest of the line is ignored, as the spec says
  const bool v4 = proto == "TCP4";
  if ((!v4 && proto != "TCP6") || !more_tokens) return fail(errc::v1_bad_format, kPrefix.size());
  const bool ok = next(s) && next(d) && next(sp) && !next(dp);
  if (!ok) return fail(errc::v1_bad_format, kPrefix.size() + proto.size());
  auto src = Endpoint::ip_literal(s, 0);
  auto dst = Endpoint::ip_literal(d, 0);
  const auto want = v4 ? Endpoint::Kind::ipv4 : Endpoint::Kind::ipv6;
  if (!src || !dst || src->kind != want || dst->kind != want || !parse_port(sp, src->port) ||
      !parse_port(dp, dst->port))
    return fail(errc::v1_bad_format, kPrefix.size() + proto.size());
  h.command = Command::proxy;
  h.family = v4 ? AddressFamily::inet : AddressFamily::inet6;
  h.transport = Transport::stream;
  h.src = *src;
  h.dst = *dst;
  return r;
}

ParseResult parse_any(std::span<const std::uint8_t> b, const DecoderOptions& opts) noexcept {
  if (b.empty()) return more(1);
  if (b[0] == kSignature[0]) return parse(b, opts);
  if (b[0] == 'P') return parse_v1(b);
  return fail(errc::not_proxy_protocol, 0);
}

// ---------------------------------------------------------------- push decoder

void Decoder::reset() noexcept {
  size_ = 0;
  heap_.clear();
  last_ = ParseResult{};
}

ParseResult Decoder::feed(std::span<const std::uint8_t> chunk) {
  if (last_.status != ParseStatus::need_more) {
    ParseResult r = last_;
    r.consumed = 0;
    return r;
  }
  std::size_t used = 0;
  for (;;) {
    std::span<const std::uint8_t> have = buffered();
    // How many more bytes may be taken without reading past the header.
    std::size_t want;
    const bool v1 = allow_v1_ && ((size_ > 0 && have[0] == 'P') ||
                                  (size_ == 0 && !chunk.empty() && chunk[used] == 'P'));
    if (v1) {
      const std::size_t room = kV1MaxSize - size_;
      const auto rest = chunk.subspan(used, std::min(room, chunk.size() - used));
      const auto lf = std::find(rest.begin(), rest.end(), std::uint8_t{0x0A});
      want = static_cast<std::size_t>(lf - rest.begin()) + (lf == rest.end() ? 0 : 1);
    } else {
      want = (last_.need > size_ ? last_.need : kFixedHeaderSize) - size_;
    }
    const std::size_t take = std::min(want, chunk.size() - used);
    if (take == 0) break;
    const std::size_t new_size = size_ + take;
    if (new_size > kInlineHeaderSize && heap_.empty()) {
      heap_.reserve(std::max(new_size, last_.need));
      heap_.assign(inline_, inline_ + size_);
    }
    if (!heap_.empty()) {
      heap_.insert(heap_.end(), chunk.begin() + used, chunk.begin() + used + take);
    } else {
      std::memcpy(inline_ + size_, chunk.data() + used, take);
    }
    size_ = new_size;
    used += take;
    last_ = v1 ? parse_v1(buffered())
               : (allow_v1_ ? parse_any(buffered(), opts_) : parse(buffered(), opts_));
    if (last_.status != ParseStatus::need_more) break;
  }
  ParseResult r = last_;
  r.consumed = used;
  return r;
}

// ---------------------------------------------------------------- divert TLVs

namespace {

inline std::uint64_t load64(const char* p) noexcept {
  std::uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline std::uint64_t load32(const char* p) noexcept {
  std::uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
// 16 bytes compared at once (GCC/Clang vector extension: SSE2 on x86-64, NEON on
// AArch64, plain integer code elsewhere).
typedef std::uint8_t Bytes16 __attribute__((vector_size(16)));
// Lanes that are a byte a domain or IPv4 host in 0xE0 may not contain: control
// characters (NUL to 0x1F, and DEL), ' ', ':', '[', ']' (all bits set there,
// zero elsewhere).
inline auto bad_host_lanes(Bytes16 v) noexcept {
  return (v <= 0x20) | (v == 0x7F) | (v == ':') | (v == '[') | (v == ']');
}
inline bool bad_host_byte(unsigned char c) noexcept {
  return c <= 0x20 || c == 0x7F || c == ':' || c == '[' || c == ']';
}
// A domain name is at most 253 characters (255 bytes on the wire, RFC 1035
// 2.3.4), 254 with the trailing dot of the FQDN form; the sending side's
// UpstreamAddr refuses longer names too.
constexpr std::size_t kMaxHostLength = 253;
inline bool host_too_long(std::string_view host) noexcept {
  return host.size() > kMaxHostLength && (host.size() > kMaxHostLength + 1 || host.back() != '.');
}
template <class V>
inline bool any_lane(V v) noexcept {
  static_assert(sizeof(V) == 16);
#if defined(__SSE2__)
  __m128i m;
  std::memcpy(&m, &v, 16);
  return _mm_movemask_epi8(m) != 0;  // every lane is all ones or all zeros
#else
  std::uint64_t w[2];
  std::memcpy(w, &v, 16);
  return (w[0] | w[1]) != 0;
#endif
}
inline Bytes16 load16(const char* p) noexcept {
  Bytes16 v;
  std::memcpy(&v, p, 16);
  return v;
}
// True when `h` contains a byte bad_host_lanes() flags. Reads only [h, h + n),
// the last load overlapping the one before.
[[gnu::always_inline]] inline bool host_has_bad_byte(const char* h, std::size_t n) noexcept {
  if (n >= 16) {
    auto bad = bad_host_lanes(load16(h + n - 16));
    for (std::size_t i = 0; i + 16 < n; i += 16) bad |= bad_host_lanes(load16(h + i));
    return any_lane(bad);
  }
  if (n >= 8) [[likely]] {
    const std::uint64_t w[2] = {load64(h), load64(h + n - 8)};
    Bytes16 v;
    std::memcpy(&v, w, 16);
    return any_lane(bad_host_lanes(v));
  }
  if (n >= 4) {
    const std::uint64_t lo = load32(h) | load32(h + n - 4) << 32;
    const std::uint64_t w[2] = {lo, lo};
    Bytes16 v;
    std::memcpy(&v, w, 16);
    return any_lane(bad_host_lanes(v));
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (bad_host_byte(static_cast<unsigned char>(h[i]))) return true;
  }
  return false;
}

// The port of "host:port" from the last 8 bytes of the text (w, loaded little-endian:
// the last character is the top byte), the host being at least 2 bytes before them
// is implied by the caller's n >= 8. Same rules as the byte loop: 1-5 digits right
// after a ':', no leading zero. Sets `digits` and `port` (range checked by the caller).
[[gnu::always_inline]] inline bool port_swar(std::uint64_t w, std::size_t& digits,
                                             unsigned& port) noexcept {
  if constexpr (std::endian::native != std::endian::little) w = __builtin_bswap64(w);
  constexpr std::uint64_t k7f = 0x7F7F7F7F7F7F7F7FULL, k80 = 0x8080808080808080ULL;
  constexpr std::uint64_t k30 = 0x3030303030303030ULL, k46 = 0x4646464646464646ULL;
  // A byte's top bit is set in `nondigit` unless the byte is '0'..'9' (byte-wise,
  // no carry between bytes: t <= 0x7F).
  const std::uint64_t t = w & k7f;
  const std::uint64_t nondigit = (w | (t + k46) | ~((t | k80) - k30)) & k80;
  if (nondigit == 0) return false;  // 8 digits: too many
  const unsigned d = static_cast<unsigned>(std::countl_zero(nondigit)) >> 3;
  if (d == 0 || d > 5) return false;
  const unsigned sh = 8 * (7 - d);  // bit offset of the ':' byte
  const std::uint64_t x = w >> sh;  // ':' then the digits
  if (static_cast<std::uint8_t>(x) != ':') return false;
  if (d > 1 && static_cast<std::uint8_t>(x >> 8) == '0') return false;  // no leading zero
  // Digit values in the top d bytes, zero (a leading 0 digit) below; convert all 8.
  const std::uint64_t keep = ~std::uint64_t{0} << (sh + 8);
  std::uint64_t v = (w & keep) - (k30 & keep);
  v = (v * 10 + (v >> 8)) & 0x00FF00FF00FF00FFULL;    // pairs of digits
  v = (v * 100 + (v >> 16)) & 0x0000FFFF0000FFFFULL;  // groups of four
  port = static_cast<unsigned>((v & 0xFFFF) * 10000 + (v >> 32));
  digits = d;
  return true;
}

#if defined(__SSE2__)
// port_swar() with SSE2 (every x86-64): the same rules and results, from the
// last 8 bytes of the text at `last8`. Fewer instructions, and it leaves the
// general registers free, so read_divert_tlvs() saves fewer of them.
[[gnu::always_inline]] inline bool port_sse2(const char* last8, std::size_t& digits,
                                             unsigned& port) noexcept {
  const __m128i x = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(last8));  // lanes 8-15: 0
  const __m128i t = _mm_sub_epi8(x, _mm_set1_epi8('0'));
  // Lanes holding '0'..'9' (t <= 9 unsigned); the top lane is the last character.
  const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(t, _mm_set1_epi8(9)), t);
  const auto m = static_cast<std::uint8_t>(_mm_movemask_epi8(is_digit));
  const unsigned d = static_cast<unsigned>(std::countl_one(m));  // digits at the end
  if (d == 0 || d > 5) return false;
  const unsigned colon =
      static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(':'))));
  if (!(colon >> (7 - d) & 1)) return false;
  // Digit values in lanes 8-d..7, zero below: lane 7 counts 1, lane 6 10, ... lane 3
  // 10000 (d <= 5, so lanes 0-2 are always zero).
  const __m128i keep =  // _mm_set_epi64x, not _mm_cvtsi64_si128: the latter is x86-64 only
      _mm_set_epi64x(0, static_cast<long long>(~std::uint64_t{0} << (8 * (8 - d))));
  const __m128i v = _mm_unpacklo_epi8(_mm_and_si128(t, keep), _mm_setzero_si128());
  __m128i sum = _mm_madd_epi16(v, _mm_setr_epi16(0, 0, 0, 10000, 1000, 100, 10, 1));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0x4E));
  sum = _mm_add_epi32(sum, _mm_shuffle_epi32(sum, 0xB1));
  port = static_cast<unsigned>(_mm_cvtsi128_si32(sum));
  // d digits with no leading zero are at least 10^(d-1): one compare instead of
  // a test of the first digit (and it turns down port 0 too).
  static constexpr unsigned kLowest[6] = {0, 1, 10, 100, 1000, 10000};
  if (port < kLowest[d]) return false;
  digits = d;
  return true;
}
#endif

// "[v6]" host of 0xE0 (rare): brackets, no NUL, a valid IPv6 literal.
[[gnu::noinline]] bool bracketed_v6(std::string_view& host) noexcept {
  if (host.size() < 3 || host.back() != ']') return false;
  host = host.substr(1, host.size() - 2);
  if (host.find('\0') != std::string_view::npos) return false;
  auto e = Endpoint::ip_literal(host, 0);
  return e && e->kind == Endpoint::Kind::ipv6;
}

// Writes into `u` in place (returning the optional through memory and copying it
// costs a store-forwarding stall per header). Brackets = false answers false for
// a "[v6]:port" text instead of checking it, so that the caller's fast path has
// no call in it (values kept across a call take registers that must be saved).
template <bool Brackets = true>
[[gnu::always_inline]] inline bool parse_upstream_into(std::string_view t,
                                                       UpstreamView& u) noexcept {
  // "host:port": the port is the run of 1-5 decimal digits at the end, right
  // after the last ':' (any other byte after that ':' is an error).
  const char* s = t.data();
  const std::size_t n = t.size();
  std::size_t i;  // index just after the ':'; the host is [0, i - 1) and must not be empty
  unsigned port;
  if (n >= 8) [[likely]] {
#if defined(__SSE2__)
    if (!port_sse2(s + n - 8, i, port)) return false;
#else
    if (!port_swar(load64(s + n - 8), i, port)) return false;
#endif
    i = n - i;  // the port parser gave the digit count
  } else {
    // Walk back over at most 5 digits, then read them forwards.
    const std::size_t lowest = n > 5 ? n - 5 : 0;
    i = n;
    while (i > lowest && static_cast<unsigned char>(s[i - 1] - '0') <= 9) --i;
    const std::size_t digits = n - i;
    if (digits == 0 || i < 2 || s[i - 1] != ':') return false;
    if (digits > 1 && s[i] == '0') return false;  // no leading zeros
    port = 0;
    for (std::size_t k = i; k < n; ++k) port = port * 10 + static_cast<unsigned>(s[k] - '0');
  }
  if (port == 0 || port > 65535) return false;
  std::string_view host(s, i - 1);
  u.port = static_cast<std::uint16_t>(port);
  u.ipv6_literal = false;
  if (host.front() == '[') [[unlikely]] {
    if (!Brackets || !bracketed_v6(host)) return false;
    u.ipv6_literal = true;
  } else if (host_too_long(host) || host_has_bad_byte(host.data(), host.size())) {
    return false;
  }
  u.host = host;
  return true;
}
}  // namespace

std::optional<UpstreamView> parse_upstream(std::string_view t) noexcept {
  std::optional<UpstreamView> u(std::in_place);
  if (!parse_upstream_into(t, *u)) u.reset();
  return u;
}

namespace {
// The general reader: one pass over tlv_bytes.
[[gnu::noinline]] std::error_code read_divert_walk(const HeaderView& h, DivertTlvs& out) noexcept {
  out.upstream_text.reset();
  out.upstream.reset();
  out.tls_name.reset();
  out.username.reset();
  out.task_id.reset();
  out.status_reply.reset();
  // One pass over TLVs the parser already validated (they tile tlv_bytes
  // exactly); the end check keeps a hand-made HeaderView from reading past it.
  const std::uint8_t* p = h.tlv_bytes.data();
  const std::uint8_t* const end = p + h.tlv_bytes.size();
  while (end - p >= 3) {
    const std::uint8_t type = p[0];
    const std::size_t vlen = be16(p + 1);
    const std::uint8_t* v = p + 3;
    if (vlen > static_cast<std::size_t>(end - v)) break;
    p = v + vlen;
    const std::string_view text(reinterpret_cast<const char*>(v), vlen);
    switch (type) {
      case tlv::divert_upstream:
        if (out.upstream_text) return errc::duplicate_tlv;
        out.upstream_text = text;
        if (!parse_upstream_into(text, out.upstream.emplace())) {
          out.upstream.reset();
          return errc::bad_upstream;
        }
        break;
      case tlv::divert_tls_name:
        if (out.tls_name) return errc::duplicate_tlv;
        if (!detail::tls_name_ok(text)) return errc::bad_tls_name;
        out.tls_name = text;
        break;
      case tlv::divert_username:
        if (out.username) return errc::duplicate_tlv;
        if (!detail::username_ok(text)) return errc::bad_username;
        out.username = text;
        break;
      case tlv::divert_task_id:
        if (out.task_id) return errc::duplicate_tlv;
        if (vlen != 16) return errc::bad_task_id;
        std::memcpy(out.task_id.emplace().bytes.data(), v, 16);
        break;
      case tlv::divert_status_reply:
        if (out.status_reply) return errc::duplicate_tlv;
        if (vlen != 1) return errc::bad_status_request;
        out.status_reply = v[0];
        break;
      default:
        break;
    }
  }
  return {};
}
}  // namespace

std::error_code read_divert_tlvs(const HeaderView& h, DivertTlvs& out) noexcept {
  // Fast path: parse() indexed the divert TLVs (each at most once). Anything that
  // is an error goes to the walk, which reports it exactly as it would without the
  // index (same error, same fields filled before it).
  const HeaderView::DivertIndex& ix = h.divert_index;
  const std::uint8_t* const t = h.tlv_bytes.data();
  if (ix.base == t && ix.size == h.tlv_bytes.size()) [[likely]] {
    auto text = [t](std::size_t at) {
      return std::string_view(reinterpret_cast<const char*>(t + at), be16(t + at - 2));
    };
    // Values are built in locals and stored once (emplace() would zero them first).
    if (ix.at[3]) {
      if (be16(t + ix.at[3] - 2) != 16) [[unlikely]]
        return read_divert_walk(h, out);
      Uuid id;
      std::memcpy(id.bytes.data(), t + ix.at[3], 16);
      out.task_id = id;
    } else {
      out.task_id.reset();
    }
    if (ix.at[0]) {
      const std::string_view up = text(ix.at[0]);
      UpstreamView u;
      if (!parse_upstream_into<false>(up, u)) [[unlikely]]
        return read_divert_walk(h, out);  // an error, or an IPv6 literal
      out.upstream = u;
      out.upstream_text = up;
    } else {
      out.upstream_text.reset();
      out.upstream.reset();
    }
    if (ix.at[1]) {
      const std::string_view name = text(ix.at[1]);
      if (!detail::tls_name_ascii_ok(name)) [[unlikely]]
        return read_divert_walk(h, out);  // an error, or UTF-8 beyond ASCII
      out.tls_name = name;
    } else {
      out.tls_name.reset();
    }
    if (ix.at[2]) {
      const std::string_view user = text(ix.at[2]);
      if (!detail::username_ascii_ok(user)) [[unlikely]]
        return read_divert_walk(h, out);  // an error, or UTF-8 beyond ASCII
      out.username = user;
    } else {
      out.username.reset();
    }
    out.status_reply.reset();  // a header with 0xE7 is never indexed
    return detail::no_error();
  }
  return read_divert_walk(h, out);
}

}  // namespace divert::ppv2
