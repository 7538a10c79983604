// PROXY protocol v2 encoder (doc/proxy-protocol.txt section 2.2). A header is
// the 12-byte signature, ver_cmd, family, a big-endian u16 length, the address
// block of the family, then TLVs (type, u16 length, value).
#include "divert/ppv2/encoder.hpp"

#include <algorithm>
#include <cstring>

#include "divert/ppv2/crc32c.hpp"
#include "ppv2/general.hpp"
#include "ppv2/text.hpp"

namespace divert::ppv2 {

namespace {

constexpr std::size_t kTlvHeaderSize = 3;  // type + u16 length
constexpr std::size_t kMaxTlvValue = 0xFFFF;
constexpr std::uint8_t kStatusReplyVersion = 0x01;  // the value of TLV 0xE7

void put_u16(std::uint8_t* p, std::size_t v) noexcept {
  p[0] = static_cast<std::uint8_t>(v >> 8);
  p[1] = static_cast<std::uint8_t>(v);
}

std::uint8_t* put_tlv(std::uint8_t* w, std::uint8_t type, const void* value,
                      std::size_t n) noexcept {
  w[0] = type;
  put_u16(w + 1, n);
  if (n) std::memcpy(w + kTlvHeaderSize, value, n);
  return w + kTlvHeaderSize + n;
}

std::uint8_t* put_text_tlv(std::uint8_t* w, std::uint8_t type, std::string_view v) noexcept {
  return put_tlv(w, type, v.data(), v.size());
}

// Signature, version 2 with the command, family byte and length.
void put_fixed_header(std::uint8_t* out, Command cmd, std::uint8_t family,
                      std::size_t len) noexcept {
  std::memcpy(out, kSignature.data(), kSignature.size());
  out[12] = static_cast<std::uint8_t>(0x20 | static_cast<std::uint8_t>(cmd));
  out[13] = family;
  put_u16(out + 14, len);
}

// ---- divert's TLVs (0xE0-0xE3, 0xE7): the part both paths share ----

// Values: 0xE0 not empty and without NUL; 0xE1 and 0xE2 UTF-8 without NUL
// (0xE1 not empty).
bool divert_values_ok(const HeaderSpec& s) noexcept {
  if (s.upstream && (s.upstream->empty() || s.upstream->find('\0') != std::string_view::npos))
    return false;
  if (s.tls_name && !detail::tls_name_ok(*s.tls_name)) return false;
  if (s.username && !detail::username_ok(*s.username)) return false;
  return true;
}

// Bytes the divert TLVs take, TLV headers included.
std::size_t divert_tlvs_size(const HeaderSpec& s) noexcept {
  std::size_t n = 0;
  if (s.upstream) n += kTlvHeaderSize + s.upstream->size();
  if (s.tls_name) n += kTlvHeaderSize + s.tls_name->size();
  if (s.username) n += kTlvHeaderSize + s.username->size();
  if (s.task_id) n += kTlvHeaderSize + s.task_id->bytes.size();
  if (s.status_reply) n += kTlvHeaderSize + 1;
  return n;
}

// Writes them in their wire order: 0xE0, 0xE1, 0xE2, 0xE3, 0xE7.
std::uint8_t* put_divert_tlvs(std::uint8_t* w, const HeaderSpec& s) noexcept {
  if (s.upstream) w = put_text_tlv(w, tlv::divert_upstream, *s.upstream);
  if (s.tls_name) w = put_text_tlv(w, tlv::divert_tls_name, *s.tls_name);
  if (s.username) w = put_text_tlv(w, tlv::divert_username, *s.username);
  if (s.task_id) w = put_tlv(w, tlv::divert_task_id, s.task_id->bytes.data(), 16);
  if (s.status_reply) w = put_tlv(w, tlv::divert_status_reply, &kStatusReplyVersion, 1);
  return w;
}

// ---- the fast path ----

// The header a divert connector sends: PROXY, both endpoints IPv4 or both IPv6
// (not v4-mapped, which the general path folds), divert TLVs only. Writes it
// and returns its size, or returns 0 for anything else (another shape, an
// invalid value, no room): the general path then writes it or says exactly
// what is wrong.
std::size_t encode_fast(const HeaderSpec& s, std::span<std::uint8_t> out,
                        std::size_t max_size) noexcept {
  using Kind = Endpoint::Kind;
  if (s.command != Command::proxy || s.src.kind != s.dst.kind) return 0;
  if (s.src.kind != Kind::ipv4 && s.src.kind != Kind::ipv6) return 0;
  if (s.src.is_v4_mapped() || s.dst.is_v4_mapped()) return 0;
  if (s.authority || s.unique_id || !s.extra.empty() || s.noop_padding || s.crc32c) return 0;
  if (!divert_values_ok(s)) return 0;

  const bool v4 = s.src.kind == Kind::ipv4;
  const std::size_t ip_size = v4 ? 4 : 16;
  // Every value is part of len, so len <= 0xFFFF bounds each of them too.
  const std::size_t len = 2 * ip_size + 4 + divert_tlvs_size(s);
  const std::size_t size = kFixedHeaderSize + len;
  if (len > 0xFFFF || size > max_size || size > out.size()) return 0;

  const std::uint8_t transport = s.transport == Transport::dgram ? 0x2 : 0x1;
  std::uint8_t* w = out.data();
  put_fixed_header(w, Command::proxy, static_cast<std::uint8_t>((v4 ? 0x10 : 0x20) | transport),
                   len);
  w += kFixedHeaderSize;
  std::memcpy(w, s.src.ip.data(), ip_size);
  std::memcpy(w + ip_size, s.dst.ip.data(), ip_size);
  w += 2 * ip_size;
  put_u16(w, s.src.port);
  put_u16(w + 2, s.dst.port);
  put_divert_tlvs(w + 4, s);
  return size;
}

// ---- the general path ----

// The addresses as they go on the wire: IPv4-mapped IPv6 folded to IPv4 when
// both sides are then IPv4, else both sent as IPv6 (v4-mapped).
struct WireAddresses {
  std::uint8_t family = 0x00;  // UNSPEC: no address block
  std::size_t block_size = 0;  // 0, 12, 36 or 216
  std::array<std::uint8_t, 16> src_ip{}, dst_ip{};
  std::uint16_t src_port = 0, dst_port = 0;
  std::string_view src_path, dst_path;
};

// The IPv4 bytes of an IPv4 or v4-mapped IPv6 endpoint, or nullptr.
const std::uint8_t* as_v4(const Endpoint& e) noexcept {
  if (e.kind == Endpoint::Kind::ipv4) return e.ip.data();
  if (e.is_v4_mapped()) return e.ip.data() + 12;
  return nullptr;
}

// An endpoint's address as IPv6: itself, or the v4-mapped form of an IPv4 one.
std::array<std::uint8_t, 16> as_v6(const Endpoint& e) noexcept {
  if (e.kind == Endpoint::Kind::ipv6) return e.ip;
  std::array<std::uint8_t, 16> a{};
  a[10] = a[11] = 0xff;
  std::memcpy(a.data() + 12, e.ip.data(), 4);
  return a;
}

errc wire_addresses(const HeaderSpec& s, WireAddresses& w) noexcept {
  if (s.command == Command::local) return errc{};  // UNSPEC, endpoints ignored
  using Kind = Endpoint::Kind;
  const Kind ks = s.src.kind, kd = s.dst.kind;
  if (ks == Kind::none && kd == Kind::none) return errc{};  // PROXY + UNSPEC
  if (ks == Kind::none || kd == Kind::none) return errc::address_family_mismatch;
  const std::uint8_t transport = s.transport == Transport::dgram ? 0x2 : 0x1;
  if (ks == Kind::unix_path || kd == Kind::unix_path) {
    if (ks != kd) return errc::address_family_mismatch;
    if (s.src.path.size() > kUnixPathSize || s.dst.path.size() > kUnixPathSize)
      return errc::unix_path_too_long;
    w.family = static_cast<std::uint8_t>(0x30 | transport);
    w.block_size = 2 * kUnixPathSize;
    w.src_path = s.src.path;
    w.dst_path = s.dst.path;
    return errc{};
  }
  w.src_port = s.src.port;
  w.dst_port = s.dst.port;
  const std::uint8_t* s4 = as_v4(s.src);
  const std::uint8_t* d4 = as_v4(s.dst);
  if (s4 && d4) {
    w.family = static_cast<std::uint8_t>(0x10 | transport);
    w.block_size = 12;
    std::memcpy(w.src_ip.data(), s4, 4);
    std::memcpy(w.dst_ip.data(), d4, 4);
  } else {
    w.family = static_cast<std::uint8_t>(0x20 | transport);
    w.block_size = 36;
    w.src_ip = as_v6(s.src);
    w.dst_ip = as_v6(s.dst);
  }
  return errc{};
}

// Checks everything and computes the header size.
errc plan(const HeaderSpec& s, const EncodeOptions& o, const WireAddresses& a,
          std::size_t& size) noexcept {
  if (!divert_values_ok(s)) return errc::invalid_tlv_value;
  std::size_t largest = 0;  // the longest TLV value
  for (std::string_view v : {s.upstream.value_or(""), s.tls_name.value_or(""),
                             s.username.value_or(""), s.authority.value_or("")})
    largest = std::max(largest, v.size());
  if (s.unique_id) largest = std::max(largest, s.unique_id->size());
  for (const auto& t : s.extra) largest = std::max(largest, t.value.size());
  if (largest > kMaxTlvValue) return errc::tlv_value_too_large;

  // In size_t: no sum of these can wrap.
  std::size_t body = a.block_size + divert_tlvs_size(s);
  if (s.authority) body += kTlvHeaderSize + s.authority->size();
  if (s.unique_id) body += kTlvHeaderSize + s.unique_id->size();
  for (const auto& t : s.extra) body += kTlvHeaderSize + t.value.size();
  if (s.noop_padding) body += kTlvHeaderSize + *s.noop_padding;
  if (s.crc32c) body += kTlvHeaderSize + 4;
  if (body > 0xFFFF) return errc::length_overflow;
  size = kFixedHeaderSize + body;
  if (size > o.max_size) return errc::header_too_large;
  return errc{};
}

// Writes a planned header of `size` bytes into out[0, size).
void write(const HeaderSpec& s, const WireAddresses& a, std::uint8_t* out,
           std::size_t size) noexcept {
  put_fixed_header(out, s.command, a.family, size - kFixedHeaderSize);
  std::uint8_t* w = out + kFixedHeaderSize;
  if (a.block_size == 2 * kUnixPathSize) {  // two NUL-padded 108-byte paths
    std::memset(w, 0, 2 * kUnixPathSize);
    if (!a.src_path.empty()) std::memcpy(w, a.src_path.data(), a.src_path.size());
    if (!a.dst_path.empty()) std::memcpy(w + kUnixPathSize, a.dst_path.data(), a.dst_path.size());
    w += 2 * kUnixPathSize;
  } else if (a.block_size != 0) {  // src ip, dst ip, src port, dst port
    const std::size_t ip_size = a.block_size == 12 ? 4 : 16;
    std::memcpy(w, a.src_ip.data(), ip_size);
    std::memcpy(w + ip_size, a.dst_ip.data(), ip_size);
    w += 2 * ip_size;
    put_u16(w, a.src_port);
    put_u16(w + 2, a.dst_port);
    w += 4;
  }
  w = put_divert_tlvs(w, s);
  if (s.authority) w = put_text_tlv(w, tlv::authority, *s.authority);
  if (s.unique_id) w = put_tlv(w, tlv::unique_id, s.unique_id->data(), s.unique_id->size());
  for (const auto& t : s.extra) w = put_tlv(w, t.type, t.value.data(), t.value.size());
  if (s.noop_padding) {
    const std::size_t n = *s.noop_padding;
    w[0] = tlv::noop;
    put_u16(w + 1, n);
    std::memset(w + kTlvHeaderSize, 0, n);
    w += kTlvHeaderSize + n;
  }
  if (s.crc32c) {
    // Last TLV; the checksum covers the whole header with this value zeroed.
    static constexpr std::uint8_t kZero[4] = {0, 0, 0, 0};
    w = put_tlv(w, tlv::crc32c, kZero, 4);
    const std::uint32_t c = crc32c({out, size});
    w[-4] = static_cast<std::uint8_t>(c >> 24);
    w[-3] = static_cast<std::uint8_t>(c >> 16);
    w[-2] = static_cast<std::uint8_t>(c >> 8);
    w[-1] = static_cast<std::uint8_t>(c);
  }
}

}  // namespace

EncodedSize encoded_size(const HeaderSpec& spec, const EncodeOptions& opts) noexcept {
  WireAddresses a;
  std::size_t size = 0;
  if (const errc e = wire_addresses(spec, a); e != errc{}) return {0, e};
  if (const errc e = plan(spec, opts, a, size); e != errc{}) return {0, e};
  return {size, {}};
}

EncodedSize detail::encode_general(const HeaderSpec& spec, std::span<std::uint8_t> out,
                                   const EncodeOptions& opts) noexcept {
  WireAddresses a;
  std::size_t size = 0;
  if (const errc e = wire_addresses(spec, a); e != errc{}) return {0, e};
  if (const errc e = plan(spec, opts, a, size); e != errc{}) return {0, e};
  if (out.size() < size) return {size, errc::buffer_too_small};
  write(spec, a, out.data(), size);
  return {size, {}};
}

EncodedSize encode(const HeaderSpec& spec, std::span<std::uint8_t> out,
                   const EncodeOptions& opts) noexcept {
  if (const std::size_t n = encode_fast(spec, out, opts.max_size)) return {n, {}};
  return detail::encode_general(spec, out, opts);
}

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
  // Headers up to 536 bytes (all but very unusual ones) go straight into the
  // inline storage; a larger one is sized first.
  const std::size_t first_try = std::min(kInlineHeaderSize, opts.max_size);
  EncodedSize r = encode(spec, out.prepare(first_try), opts);
  if (r.ec == errc::buffer_too_small) r = encode(spec, out.prepare(r.size), opts);
  out.commit(r.ec ? 0 : r.size);
  return r.ec;
}

}  // namespace divert::ppv2
