// PROXY protocol decoder (doc/proxy-protocol.txt): v2 (section 2.2) with a fast
// path for the header divert connectors send, the v1 text line (section 2.1),
// the push Decoder, and the typed view of divert's TLVs.
#include "divert/ppv2/decoder.hpp"

#include <algorithm>
#include <cstring>

#include "divert/ppv2/crc32c.hpp"
#include "divert/ppv2/errc.hpp"
#include "ppv2/general.hpp"
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

ParseResult more(std::size_t need) noexcept {
  ParseResult r;
  r.status = ParseStatus::need_more;
  r.need = need;
  return r;
}

std::uint16_t be16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// Size of the address block of a family/transport byte (byte 13), or -1 when the
// byte is not one the spec defines.
int address_block_size(std::uint8_t family) noexcept {
  switch (family) {
    case 0x00:  // UNSPEC
      return 0;
    case 0x11:  // TCP over IPv4
    case 0x12:  // UDP over IPv4
      return 12;
    case 0x21:  // TCP over IPv6
    case 0x22:  // UDP over IPv6
      return 36;
    case 0x31:  // UNIX stream
    case 0x32:  // UNIX datagram
      return 2 * static_cast<int>(kUnixPathSize);
    default:
      return -1;
  }
}

// An AF_UNIX path field: 108 bytes, the path ends at the first NUL.
std::string_view unix_path(const std::uint8_t* p) noexcept {
  const auto* c = reinterpret_cast<const char*>(p);
  return {c, static_cast<std::size_t>(std::find(c, c + kUnixPathSize, '\0') - c)};
}

// Family, transport, endpoints and views of a complete PROXY header whose
// framing and TLVs have been checked: `header` is its 16 + len bytes.
void fill_proxy(HeaderView& h, std::span<const std::uint8_t> header) noexcept {
  const std::uint8_t family = header[13];
  const auto block = static_cast<std::size_t>(address_block_size(family));
  const std::uint8_t* a = header.data() + kFixedHeaderSize;
  h.command = Command::proxy;
  h.family = static_cast<AddressFamily>(family >> 4);
  h.transport = static_cast<Transport>(family & 0xF);
  h.raw = header;
  h.tlv_bytes = header.subspan(kFixedHeaderSize + block);
  if (block == 2 * kUnixPathSize) {  // source path, destination path
    h.src.kind = h.dst.kind = Endpoint::Kind::unix_path;
    h.src.path = unix_path(a);
    h.dst.path = unix_path(a + kUnixPathSize);
  } else if (block != 0) {  // source address, destination address, source port, destination port
    const std::size_t ip_size = block == 12 ? 4 : 16;
    h.src.kind = h.dst.kind = ip_size == 4 ? Endpoint::Kind::ipv4 : Endpoint::Kind::ipv6;
    std::memcpy(h.src.ip.data(), a, ip_size);
    std::memcpy(h.dst.ip.data(), a + ip_size, ip_size);
    h.src.port = be16(a + 2 * ip_size);
    h.dst.port = be16(a + 2 * ip_size + 2);
  }
}

// What a walk over the TLV area found.
struct TlvScan {
  errc error{};                       // tlv_overrun, trailing_bytes or crc_bad_length
  std::size_t error_offset = 0;       // where, in the header
  const std::uint8_t* crc = nullptr;  // the CRC32C TLV's value, when present
};

// The TLVs must tile [d + from, d + total) exactly: a TLV running past the end
// is tlv_overrun, 1 or 2 bytes left over are trailing_bytes. A CRC32C TLV must
// be 4 bytes and appear once.
TlvScan scan_tlvs(const std::uint8_t* d, std::size_t from, std::size_t total) noexcept {
  TlvScan s;
  std::size_t at = from;
  while (total - at >= 3) {
    const std::size_t value_size = be16(d + at + 1);
    if (value_size > total - at - 3) {
      s.error = errc::tlv_overrun;
      s.error_offset = at;
      return s;
    }
    if (d[at] == tlv::crc32c) {
      if (value_size != 4 || s.crc) {
        s.error = errc::crc_bad_length;
        s.error_offset = at;
        return s;
      }
      s.crc = d + at + 3;
    }
    at += 3 + value_size;
  }
  if (at != total) {
    s.error = errc::trailing_bytes;
    s.error_offset = at;
  }
  return s;
}

std::uint32_t load_be32(const std::uint8_t* p) noexcept {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

// CRC32C over the whole header with the CRC TLV's value (at `crc`) taken as zero.
std::uint32_t header_crc(std::span<const std::uint8_t> header, const std::uint8_t* crc) noexcept {
  static constexpr std::uint8_t kZero[4] = {0, 0, 0, 0};
  const auto at = static_cast<std::size_t>(crc - header.data());
  std::uint32_t c = crc32c(header.first(at));
  c = crc32c(kZero, c);
  return crc32c(header.subspan(at + 4), c);
}

// The fast path: the header divert connectors send, complete in `b` — PROXY
// over TCP/IPv4 or TCP/IPv6, within the size cap, TLVs without a CRC32C. Fills
// `r` and returns true; returns false, `r` untouched, for anything else (another
// family, LOCAL, a CRC to check, incomplete input, an error), which the general
// path then decodes.
bool parse_fast(std::span<const std::uint8_t> b, const DecoderOptions& opts,
                ParseResult& r) noexcept {
  const std::uint8_t* d = b.data();
  if (b.size() < kFixedHeaderSize || std::memcmp(d, kSignature.data(), kSignature.size()) != 0)
    return false;
  if (d[12] != 0x21 || (d[13] != 0x11 && d[13] != 0x21)) return false;  // v2 PROXY, TCP4/TCP6
  const std::size_t tlv_start = kFixedHeaderSize + (d[13] == 0x11 ? 12 : 36);
  const std::size_t total = kFixedHeaderSize + be16(d + 14);
  if (total < tlv_start || total > opts.max_size || total > b.size()) return false;
  const TlvScan scan = scan_tlvs(d, tlv_start, total);
  if (scan.error != errc{} || scan.crc) return false;
  r.status = ParseStatus::complete;
  r.consumed = total;
  fill_proxy(r.header, b.first(total));
  return true;
}

}  // namespace

ParseResult detail::parse_general(std::span<const std::uint8_t> b,
                                  const DecoderOptions& opts) noexcept {
  const std::size_t n = b.size();
  const std::uint8_t* d = b.data();
  // Bytes 0-11, the signature: a wrong byte is an error as soon as it is in.
  for (std::size_t i = 0; i < std::min(n, kSignature.size()); ++i)
    if (d[i] != kSignature[i]) return fail(errc::bad_signature, i);
  if (n < 13) return more(kFixedHeaderSize);
  // Byte 12: version 2 (high nibble), command LOCAL or PROXY (low nibble).
  if ((d[12] >> 4) != 2) return fail(errc::bad_version, 12);
  const std::uint8_t command = d[12] & 0xF;
  if (command > 1) return fail(errc::bad_command, 12);
  if (n < 14) return more(kFixedHeaderSize);
  // Byte 13: address family (high nibble) and transport (low nibble).
  const std::uint8_t family = d[13];
  const int block = address_block_size(family);
  if (block < 0) return fail(errc::bad_family, 13);
  const bool proxy = command == 0x1;
  if (proxy && family == 0x00 && !opts.accept_proxy_unspec) return fail(errc::unspec_rejected, 13);
  if (n < kFixedHeaderSize) return more(kFixedHeaderSize);
  // Bytes 14-15: the length of the rest, big-endian.
  const std::size_t len = be16(d + 14);
  const std::size_t total = kFixedHeaderSize + len;
  if (total > opts.max_size) return fail(errc::header_too_large, 14);
  if (proxy && len < static_cast<std::size_t>(block))
    return fail(errc::address_block_truncated, 14);
  if (n < total) return more(total);

  if (!proxy) {  // LOCAL: the family is ignored and the body skipped, as the spec says
    ParseResult r;
    r.status = ParseStatus::complete;
    r.consumed = total;
    r.header.command = Command::local;
    r.header.raw = b.first(total);
    return r;
  }
  const TlvScan scan = scan_tlvs(d, kFixedHeaderSize + static_cast<std::size_t>(block), total);
  if (scan.error != errc{}) return fail(scan.error, scan.error_offset);
  if (scan.crc && opts.verify_crc && header_crc(b.first(total), scan.crc) != load_be32(scan.crc))
    return fail(errc::crc_mismatch, static_cast<std::size_t>(scan.crc - d));
  ParseResult r;
  r.status = ParseStatus::complete;
  r.consumed = total;
  fill_proxy(r.header, b.first(total));
  if (scan.crc) r.header.crc32c = load_be32(scan.crc);
  return r;
}

ParseResult parse(std::span<const std::uint8_t> b, const DecoderOptions& opts) noexcept {
  ParseResult r;
  if (!parse_fast(b, opts, r)) r = detail::parse_general(b, opts);
  return r;
}

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

// ---------------------------------------------------------------- v1

namespace {

// A port as text: 1-5 decimal digits, no sign, no leading zero, at most 65535.
bool parse_port(std::string_view s, std::uint16_t& out) noexcept {
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

// A byte a domain name or IPv4 host in 0xE0 may not contain: a control
// character (0x00-0x1F, 0x7F), space, ':', '[' or ']'.
bool bad_host_byte(char ch) noexcept {
  const auto c = static_cast<unsigned char>(ch);
  return c <= 0x20 || c == 0x7F || c == ':' || c == '[' || c == ']';
}

// A domain name is at most 253 characters (255 bytes on the wire, RFC 1035
// 2.3.4), 254 with the trailing dot of the FQDN form; the sending side's
// UpstreamAddr refuses longer names too.
bool host_too_long(std::string_view host) noexcept {
  constexpr std::size_t kMaxHostLength = 253;
  return host.size() > kMaxHostLength && (host.size() > kMaxHostLength + 1 || host.back() != '.');
}

// 0xE0's "host:port" into `u`; false when it is not one (see parse_upstream()).
bool split_upstream(std::string_view text, UpstreamView& u) noexcept {
  // The port follows the last ':'; the host before it is not empty.
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  if (!parse_port(text.substr(colon + 1), u.port) || u.port == 0) return false;
  u.host = text.substr(0, colon);
  u.ipv6_literal = u.host.front() == '[';
  if (u.ipv6_literal) {  // "[v6]": an IPv6 literal in brackets
    if (u.host.size() < 3 || u.host.back() != ']') return false;
    u.host = u.host.substr(1, u.host.size() - 2);
    if (u.host.find('\0') != std::string_view::npos) return false;
    const auto ip = Endpoint::ip_literal(u.host, 0);
    return ip && ip->kind == Endpoint::Kind::ipv6;
  }
  if (host_too_long(u.host)) return false;
  for (char c : u.host)
    if (bad_host_byte(c)) return false;
  return true;
}

}  // namespace

std::optional<UpstreamView> parse_upstream(std::string_view text) noexcept {
  UpstreamView u;
  if (!split_upstream(text, u)) return std::nullopt;
  return u;
}

std::error_code read_divert_tlvs(const HeaderView& h, DivertTlvs& out) noexcept {
  out.upstream_text.reset();
  out.upstream.reset();
  out.tls_name.reset();
  out.username.reset();
  out.task_id.reset();
  out.status_reply.reset();
  // One pass over TLVs the parser validated (they tile tlv_bytes exactly); the
  // bounds check keeps a hand-made HeaderView from reading past tlv_bytes.
  std::span<const std::uint8_t> rest = h.tlv_bytes;
  while (rest.size() >= 3) {
    const std::uint8_t type = rest[0];
    const std::size_t size = be16(&rest[1]);
    if (size > rest.size() - 3) break;
    const std::span<const std::uint8_t> value = rest.subspan(3, size);
    const std::string_view text(reinterpret_cast<const char*>(value.data()), size);
    rest = rest.subspan(3 + size);
    switch (type) {
      case tlv::divert_upstream:
        if (out.upstream_text) return errc::duplicate_tlv;
        out.upstream_text = text;
        if (!split_upstream(text, out.upstream.emplace())) {
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
        if (size != 16) return errc::bad_task_id;
        out.task_id.emplace();
        std::memcpy(out.task_id->bytes.data(), value.data(), 16);
        break;
      case tlv::divert_status_reply:
        if (out.status_reply) return errc::duplicate_tlv;
        if (size != 1) return errc::bad_status_request;
        out.status_reply = value[0];
        break;
      default:
        break;
    }
  }
  return {};
}

}  // namespace divert::ppv2
